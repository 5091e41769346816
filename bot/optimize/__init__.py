"""`lorabot hyperopt`: walk-forward tuning of a strategy's declared parameters on Optuna.

- `folds`: the chronological in-sample / out-of-sample spans (anchored or rolling);
- `objective`: what a trial is scored by (Sharpe, Sortino, Calmar, return) from daily returns;
- `space`: the search space from the strategy's declarations, narrowed by `--space`;
- `data`: the news and bars parsed once per worker, every model answer cached first, and
  `replay_span`, the one function a trial replays through;
- `study`: Optuna storage (a journal file, or a relational database shared across machines);
- `worker`: one worker's trials (ask, replay, prune, tell, ledger);
- `report`: hyperopt.json, hyperopt.md, charts and best.toml; `run`: the whole command.
"""
