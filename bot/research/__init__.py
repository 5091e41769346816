"""Is there an edge? Event study, signal statistics, backtest luck figures and the trial ledger.

Pure numerical modules over numpy arrays and small dataclasses; they do no I/O except the
ledger (its own table in the store's database) and the report writer. The replay driver feeds
them: `lorabot analyze` hands the cached signals and the bars to `event_study.analyze`, and
`lorabot backtest` hands a run's daily returns to `luck.luck_figures`, with N and V from
`ledger.TrialLedger.count`, and replays the `nulls` label sets.

Modules:
- timeline: bars on an integer-seconds axis; forward returns that never cross a gap; the
  past-only drift; horizon parsing (`4h`, `1d`) with one-line errors.
- signals: the signals as arrays (`SignalArrays.build`), labels bearish / neutral / bullish.
- dedupe: near-identical headlines (same words in any order) merged within a day.
- event_study: `analyze(signals, {symbol: Bars}, StudyOptions) -> dict`, the analysis.json
  document; its layout is written out in that module's docstring.
- event_path: the cumulative mean abnormal return from -24h to +24h (the event-study chart).
- rank_ic: Spearman's information coefficient and its exact day-block bootstrap.
- multiple: Holm's correction.
- bootstrap: the stationary block bootstrap (Politis and Romano), intervals and p-values.
- luck: PSR, DSR (Bailey and Lopez de Prado 2012, 2014), bootstrap intervals of Sharpe and total
  return, keyed as metrics.json spells them.
- nulls: label permutations and coin-flip labels for the null replays; the (k+1)/(N+1) p-value.
- ledger: the trial ledger; `data_hash(files, start, end)`, `config_hash(config)`.
- report_html, charts: the self-contained report.html and the event-study / calibration charts.

Reading the figures: an interval that covers 0 means the data cannot tell the effect from none;
`p_value_holm` below 0.05 is the bar for "distinguishable from zero" after every group and
horizon tested; a large `pre_event_bps` of the label's sign means the headlines report a move
that already happened. PSR is the probability that the true Sharpe is above 0; DSR the same
against the best Sharpe that luck would give after N configurations tried on the same data.
"""
