from __future__ import annotations

import pytest

from adapters.model.lexicon import LexiconModel, score
from bot.events import Label


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("Bitcoin surges to an all-time high as ETF inflows jump", Label.BULLISH),
        ("Exchange hacked; BTC plunges as panic selling spreads", Label.BEARISH),
        ("Fed holds rates steady", Label.NEUTRAL),
        ("Bitcoin price unchanged ahead of the weekend", Label.NEUTRAL),
        ("Regulators reject ETF; bitcoin tumbles", Label.BEARISH),
    ],
)
def test_lexicon_labels(text: str, label: Label) -> None:
    prediction = LexiconModel().classify_sync([text])[0]
    assert prediction.label is label
    assert sum(prediction.probs) == pytest.approx(1.0)
    assert prediction.confidence == max(prediction.probs)


def test_negation_flips_and_more_evidence_means_more_confidence() -> None:
    bull, bear = score("Bitcoin is not falling")
    assert bull > 0 and bear == 0
    model = LexiconModel()
    one = model.classify_sync(["Bitcoin rises"])[0]
    three = model.classify_sync(["Bitcoin rises, rallies and surges"])[0]
    assert three.confidence > one.confidence


async def test_async_interface_and_stable_model_id() -> None:
    model = LexiconModel()
    answers = await model.classify(["a", "b"])
    assert len(answers) == 2 and model.model_id == LexiconModel().model_id
