"""reconciled state: snapshot sources and the reconciliations table

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 10:40:00

Snapshots made before this revision were all computed from the stored fills, so their `source`
is "fills"; stores from 0001 have no reconciliations yet.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import bot.tables

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("equity_snapshots", "position_snapshots"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(
                sa.Column("source", sa.String(), nullable=False, server_default="fills")
            )
    op.create_table(
        "reconciliations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account", sa.String(), nullable=False),
        sa.Column("run_id", sa.String(), nullable=False),
        sa.Column("ts", bot.tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("cash", bot.tables.DecimalText(length=64), nullable=True),
        sa.Column("positions", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("reconciliations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_reconciliations_account"), ["account"], unique=False)
        batch_op.create_index(batch_op.f("ix_reconciliations_ts"), ["ts"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("reconciliations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reconciliations_ts"))
        batch_op.drop_index(batch_op.f("ix_reconciliations_account"))
    op.drop_table("reconciliations")
    for table in ("position_snapshots", "equity_snapshots"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("source")
