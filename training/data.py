"""Labelled sentiment data: a local file or folder in any supported format, or a named data set.

Every loader returns `Example`s in the one project label order (`training.examples`); the readers
per format live in `training.formats`. A few known data sets can be named instead of a path
(`tfns`, `phrasebank`): they are fetched from the Hugging Face hub when online (cached by
huggingface_hub); a local path always works offline.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from bot.errors import UserError
from training.examples import FORMATS, DataError, Example, Format, ReadOptions, label_counts
from training.formats import PHRASEBANK_FILES, detect_format, load_path, parse_phrasebank

__all__ = [
    "FORMATS",
    "KNOWN_DATASETS",
    "DataError",
    "Example",
    "KnownDataset",
    "ReadOptions",
    "detect_format",
    "known_test_split",
    "label_counts",
    "load_examples",
    "sample",
    "write_jsonl",
]


@dataclass(frozen=True)
class KnownDataset:
    """A data set that can be named: where its files live on the hub and how to read them."""

    name: str
    repo: str
    fmt: Format
    train: str
    test: str | None = None
    description: str = ""
    files: tuple[str, ...] = field(default=())


KNOWN_DATASETS: dict[str, KnownDataset] = {
    "tfns": KnownDataset(
        name="tfns",
        repo="zeroshot/twitter-financial-news-sentiment",
        fmt="tfns",
        train="sent_train.csv",
        test="sent_valid.csv",
        description="Twitter Financial News Sentiment (9,543 train / 2,388 validation tweets)",
    ),
    "phrasebank": KnownDataset(
        name="phrasebank",
        repo="takala/financial_phrasebank",
        fmt="phrasebank",
        train="data/FinancialPhraseBank-v1.0.zip",
        description="Financial PhraseBank (Malo et al. 2014), sentences at an agreement level",
    ),
}


def load_examples(
    source: str | Path,
    fmt: str = "auto",
    options: ReadOptions | None = None,
    *,
    split: Literal["train", "test"] = "train",
) -> list[Example]:
    """Read a local file (or a PhraseBank folder), or a known data set's `split`."""
    opts = options or ReadOptions()
    if fmt not in FORMATS:
        raise DataError(f"unknown data format {fmt!r}: use one of {', '.join(FORMATS)}")
    path = Path(str(source)).expanduser()
    if not path.exists():
        name = str(source).lower()
        if name in KNOWN_DATASETS:
            return _load_known(KNOWN_DATASETS[name], split, opts)
        known = ", ".join(KNOWN_DATASETS)
        raise DataError(f"{source}: no such file or folder (known data set names: {known})")
    examples = load_path(path, fmt, opts)
    if not examples:
        raise DataError(f"{path}: no labelled rows")
    return examples


def known_test_split(source: str | Path) -> bool:
    """Whether `source` names a known data set that has its own held-out split."""
    known = KNOWN_DATASETS.get(str(source).lower())
    return known is not None and known.test is not None and not Path(str(source)).exists()


def write_jsonl(examples: Iterable[Example], path: Path) -> Path:
    """Write examples in the plain JSONL format (word labels), the form `compare` hands workers."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for example in examples:
            row: dict[str, Any] = {"text": example.text, "label": example.label.word}
            if example.timestamp is not None:
                row["timestamp"] = example.timestamp.isoformat()
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path


def sample(examples: Sequence[Example], limit: int | None, seed: int) -> list[Example]:
    """A seeded random subset of `limit` examples (files are often sorted by label, so the first
    rows would not do), kept in file order."""
    if not limit or limit >= len(examples):
        return list(examples)
    import random

    chosen = sorted(random.Random(seed).sample(range(len(examples)), limit))
    return [examples[i] for i in chosen]


def _load_known(known: KnownDataset, split: str, opts: ReadOptions) -> list[Example]:
    filename = known.test if split == "test" and known.test else known.train
    local = _hub_file(known, filename)
    if known.fmt == "phrasebank":
        wanted = PHRASEBANK_FILES.get(opts.phrasebank_agreement)
        if wanted is None:
            raise DataError(f"unknown PhraseBank agreement level {opts.phrasebank_agreement!r}")
        with zipfile.ZipFile(local) as archive:
            member = next((n for n in archive.namelist() if n.endswith(wanted)), None)
            if member is None:
                raise DataError(f"{local}: no {wanted} in the archive")
            content = archive.read(member).decode("latin-1")
        return parse_phrasebank(content, f"{known.name}:{wanted}")
    return load_path(local, known.fmt, opts)


def _hub_file(known: KnownDataset, filename: str) -> Path:
    try:
        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError
    except ImportError:  # pragma: no cover - huggingface_hub comes with transformers
        raise UserError("huggingface_hub is needed to fetch named data sets") from None
    offline = any(
        os.environ.get(name, "").lower() in ("1", "true", "yes", "on")
        for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )
    try:
        return Path(
            hf_hub_download(known.repo, filename, repo_type="dataset", local_files_only=offline)
        )
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError) as error:
        raise DataError(
            f"data set {known.name!r} comes from the Hugging Face hub ({known.repo}/{filename}) "
            f"and could not be fetched ({type(error).__name__}); pass a local file instead "
            "(CSV text,label with word labels is always accepted)"
        ) from None
