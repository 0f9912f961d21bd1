"""Regulator reports: the report archive (versions, files, differences) and delivery log.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03

Reserved in the migration chain for the reports helper; filled in by the change that adds these tables.
"""

from __future__ import annotations

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
