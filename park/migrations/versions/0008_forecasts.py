"""Forecast cache (per series: model, trained-at, backtest, forecast, quota burn-down) and anomaly warnings.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03

The nightly forecasting job (forecasting/jobs.py) writes them; pages read them (forecasting/cache.py,
docs/forecasting.md).  Acknowledgements of anomaly warnings use the existing alert_acks table.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "forecasts",
        sa.Column("park_id", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=160), nullable=False),
        sa.Column("subject", sa.String(length=64), nullable=False),
        sa.Column("quantity", sa.String(length=64), nullable=False),
        sa.Column("freq", sa.String(length=8), nullable=False),
        sa.Column("unit", sa.String(length=16), nullable=False),
        sa.Column("model", sa.String(length=64), nullable=False),
        sa.Column("fallback", sa.Text(), nullable=True),
        sa.Column("trained_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("data_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("mase", sa.Double(), nullable=True),
        sa.Column("coverage_80", sa.Double(), nullable=True),
        sa.Column("coverage_95", sa.Double(), nullable=True),
        sa.Column("result", sa.Text(), nullable=False),
        sa.Column("burn_down", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["park_id"], ["parks.id"]),
        sa.PrimaryKeyConstraint("park_id", "key"),
    )
    op.create_table(
        "anomalies",
        sa.Column("park_id", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=320), nullable=False),
        sa.Column("code", sa.String(length=48), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("series", sa.String(length=128), nullable=False),
        sa.Column("enterprise_id", sa.String(length=64), nullable=True),
        sa.Column("start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expected", sa.Double(), nullable=True),
        sa.Column("observed", sa.Double(), nullable=True),
        sa.Column("unit", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("detected_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["park_id"], ["parks.id"]),
        sa.PrimaryKeyConstraint("park_id", "key"),
    )


def downgrade() -> None:
    op.drop_table("anomalies")
    op.drop_table("forecasts")
