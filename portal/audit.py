"""The portal's audit log: who did what, when (logins, downloads, acknowledgements, admin changes).
Append-only: there is no update or delete path in the code.

Every field is bounded and cleaned before it is stored, because much of it comes from whoever is at the login
form: control characters (a NUL in a refused enterprise id) become U+FFFD, and text longer than its column (a
400 KB user name) is cut with a marker saying how long it was.  The export neutralises formulas
(portal.downloads)."""

from __future__ import annotations

import json
import re
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


MAX_USERNAME, MAX_ACTION, MAX_TARGET, MAX_DETAIL_VALUE = 64, 64, 256, 1000
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def bounded(value: object, limit: int) -> str:
    """`value` as text without control characters (tab and newline kept), at most `limit` characters; a longer
    text is cut and says how long it was."""
    text = _CONTROL.sub("\ufffd", str(value))
    if len(text) <= limit:
        return text
    marker = f"…[{len(text)} chars]"
    return text[: max(0, limit - len(marker))] + marker


def record(engine: Engine, username: str, action: str, target: str = "", **detail: object) -> None:
    clean = {bounded(k, 64): v if isinstance(v, int | float | bool) or v is None else bounded(v, MAX_DETAIL_VALUE)
             for k, v in detail.items()}
    with Session(engine) as s, s.begin():
        s.add(AuditEvent(at=datetime.now(UTC), username=bounded(username, MAX_USERNAME),
                         action=bounded(action, MAX_ACTION), target=bounded(target, MAX_TARGET),
                         detail=json.dumps(clean, ensure_ascii=False, default=str)))


def events(engine: Engine, limit: int = 1000) -> pd.DataFrame:
    with Session(engine) as s:
        rows = s.scalars(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)).all()
        return pd.DataFrame([{"at": r.at, "user": r.username, "action": r.action, "target": r.target,
                              "detail": r.detail} for r in rows], columns=["at", "user", "action", "target", "detail"])
