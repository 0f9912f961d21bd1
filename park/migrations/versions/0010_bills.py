"""Utility bills as a record of their own, beside the meters, and the bills-file rows quarantined (park.bills).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03

A bill is held against its meter in evidence packs (meter against utility bill, the 互证 tier of docs/evidence.md);
it never writes energy into the time-series store.  A re-issued bill supersedes the old one, which is kept.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bills",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("park_id", sa.String(64), nullable=False),
        sa.Column("enterprise_id", sa.String(64), nullable=False),
        sa.Column("meter_id", sa.String(64), nullable=False),
        sa.Column("account", sa.String(64), nullable=False),
        sa.Column("carrier", sa.String(32), nullable=False),
        sa.Column("period_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("period_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("quantity", sa.Float(), nullable=False),
        sa.Column("unit", sa.String(16), nullable=False),
        sa.Column("quantity_stated", sa.Float(), nullable=False),
        sa.Column("unit_stated", sa.String(16), nullable=False),
        sa.Column("amount_cny", sa.Float(), nullable=True),
        sa.Column("source_file", sa.Text(), nullable=False),
        sa.Column("source_sha256", sa.String(64), nullable=False),
        sa.Column("source_line", sa.Integer(), nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("imported_by", sa.String(64), nullable=False),
        sa.Column("superseded_by", sa.Integer(), sa.ForeignKey("bills.id"), nullable=True),
        sa.Column("superseded_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_bills_enterprise_id", "bills", ["enterprise_id"])
    op.create_index("ix_bills_meter_id", "bills", ["meter_id"])
    op.create_table(
        "bill_rejects",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("park_id", sa.String(64), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source_file", sa.Text(), nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("meter_id", sa.String(64), nullable=False),
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("row_text", sa.Text(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("bill_rejects")
    op.drop_index("ix_bills_meter_id", "bills")
    op.drop_index("ix_bills_enterprise_id", "bills")
    op.drop_table("bills")
