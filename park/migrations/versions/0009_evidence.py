"""Bank consents, bank API tokens, signing keys and the evidence-pack log (portal.evidence.tables).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03

A bank sees an enterprise's data only under a consent in force (docs/evidence.md); every pack issued is logged with
its headline figures so that a later restatement is listed in the next pack.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "evidence_consents",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("park_id", sa.String(64), nullable=False),
        sa.Column("bank", sa.String(64), sa.ForeignKey("users.username"), nullable=False),
        sa.Column("enterprise_id", sa.String(64), nullable=False),
        sa.Column("purpose", sa.String(32), nullable=False),
        sa.Column("data", sa.String(256), nullable=False),
        sa.Column("period_from", sa.Date(), nullable=False),
        sa.Column("period_to", sa.Date(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("requested_by", sa.String(64), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sa.String(64), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_by", sa.String(64), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("project_start", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(["park_id", "enterprise_id"], ["enterprises.park_id", "enterprises.id"]),
    )
    op.create_index("ix_evidence_consents_bank", "evidence_consents", ["bank"])
    op.create_index("ix_evidence_consents_enterprise_id", "evidence_consents", ["enterprise_id"])
    op.create_table(
        "evidence_consent_events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("consent_id", sa.Integer(), sa.ForeignKey("evidence_consents.id"), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
    )
    op.create_index("ix_evidence_consent_events_consent_id", "evidence_consent_events", ["consent_id"])
    op.create_table(
        "evidence_api_tokens",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("bank", sa.String(64), sa.ForeignKey("users.username"), nullable=False),
        sa.Column("token_sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("label", sa.String(128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_evidence_api_tokens_bank", "evidence_api_tokens", ["bank"])
    op.create_table(
        "evidence_signing_keys",
        sa.Column("key_id", sa.String(64), primary_key=True),
        sa.Column("park_id", sa.String(64), nullable=False),
        sa.Column("public_pem", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_reason", sa.Text(), nullable=False),
    )
    op.create_table(
        "evidence_pack_log",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("park_id", sa.String(64), nullable=False),
        sa.Column("enterprise_id", sa.String(64), nullable=False),
        sa.Column("period", sa.String(16), nullable=False),
        sa.Column("consent_id", sa.Integer(), sa.ForeignKey("evidence_consents.id"), nullable=True),
        sa.Column("issued_to", sa.String(64), nullable=False),
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("generated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("manifest_sha256", sa.String(64), nullable=False),
        sa.Column("figures", sa.Text(), nullable=False),
    )
    op.create_index("ix_evidence_pack_log_enterprise_id", "evidence_pack_log", ["enterprise_id"])


def downgrade() -> None:
    op.drop_index("ix_evidence_pack_log_enterprise_id", "evidence_pack_log")
    op.drop_table("evidence_pack_log")
    op.drop_table("evidence_signing_keys")
    op.drop_index("ix_evidence_api_tokens_bank", "evidence_api_tokens")
    op.drop_table("evidence_api_tokens")
    op.drop_index("ix_evidence_consent_events_consent_id", "evidence_consent_events")
    op.drop_table("evidence_consent_events")
    op.drop_index("ix_evidence_consents_enterprise_id", "evidence_consents")
    op.drop_index("ix_evidence_consents_bank", "evidence_consents")
    op.drop_table("evidence_consents")
