"""Forecast cache (per series: model, trained-at, backtest, forecast) and anomaly warnings.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03

Reserved in the migration chain for the forecast helper; filled in by the change that adds these tables.
"""

from __future__ import annotations

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
