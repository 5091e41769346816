"""decision records name the model whose signal caused them ([[model.extra]])

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 16:30:00

Decisions recorded before this revision came from the one configured model: their `model_id`
is empty.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("decisions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("model_id", sa.String(), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("decisions", schema=None) as batch_op:
        batch_op.drop_column("model_id")
