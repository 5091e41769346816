"""Several named data sets in one run: reading a mix, splitting each set on its own, weights."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.events import Label
from training.data import DataError
from training.examples import ReadOptions
from training.mix import DataSet, read_columns, read_mix, sets_from_flags
from training.set_split import split_sets
from training.splits import normalise

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "training"
CRYPTO = DataSet(
    name="crypto",
    path=str(FIXTURES / "crypto_events.csv"),
    text_column="news",
    label_column="final_manual_labelling",
    label_map=(("-1", "bearish"), ("0", "neutral"), ("1", "bullish")),
    date_column="date",
)


def test_a_mix_file_names_each_set_with_paths_beside_it() -> None:
    news, crypto = read_mix(FIXTURES / "mix.toml")
    assert (news.name, news.path, news.weight, news.by_columns) == (
        "news",
        str(FIXTURES / "news.csv"),
        1.0,
        False,
    )
    assert crypto.path == str(FIXTURES / "crypto_events.csv")
    assert crypto.weight == 2.0 and crypto.test_from == "2021-07-01"
    assert dict(crypto.label_map) == {"-1": "bearish", "0": "neutral", "1": "bullish"}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('[[sets]]\npath = "a.csv"\ncolour = 1\n', "set 1: unknown key 'colour'"),
        ('[[sets]]\npath = "a.csv"\nweight = 0\n', "set 1: weight 0 must be above 0"),
        ('[[sets]]\npath = "a.csv"\nweight = "x"\n', "set 1: weight must be a number"),
        ('[[sets]]\nname = "x"\n', "set 1: 'path' is missing"),
        (
            '[[sets]]\npath = "a.csv"\nlabel_map = { "1" = "up" }\n',
            "set 1: label_map maps '1' to 'up', not bearish, neutral or bullish",
        ),
        ('[[sets]]\npath = "a.csv"\ntest_from = "soon"\n', "set 1: test_from: bad date 'soon'"),
        ("title = 1\n", "needs at least one [[sets]] table"),
        ("[[sets]\n", "not valid TOML"),
    ],
)
def test_a_bad_mix_is_one_line_naming_the_set_and_key(
    tmp_path: Path, body: str, message: str
) -> None:
    mix = tmp_path / "mix.toml"
    mix.write_text(body, encoding="utf-8")
    with pytest.raises(DataError) as caught:
        read_mix(mix)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_columns_are_read_with_the_label_map_and_dates() -> None:
    rows = read_columns(CRYPTO, Path(CRYPTO.path))
    assert len(rows) == 40
    first = rows[0]
    assert first.text == "Polkadot hosts developer meetup"
    assert first.label == Label.NEUTRAL
    assert first.timestamp == datetime(2021, 1, 3, tzinfo=UTC)
    assert {r.label for r in rows} == {Label.BEARISH, Label.NEUTRAL, Label.BULLISH}
    # the tool-output column (vader_class) is not a label: the human label is
    assert first.origin.endswith("crypto_events.csv:2")


def test_a_bad_column_or_unmapped_label_names_the_file(tmp_path: Path) -> None:
    from dataclasses import replace

    with pytest.raises(
        DataError, match=r"crypto_events.csv:1: text_column 'title' is not a column"
    ):
        read_columns(replace(CRYPTO, text_column="title"), Path(CRYPTO.path))
    broken = tmp_path / "broken.csv"
    broken.write_text("date,news,final_manual_labelling\n2021-01-01,A,1\n2021-01-02,B,2\n")
    with pytest.raises(DataError) as caught:
        read_columns(CRYPTO, broken)
    assert str(caught.value) == (f"{broken}:3: label '2' is not in label_map (keys: -1, 0, 1)")


def test_each_set_is_split_on_its_own_and_keeps_its_name() -> None:
    from dataclasses import replace

    sets = [DataSet("news", str(FIXTURES / "news.csv")), replace(CRYPTO, test_from="2021-07-01")]
    split, info = split_sets(sets, ReadOptions(), valid_fraction=0.2, seed=3)
    news, crypto = split.sets
    assert (news.name, crypto.name) == ("news", "crypto")
    assert news.strategy == "stratified" and crypto.strategy == "temporal"
    crypto_train = split.train[crypto.rows("train")]
    crypto_valid = split.valid[crypto.rows("valid")]
    crypto_test = split.test[crypto.rows("test")]
    assert len(crypto_train) + len(crypto_valid) + len(crypto_test) == 40
    # temporal: the later rows validate, the rows from test_from are its test set
    assert max(e.timestamp for e in crypto_train) <= min(e.timestamp for e in crypto_valid)
    assert min(e.timestamp for e in crypto_test) >= datetime(2021, 7, 1, tzinfo=UTC)
    assert max(e.timestamp for e in crypto_valid) < datetime(2021, 7, 1, tzinfo=UTC)
    assert news.n_test == 0 and split.test == crypto_test
    # the manifest's span is what the model saw (train + valid), not the test months
    assert info["span"]["start"].startswith("2021-01-")
    assert info["span"]["end"] < "2021-07-01"
    assert info["span_unknown"] == ["news"]
    described = {entry["name"]: entry for entry in info["sets"]}
    assert described["crypto"]["n_test"] == len(crypto_test)
    assert described["crypto"]["test"] == "rows dated from 2021-07-01"
    assert described["news"]["span"] is None


def test_a_text_held_out_by_one_set_is_dropped_from_the_others(tmp_path: Path) -> None:
    copy = tmp_path / "copy.csv"
    lines = (FIXTURES / "news.csv").read_text(encoding="utf-8").splitlines()
    # the same rows in another order: the second set holds out other texts than the first
    copy.write_text("\n".join([lines[0], *reversed(lines[1:])]) + "\n", encoding="utf-8")
    sets = [DataSet("a", str(FIXTURES / "news.csv")), DataSet("b", str(copy))]
    split, info = split_sets(sets, ReadOptions(), valid_fraction=0.25, seed=1)
    held = {normalise(e.text) for e in split.valid}
    assert not held & {normalise(e.text) for e in split.train}
    assert info["dropped_overlap"] > 0


def test_set_weights_become_row_weights_in_the_loss_order() -> None:
    from dataclasses import replace

    sets = [DataSet("news", str(FIXTURES / "news.csv")), replace(CRYPTO, weight=3.0)]
    split, _ = split_sets(sets, ReadOptions(), valid_fraction=0.2, seed=3)
    weights = split.example_weights()
    assert weights is not None and len(weights) == len(split.train)
    news, crypto = split.sets
    assert set(weights[news.rows("train")]) == {1.0}
    assert set(weights[crypto.rows("train")]) == {3.0}
    unweighted, _ = split_sets(
        [DataSet("news", str(FIXTURES / "news.csv")), CRYPTO], ReadOptions(), valid_fraction=0.2,
        seed=3,
    )  # fmt: skip
    assert unweighted.example_weights() is None


def test_repeated_data_flags_pair_formats_and_tell_names_apart() -> None:
    sets = sets_from_flags(["a/news.csv", "b/news.csv", "tfns"], ["auto", "csv", "auto"])
    assert [s.name for s in sets] == ["news", "news-2", "tfns"]
    assert [s.fmt for s in sets] == ["auto", "csv", "auto"]
    assert [s.fmt for s in sets_from_flags(["x.csv", "y.csv"], ["tfns"])] == ["tfns", "tfns"]
    with pytest.raises(DataError, match="2 --data but 3 --format"):
        sets_from_flags(["x.csv", "y.csv"], ["csv", "csv", "csv"])


def test_the_committed_mixes_read_the_shared_data_as_documented() -> None:
    """The default adapter's mix and the temporal split's: the sets, the mapping, the split."""
    root = Path(__file__).resolve().parents[2] / "training" / "mixes"
    default = read_mix(root / "tfns_crypto.toml")
    temporal = read_mix(root / "crypto_temporal.toml")
    for sets in (default, temporal):
        tfns, crypto = sets
        assert (tfns.name, tfns.fmt, tfns.test) == (
            "tfns",
            "tfns",
            "../shared/data/tfns/sent_valid.csv",
        )
        assert crypto.label_column == "final_manual_labelling" and crypto.date_column == "date"
        assert dict(crypto.label_map) == {"-1": "bearish", "0": "neutral", "1": "bullish"}
    assert default[1].test_from == "" and temporal[1].test_from == "2021-06-01"
