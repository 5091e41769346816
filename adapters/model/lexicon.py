"""The lexicon baseline: word lists with negation, no torch.

Every trained model is compared with this one, and it is the stand-in while none is trained. It
counts bullish and bearish terms (single words and a few phrases), flips a term that follows a
negation within three words ("not a crash", "no longer falling"), and turns the two scores into
three class probabilities with a softmax against a fixed neutral score: no term at all reads as
neutral, one clear term as a modest lean, several agreeing terms as a confident call. The
confidence is therefore a function of the margin between the two sides.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Sequence

from bot.protocols import Prediction

# fmt: off
BULLISH: dict[str, float] = {
    "surge": 1.0, "surges": 1.0, "surged": 1.0, "surging": 1.0,
    "soar": 1.0, "soars": 1.0, "soared": 1.0, "soaring": 1.0,
    "rally": 1.0, "rallies": 1.0, "rallied": 1.0, "rallying": 1.0,
    "jump": 0.8, "jumps": 0.8, "jumped": 0.8,
    "gain": 0.7, "gains": 0.7, "gained": 0.7,
    "rise": 0.6, "rises": 0.6, "rose": 0.6, "rising": 0.6,
    "climb": 0.7, "climbs": 0.7, "climbed": 0.7,
    "record": 0.6, "high": 0.4, "highs": 0.5, "breakout": 1.0,
    "bull": 0.8, "bullish": 1.0, "upgrade": 0.9, "upgrades": 0.9, "upgraded": 0.9,
    "beat": 0.8, "beats": 0.8, "outperform": 0.8, "outperforms": 0.8,
    "approve": 0.9, "approves": 0.9, "approved": 0.9, "approval": 0.9,
    "adopt": 0.7, "adopts": 0.7, "adoption": 0.7,
    "inflow": 0.8, "inflows": 0.8, "buy": 0.5, "buys": 0.6, "buying": 0.5,
    "accumulate": 0.7, "accumulating": 0.7, "partnership": 0.6, "launch": 0.4,
    "launches": 0.4, "growth": 0.6, "profit": 0.6, "profits": 0.6, "strong": 0.5,
    "boost": 0.7, "boosts": 0.7, "recover": 0.6, "recovers": 0.6, "recovery": 0.6,
    "rebound": 0.7, "rebounds": 0.7, "optimism": 0.7, "optimistic": 0.7,
    "raise": 0.5, "raises": 0.5, "raised": 0.5, "expands": 0.5, "expansion": 0.5,
    "up": 0.3, "higher": 0.5, "positive": 0.6, "upbeat": 0.7, "win": 0.5, "wins": 0.5,
}

BEARISH: dict[str, float] = {
    "crash": 1.0, "crashes": 1.0, "crashed": 1.0, "crashing": 1.0,
    "plunge": 1.0, "plunges": 1.0, "plunged": 1.0, "plunging": 1.0,
    "tumble": 0.9, "tumbles": 0.9, "tumbled": 0.9,
    "slump": 0.9, "slumps": 0.9, "slumped": 0.9,
    "drop": 0.7, "drops": 0.7, "dropped": 0.7,
    "fall": 0.6, "falls": 0.6, "fell": 0.6, "falling": 0.6,
    "decline": 0.6, "declines": 0.6, "declined": 0.6,
    "sink": 0.8, "sinks": 0.8, "sank": 0.8, "slide": 0.6, "slides": 0.6,
    "loss": 0.7, "losses": 0.7, "lose": 0.6, "loses": 0.6, "lost": 0.6,
    "bear": 0.8, "bearish": 1.0, "downgrade": 0.9, "downgrades": 0.9, "downgraded": 0.9,
    "miss": 0.7, "misses": 0.7, "missed": 0.7,
    "hack": 1.0, "hacked": 1.0, "exploit": 1.0, "exploited": 1.0, "breach": 0.9,
    "fraud": 1.0, "lawsuit": 0.8, "sues": 0.8, "sued": 0.8, "probe": 0.6,
    "ban": 0.9, "bans": 0.9, "banned": 0.9, "crackdown": 0.9,
    "reject": 0.8, "rejects": 0.8, "rejected": 0.8, "delay": 0.5, "delays": 0.5,
    "outflow": 0.8, "outflows": 0.8, "sell": 0.5, "sells": 0.6, "selling": 0.6,
    "liquidation": 0.8, "liquidations": 0.8, "bankrupt": 1.0, "bankruptcy": 1.0,
    "insolvent": 1.0, "default": 0.8, "collapse": 1.0, "collapses": 1.0,
    "weak": 0.5, "fear": 0.7, "fears": 0.7, "panic": 0.9, "risk": 0.3, "warning": 0.6,
    "warns": 0.6, "cut": 0.4, "cuts": 0.4, "layoffs": 0.7, "down": 0.3, "lower": 0.5,
    "negative": 0.6, "pessimism": 0.7, "recession": 0.8, "inflation": 0.3, "halt": 0.6,
    "halts": 0.6, "suspend": 0.6, "suspends": 0.6, "war": 0.6,
}

PHRASES: dict[str, tuple[str, float]] = {
    "all-time high": ("bull", 1.2),
    "all time high": ("bull", 1.2),
    "rate cut": ("bull", 0.8),
    "rate cuts": ("bull", 0.8),
    "short squeeze": ("bull", 0.8),
    "etf approval": ("bull", 1.2),
    "sell-off": ("bear", 1.0),
    "selloff": ("bear", 1.0),
    "rate hike": ("bear", 0.8),
    "rate hikes": ("bear", 0.8),
    "death cross": ("bear", 0.9),
    "golden cross": ("bull", 0.9),
    "price target raised": ("bull", 1.0),
    "price target cut": ("bear", 1.0),
}

NEGATIONS = frozenset(
    {"not", "no", "never", "without", "isn't", "wasn't", "aren't", "don't", "doesn't",
     "didn't", "won't", "can't", "cannot", "fails", "failed", "nor", "hardly", "unlikely"}
)
# fmt: on
NEGATION_SCOPE = 3
SHARPNESS = 1.6
NEUTRAL_SCORE = 0.9

_TOKEN = re.compile(r"[a-z]+(?:'[a-z]+)?")
_PHRASE = re.compile("|".join(re.escape(p) for p in sorted(PHRASES, key=len, reverse=True)))


def _fingerprint() -> str:
    parts = [
        repr(sorted(BULLISH.items())),
        repr(sorted(BEARISH.items())),
        repr(sorted(PHRASES.items())),
        repr(sorted(NEGATIONS)),
        f"{NEGATION_SCOPE}/{SHARPNESS}/{NEUTRAL_SCORE}",
    ]
    return hashlib.sha1("|".join(parts).encode()).hexdigest()[:10]


def score(text: str) -> tuple[float, float]:
    """(bullish, bearish) evidence in `text`, negation applied."""
    lowered = text.lower()
    bull = bear = 0.0
    for match in _PHRASE.finditer(lowered):
        side, weight = PHRASES[match.group(0)]
        if side == "bull":
            bull += weight
        else:
            bear += weight
    lowered = _PHRASE.sub(" ", lowered)
    tokens = _TOKEN.findall(lowered)
    for index, token in enumerate(tokens):
        weight_bull = BULLISH.get(token, 0.0)
        weight_bear = BEARISH.get(token, 0.0)
        if not weight_bull and not weight_bear:
            continue
        window = tokens[max(0, index - NEGATION_SCOPE) : index]
        negated = any(word in NEGATIONS or word.endswith("n't") for word in window)
        if negated:
            weight_bull, weight_bear = weight_bear * 0.8, weight_bull * 0.8
        bull += weight_bull
        bear += weight_bear
    return bull, bear


def probabilities(bull: float, bear: float) -> tuple[float, float, float]:
    """(bearish, neutral, bullish) from the two evidence scores."""
    logits = (SHARPNESS * bear, SHARPNESS * NEUTRAL_SCORE, SHARPNESS * bull)
    top = max(logits)
    exps = [math.exp(x - top) for x in logits]
    total = sum(exps)
    return (exps[0] / total, exps[1] / total, exps[2] / total)


class LexiconModel:
    """A `SentimentModel` that needs nothing but this file."""

    def __init__(self) -> None:
        self._model_id = f"lexicon-{_fingerprint()}"

    @property
    def model_id(self) -> str:
        return self._model_id

    def classify_sync(self, texts: Sequence[str]) -> list[Prediction]:
        return [Prediction.from_probs(probabilities(*score(t)), self._model_id) for t in texts]

    async def classify(self, texts: Sequence[str]) -> list[Prediction]:
        return self.classify_sync(texts)

    async def load(self) -> None:
        """Nothing to load: the answers are in memory already."""

    async def start(self) -> None:
        """Nothing to prepare: answering costs the same on the first item as on the last."""

    async def close(self) -> None:
        return None
