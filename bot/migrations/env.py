"""Alembic environment: run with the connection the store hands over (see `bot.store.migrate`)."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import bot.tables  # noqa: F401  (registers the tables on SQLModel.metadata)

target_metadata = SQLModel.metadata


def run() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("bot.store.migrate passes a connection; run migrations through it")
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


run()
