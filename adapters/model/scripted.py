"""A scripted model: answers read from a file, for tests and benchmarks only.

It lets the engine's tests and `bench/engine_throughput.py` exercise the whole signal path with
known answers, so that what they measure or assert is the engine and not a model. A text the file
does not know is answered neutral with uniform probabilities (never a trade).
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from bot.errors import InputError
from bot.events import Label
from bot.protocols import Prediction


def normalise(text: str) -> str:
    return " ".join(text.lower().split())


class ScriptedModel:
    def __init__(self, answers: Mapping[str, tuple[Label, float]], name: str = "scripted") -> None:
        self._answers = {normalise(k): v for k, v in answers.items()}
        digest = hashlib.sha1(repr(sorted(self._answers.items())).encode()).hexdigest()[:10]
        self._model_id = f"{name}-{digest}"
        self.calls = 0

    @property
    def model_id(self) -> str:
        return self._model_id

    @classmethod
    def from_file(cls, path: str | Path) -> ScriptedModel:
        """JSONL objects or a CSV with `text` (or `title`), `label` and optional `confidence`."""
        file = Path(path).expanduser()
        if not file.is_file():
            raise InputError(f"{file}: scripted model file not found ([model] scripted_file)")
        answers: dict[str, tuple[Label, float]] = {}
        with file.open(encoding="utf-8") as handle:
            if file.suffix.lower() == ".csv":
                rows = enumerate(csv.DictReader(handle), start=2)
                records = ((n, dict(r)) for n, r in rows)
            else:
                records = (
                    (n, json.loads(line)) for n, line in enumerate(handle, 1) if line.strip()
                )
            for number, record in records:
                try:
                    text = record.get("text") or record["title"]
                    label = Label.parse(str(record["label"]))
                    confidence = float(record.get("confidence") or 0.9)
                except (KeyError, ValueError, TypeError) as error:
                    raise InputError(f"{file}:{number}: bad scripted answer: {error}") from None
                answers[text] = (label, confidence)
        return cls(answers)

    def predict(self, text: str) -> Prediction:
        answer = self._answers.get(normalise(text))
        if answer is None:
            return Prediction(Label.NEUTRAL, 1 / 3, (1 / 3, 1 / 3, 1 / 3), self._model_id)
        label, confidence = answer
        rest = (1.0 - confidence) / 2
        probs = [rest, rest, rest]
        probs[label] = confidence
        return Prediction(label, confidence, (probs[0], probs[1], probs[2]), self._model_id)

    async def classify(self, texts: Sequence[str]) -> list[Prediction]:
        self.calls += 1
        return [self.predict(t) for t in texts]

    async def load(self) -> None:
        """Nothing to load: the answers are in memory already."""

    async def start(self) -> None:
        """Nothing to prepare: answering costs the same on the first item as on the last."""

    async def close(self) -> None:
        return None
