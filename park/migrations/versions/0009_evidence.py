"""Bank consents, bank API tokens, signing keys and the evidence-pack log.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03

Reserved in the migration chain for the evidence helper; filled in by the change that adds these tables.
"""

from __future__ import annotations

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
