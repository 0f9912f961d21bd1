"""Parks get their data-completeness threshold (park file `coverage_threshold`, default 0.9).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03

Below it a figure is flagged incomplete (docs/methodology.md, completeness rule) and a comparison against a
period covered less is hidden (docs/portal.md).  Existing parks get the default, 0.9.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("parks") as batch:
        batch.add_column(sa.Column("coverage_threshold", sa.Double(), nullable=False, server_default="0.9"))


def downgrade() -> None:
    # Not a batch (table copy): on SQLite that drops `parks`, which the enterprises' foreign keys refer to.
    # ALTER TABLE ... DROP COLUMN works on PostgreSQL and on SQLite 3.35 and later.
    op.execute("ALTER TABLE parks DROP COLUMN coverage_threshold")
