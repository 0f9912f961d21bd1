"""Server-side session records (revocable sessions, absolute lifetime) and shared login throttle.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03

Reserved in the migration chain for the issue 11, serving helper; filled in by the change that adds these tables.
"""

from __future__ import annotations

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
