"""Server-side portal sessions (revocable, absolute and idle lifetimes) and the shared login throttle.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03

`portal_sessions` holds one row per signed-in browser (the SHA-256 of its cookie's token), so any portal worker
can serve any request and logout or a password reset revokes the session everywhere; `login_failures` counts
failed logins per address and user name for every worker alike (portal/auth.py, docs/portal.md).  Sessions
signed in before this revision were cookie-only: they are not carried over, their users sign in again.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "portal_sessions",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("address", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.ForeignKeyConstraint(["username"], ["users.username"]),
    )
    op.create_index("ix_portal_sessions_username", "portal_sessions", ["username"])
    op.create_table(
        "login_failures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("address", sa.String(64), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    for column in ("at", "address", "name"):
        op.create_index(f"ix_login_failures_{column}", "login_failures", [column])


def downgrade() -> None:
    op.drop_table("login_failures")
    op.drop_table("portal_sessions")
