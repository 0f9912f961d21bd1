"""The portal's audit log: who did what, when (logins, downloads, acknowledgements, admin changes).
Append-only: there is no update or delete path in the code."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pandas as pd
from sqlalchemy import Engine, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from park.metadata import Base, UTCDateTime


class AuditEvent(Base):
    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    username: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))  # login, login_failed, logout, download, ack_warning, ...
    target: Mapped[str] = mapped_column(String(256), default="")
    detail: Mapped[str] = mapped_column(Text, default="")  # JSON


def record(engine: Engine, username: str, action: str, target: str = "", **detail: object) -> None:
    with Session(engine) as s, s.begin():
        s.add(AuditEvent(at=datetime.now(UTC), username=username, action=action, target=target,
                         detail=json.dumps(detail, ensure_ascii=False, default=str)))


def events(engine: Engine, limit: int = 1000) -> pd.DataFrame:
    with Session(engine) as s:
        rows = s.scalars(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)).all()
        return pd.DataFrame([{"at": r.at, "user": r.username, "action": r.action, "target": r.target,
                              "detail": r.detail} for r in rows], columns=["at", "user", "action", "target", "detail"])
