"""The database under the store: engine creation, durability settings, checks at start, migration.

Why the checks: a store that is silently wrong is worse than none. A file with random bytes in it
used to be opened and written to, and a zero-byte file became a fresh account without a word. At
open the store now runs SQLite's `quick_check`, refuses a schema revision this version does not
know, and warns when an existing file is empty. Every failure is one line naming the store.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from bot.log import get_logger
from bot.store.errors import StoreCorruptError, StoreError, display_url, explain

MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"
log = get_logger("bot.store")


def sqlite_path(url: str) -> Path | None:
    """The file behind a SQLite URL; None for other backends and in-memory databases."""
    if not url.startswith("sqlite"):
        return None
    database = sa.engine.make_url(url).database
    if not database or database == ":memory:" or database.startswith("file::memory:"):
        return None
    return Path(database).expanduser()


def make_engine(url: str) -> Engine:
    """An engine for `url`; SQLite files get WAL, a busy timeout and their folder created."""
    if url.startswith("sqlite"):
        path = sqlite_path(url)
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise StoreError(
                    f"store {display_url(url)}: cannot create its folder ({error})"
                ) from None
        engine = sa.create_engine(url, connect_args={"timeout": 30})

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    try:
        return sa.create_engine(url, pool_pre_ping=True)
    except (sa.exc.ArgumentError, ImportError) as error:
        raise StoreError(f"store {display_url(url)}: {error}") from None


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision (creating it in an empty database)."""
    from alembic import command

    config = _alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def open_database(url: str) -> Engine:
    """An engine on a checked, migrated store, or a one-line `StoreError` saying what is wrong."""
    path = sqlite_path(url)
    if path is not None and path.is_file() and path.stat().st_size == 0:
        log.warning(
            "the store file is empty: starting a fresh store (was one expected here?)",
            store=str(path),
        )
    if path is not None:
        _check_writable(path, url)
    engine = make_engine(url)
    try:
        if path is not None and path.is_file() and path.stat().st_size > 0:
            _check_integrity(engine, url)
        _check_revision(engine, url)
        migrate(engine)
    except StoreError:
        engine.dispose()
        raise
    except (sa.exc.SQLAlchemyError, OSError) as error:
        engine.dispose()
        raise explain(url, error, "opening it") from None
    return engine


def _check_writable(path: Path, url: str) -> None:
    """SQLite in WAL mode writes beside its file even to read, and migrations write to it."""
    for target in (path, path.parent):
        if target.exists() and not os.access(target, os.W_OK):
            kind = "file" if target == path else "folder"
            raise StoreError(
                f"store {display_url(url)} is read-only (its {kind} {target} is not writable); "
                "lorabot writes to its store (WAL, migrations), so make it writable or use a copy"
            )


def _check_integrity(engine: Engine, url: str) -> None:
    with engine.connect() as connection:
        rows = [str(r[0]) for r in connection.execute(sa.text("PRAGMA quick_check"))]
    if rows != ["ok"]:
        problems = " ".join(" ".join(rows).replace("*** in database main ***", "").split())
        raise StoreCorruptError(
            f"store {display_url(url)} is corrupt (quick_check: {problems[:300]}); "
            "restore it from a backup or move it away"
        )


def _check_revision(engine: Engine, url: str) -> None:
    """A store from a newer lorabot, or a database that is not a store, is refused untouched."""
    from alembic.script import ScriptDirectory

    with engine.connect() as connection:
        tables = set(sa.inspect(connection).get_table_names())
        if not tables:
            return
        if "alembic_version" not in tables:
            raise StoreCorruptError(
                f"store {display_url(url)} holds tables ({', '.join(sorted(tables)[:5])}) but no "
                "migration version: it is not a lorabot store"
            )
        found = [
            r[0] for r in connection.execute(sa.text("select version_num from alembic_version"))
        ]
    known = {
        revision.revision
        for revision in ScriptDirectory.from_config(_alembic_config()).walk_revisions()
    }
    unknown = [revision for revision in found if revision not in known]
    if unknown:
        raise StoreError(
            f"store {display_url(url)} is at schema revision {unknown[0]!r}, which this lorabot "
            "does not know (was it written by a newer version?)"
        )


def _alembic_config() -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config
