"""A stand-in for vLLM's `api_server` process, and a virtual environment whose python runs it.

`lorabot serve` starts whatever `bin/python` of `[model] vllm_env` is; this environment's python
answers the version probe as a finished vLLM environment does and, asked to run the api server,
serves `/health` and `/v1/models` for the names it was given and starts a worker child in its own
process group (as vLLM's engine does), writing the group id to `$FAKE_VLLM_PGID_FILE`. That is
what a test needs to prove `serve` stops the whole group, without a vLLM build.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def make_env(folder: Path) -> Path:
    """A folder `[model] vllm_env` accepts, whose python is this module's fake server."""
    from adapters.model.vllm_env import MARKER, TORCH_VERSION, VLLM_VERSION

    (folder / "bin").mkdir(parents=True, exist_ok=True)
    (folder / MARKER).write_text("{}\n", encoding="utf-8")
    versions = json.dumps({"vllm": VLLM_VERSION, "torch": TORCH_VERSION})
    python = folder / "bin" / "python"
    python.write_text(
        "#!/bin/sh\n"
        f'if [ "$1" = "-c" ]; then echo \'{versions}\'; exit 0; fi\n'
        f'exec "{sys.executable}" "{Path(__file__).resolve()}" "$@"\n',
        encoding="utf-8",
    )
    python.chmod(0o755)
    return folder


def _option(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def main(argv: list[str]) -> None:
    names = [_option(argv, "--served-model-name")]
    if "--lora-modules" in argv:
        names += [m.split("=", 1)[0] for m in argv[argv.index("--lora-modules") + 1 :]]
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    Path(os.environ["FAKE_VLLM_PGID_FILE"]).write_text(
        f"{os.getpgid(0)} {worker.pid}\n", encoding="utf-8"
    )
    listing = json.dumps({"data": [{"id": n} for n in names]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = listing if self.path == "/v1/models" else b"{}"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    host, port = _option(argv, "--host"), int(_option(argv, "--port"))
    ThreadingHTTPServer((host, port), Handler).serve_forever()


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    main(sys.argv[1:])
