"""decision records, and the decision that caused each order

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 10:50:00

Orders placed before this revision have no decision record: their `decision_id` is empty.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import bot.tables

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("decision_id", sa.String(), nullable=False, server_default="")
        )
    op.create_table(
        "decisions",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("account", sa.String(), nullable=False),
        sa.Column("run_id", sa.String(), nullable=False),
        sa.Column("ts", bot.tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("trigger", sa.String(), nullable=False),
        sa.Column("symbol", sa.String(), nullable=False),
        sa.Column("outcome", sa.String(), nullable=False),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("news_id", sa.String(), nullable=False),
        sa.Column("received", bot.tables.UTCDateTime(timezone=True), nullable=True),
        sa.Column("label", sa.String(), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("composite_label", sa.String(), nullable=False),
        sa.Column("composite_confidence", sa.Float(), nullable=False),
        sa.Column("target_before", bot.tables.DecimalText(length=64), nullable=True),
        sa.Column("target_after", bot.tables.DecimalText(length=64), nullable=True),
        sa.Column("risk", sa.String(), nullable=False),
        sa.Column("order_id", sa.String(), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("decisions", schema=None) as batch_op:
        batch_op.create_index("ix_decisions_account_ts", ["account", "ts"], unique=False)
        batch_op.create_index(batch_op.f("ix_decisions_outcome"), ["outcome"], unique=False)
        batch_op.create_index(batch_op.f("ix_decisions_news_id"), ["news_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("decisions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_decisions_news_id"))
        batch_op.drop_index(batch_op.f("ix_decisions_outcome"))
        batch_op.drop_index("ix_decisions_account_ts")
    op.drop_table("decisions")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_column("decision_id")
