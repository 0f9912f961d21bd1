"""Green certificates get their vintage; quota plans their basis (carbon.quota.QUOTA_BASES).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03

Both nullable: a certificate recorded before has no vintage; a plan without basis keeps the default (ets).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("carbon_instruments") as batch:
        batch.add_column(sa.Column("vintage", sa.Integer(), nullable=True))
    with op.batch_alter_table("carbon_quota_plans") as batch:
        batch.add_column(sa.Column("basis", sa.String(16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("carbon_quota_plans") as batch:
        batch.drop_column("basis")
    with op.batch_alter_table("carbon_instruments") as batch:
        batch.drop_column("vintage")
