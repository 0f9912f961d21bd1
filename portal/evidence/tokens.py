"""Bank API tokens: one or more per bank, shown once when made, stored only as their SHA-256, revocable.  A token
acts as its bank user: it reaches exactly what that bank's consents in force allow."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime

import pandas as pd
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from portal import audit
from portal.auth import Role, UserRow
from portal.evidence.tables import ApiTokenRow

PREFIX = "pcev_"


class TokenError(ValueError):
    """A token action that cannot be done; the message says why."""


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def add(engine: Engine, bank: str, actor: str, label: str = "") -> tuple[int, str]:
    """A new token for `bank`: (its id, the token itself, shown only now)."""
    with Session(engine) as s, s.begin():
        user = s.get(UserRow, bank)
        if user is None or user.role != Role.BANK:
            raise TokenError(f"{bank!r} is not a bank user")
        token = PREFIX + secrets.token_urlsafe(32)
        row = ApiTokenRow(bank=bank, token_sha256=_digest(token), label=label, created_at=datetime.now(UTC),
                          created_by=actor)
        s.add(row)
        s.flush()
        token_id = row.id
    audit.record(engine, actor, "evidence_token_add", f"token:{token_id}", bank=bank, label=label)
    return token_id, token


def revoke(engine: Engine, token_id: int, actor: str) -> None:
    with Session(engine) as s, s.begin():
        row = s.get(ApiTokenRow, token_id)
        if row is None:
            raise TokenError(f"no token {token_id}")
        if row.revoked_at is None:
            row.revoked_at = datetime.now(UTC)
        bank = row.bank
    audit.record(engine, actor, "evidence_token_revoke", f"token:{token_id}", bank=bank)


def bank_of(engine: Engine, token: str | None) -> str | None:
    """The bank a presented token belongs to; None for an unknown or revoked token (constant-time compare of
    the digest is not needed: the lookup is by a hash of a 256-bit secret)."""
    if not token or not token.startswith(PREFIX) or len(token) > 200:
        return None
    with Session(engine) as s, s.begin():
        row = s.scalars(select(ApiTokenRow).where(ApiTokenRow.token_sha256 == _digest(token))).first()
        if row is None or row.revoked_at is not None:
            return None
        row.last_used_at = datetime.now(UTC)
        return row.bank


def tokens(engine: Engine, bank: str | None = None) -> pd.DataFrame:
    q = select(ApiTokenRow)
    if bank is not None:
        q = q.where(ApiTokenRow.bank == bank)
    with Session(engine) as s:
        rows = s.scalars(q.order_by(ApiTokenRow.id)).all()
        return pd.DataFrame([{"id": r.id, "bank": r.bank, "label": r.label, "created_at": r.created_at,
                              "revoked_at": r.revoked_at, "last_used_at": r.last_used_at} for r in rows],
                            columns=["id", "bank", "label", "created_at", "revoked_at", "last_used_at"])
