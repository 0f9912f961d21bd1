"""Scheduled jobs: the APScheduler job store, the jobs leader lock and the job run log.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03

Reserved in the migration chain for the jobs helper; filled in by the change that adds these tables.
"""

from __future__ import annotations

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
