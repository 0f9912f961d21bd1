"""The evidence tables (made by migration 0009): bank consents and their history, bank API tokens (hashed), the
park's signing keys (public halves only: the private key is a 0600 file in the data folder) and the log of the
packs issued (with their headline figures, so that a later restatement is listed in the next pack)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, ForeignKeyConstraint, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from park.metadata import Base, UTCDateTime


class ConsentRow(Base):
    """A bank's request to see an enterprise's data, and what became of it (state: requested, granted, refused,
    revoked; a granted consent past `expires_at` is expired)."""

    __tablename__ = "evidence_consents"
    __table_args__ = (ForeignKeyConstraint(["park_id", "enterprise_id"], ["enterprises.park_id", "enterprises.id"]),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    park_id: Mapped[str] = mapped_column(String(64))
    bank: Mapped[str] = mapped_column(ForeignKey("users.username"), index=True)  # the bank user's name
    enterprise_id: Mapped[str] = mapped_column(String(64), index=True)
    purpose: Mapped[str] = mapped_column(String(32))  # loan_application | post_loan_monitoring
    data: Mapped[str] = mapped_column(String(256))  # comma-separated data kinds (portal.evidence.consent.DATA)
    period_from: Mapped[date] = mapped_column(Date)  # first day of the first month consented
    period_to: Mapped[date] = mapped_column(Date)  # first day of the last month consented (inclusive)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    state: Mapped[str] = mapped_column(String(16))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    requested_by: Mapped[str] = mapped_column(String(64))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    decided_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoked_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    note: Mapped[str] = mapped_column(Text, default="")
    project_start: Mapped[date | None] = mapped_column(Date, nullable=True)  # the financed retrofit's start


class ConsentEventRow(Base):
    """The history of a consent: request, grant, refuse, revoke, export (append-only)."""

    __tablename__ = "evidence_consent_events"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    consent_id: Mapped[int] = mapped_column(ForeignKey("evidence_consents.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str] = mapped_column(Text, default="")


class ApiTokenRow(Base):
    """A bank's API token: only its SHA-256 is stored; revocable."""

    __tablename__ = "evidence_api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    bank: Mapped[str] = mapped_column(ForeignKey("users.username"), index=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(64))
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class SigningKeyRow(Base):
    """A public signing key of the park (Ed25519), published for ever: key id = SHA-256 of the raw public key."""

    __tablename__ = "evidence_signing_keys"

    key_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    park_id: Mapped[str] = mapped_column(String(64))
    public_pem: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)  # rotated out: still valid
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)  # compromised: not valid
    revoked_reason: Mapped[str] = mapped_column(Text, default="")


class PackLogRow(Base):
    """A pack issued: to whom, under which consent, signed by which key, and its headline figures per month."""

    __tablename__ = "evidence_pack_log"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    park_id: Mapped[str] = mapped_column(String(64))
    enterprise_id: Mapped[str] = mapped_column(String(64), index=True)
    period: Mapped[str] = mapped_column(String(16))
    consent_id: Mapped[int | None] = mapped_column(ForeignKey("evidence_consents.id"), nullable=True)
    issued_to: Mapped[str] = mapped_column(String(64))
    key_id: Mapped[str] = mapped_column(String(64))
    generated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    manifest_sha256: Mapped[str] = mapped_column(String(64))
    figures: Mapped[str] = mapped_column(Text)  # JSON: {"2024-03": {"energy_tce": ..., ...}, ...}
