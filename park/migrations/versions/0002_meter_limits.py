"""Meters: register size and plausible maximum (the register normaliser's limits, collectors/limits.py).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03

All nullable: a meter that states none of them gets its limits inferred, as before.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

COLUMNS = ("register_max", "max_kw", "rated_kw", "transformer_kva", "breaker_a", "max_per_h")


def upgrade() -> None:
    with op.batch_alter_table("meters") as batch:
        for name in COLUMNS:
            batch.add_column(sa.Column(name, sa.Double(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("meters") as batch:
        for name in reversed(COLUMNS):
            batch.drop_column(name)
