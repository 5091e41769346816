"""Checks of the paths a command will write, made before any work is done.

click's `Path` type checks the path itself (a folder where a file is wanted and the reverse); what
it cannot see is a path whose parent is a file (`--out results.csv/model`) or a folder lorabot may
not write in. Those used to surface as `NotADirectoryError` or `FileExistsError` from deep inside
a command, after minutes of training or downloading, reported as an internal error (exit 70).
"""

from __future__ import annotations

import os
from pathlib import Path

from bot.errors import UserError


def writable_folder(path: Path, option: str) -> Path:
    """`path` is, or can be made as, a folder lorabot can write in; else one clear line."""
    path = path.expanduser()
    if path.exists() and not path.is_dir():
        raise UserError(f"{option} {path}: is a file, not a folder")
    _writable_ancestor(path, option)
    return path


def writable_file(path: Path, option: str) -> Path:
    """`path` is, or can be made as, a file lorabot can write; else one clear line."""
    path = path.expanduser()
    if path.is_dir():
        raise UserError(f"{option} {path}: is a folder, not a file")
    if path.exists():
        if not os.access(path, os.W_OK):
            raise UserError(f"{option} {path}: not writable")
        return path
    _writable_ancestor(path.parent, option, target=path)
    return path


def _writable_ancestor(path: Path, option: str, target: Path | None = None) -> None:
    """The nearest existing folder above (or at) `path` is a folder and writable."""
    named = target or path
    ancestor = path
    while not ancestor.exists():
        if ancestor.parent == ancestor:
            break
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise UserError(f"{option} {named}: {ancestor} is a file, not a folder")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise UserError(f"{option} {named}: cannot write in {ancestor}")


def readable_file(path: Path, option: str) -> Path:
    """`path` is an existing file lorabot can read; else one clear line."""
    path = path.expanduser()
    if not path.exists():
        raise UserError(f"{option} {path}: file not found")
    if not path.is_file():
        raise UserError(f"{option} {path}: not a regular file")
    try:
        with path.open("rb") as handle:
            handle.read(1)
    except OSError as error:
        raise UserError(f"{option} {path}: cannot read: {error.strerror or error}") from None
    return path
