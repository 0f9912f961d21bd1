"""Bank consents: a bank asks to see an enterprise's data for a purpose, a scope (data kinds and months) and until
an expiry; the enterprise grants or refuses; either may revoke.  A consent is *in force* while it is granted, not
revoked and not expired, and only then does the bank see anything of the enterprise (the portal's scope, the
evidence packs, the API).

Every request, grant, refusal, revocation and export is written twice: in the consent's own history
(evidence_consent_events) and in the portal's audit log (portal.audit), with who did it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime

import pandas as pd
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from portal import audit
from portal.auth import Role, UserRow
from portal.evidence.tables import ConsentEventRow, ConsentRow

PURPOSES = ("loan_application", "post_loan_monitoring")
DATA = ("energy", "emissions", "utilisation", "savings", "risk")  # what a consent may cover
STATES = ("requested", "granted", "refused", "revoked")


class ConsentError(ValueError):
    """A consent action that cannot be done (unknown consent, wrong party, wrong state, bad input)."""


class NoConsent(PermissionError):
    """No consent in force covers what was asked."""


@dataclass(frozen=True)
class Consent:
    id: int
    bank: str
    enterprise: str
    purpose: str
    data: tuple[str, ...]
    period_from: date  # first month (its first day)
    period_to: date  # last month (its first day), inclusive
    expires_at: datetime
    state: str
    requested_at: datetime
    requested_by: str
    decided_at: datetime | None
    decided_by: str | None
    revoked_at: datetime | None
    revoked_by: str | None
    note: str
    project_start: date | None = None  # the financed project's start (measured savings)

    def status(self, now: datetime) -> str:
        """The state, with a granted consent past its expiry shown as 'expired'."""
        return "expired" if self.state == "granted" and now >= self.expires_at else self.state

    def in_force(self, now: datetime) -> bool:
        return self.status(now) == "granted"

    def covers(self, months: list[date]) -> bool:
        return all(self.period_from <= m <= self.period_to for m in months)

    @property
    def periods(self) -> str:
        return f"{self.period_from:%Y-%m} – {self.period_to:%Y-%m}"


def _consent(row: ConsentRow) -> Consent:
    return Consent(row.id, row.bank, row.enterprise_id, row.purpose, tuple(row.data.split(",")) if row.data else (),
                   row.period_from, row.period_to, row.expires_at, row.state, row.requested_at, row.requested_by,
                   row.decided_at, row.decided_by, row.revoked_at, row.revoked_by, row.note, row.project_start)


def _now(now: datetime | None) -> datetime:
    return datetime.now(UTC) if now is None else pd.Timestamp(now).tz_convert("UTC").to_pydatetime()


def month(text: str | date) -> date:
    """'2024-03' (or a date) -> the first day of that month; ConsentError otherwise."""
    if isinstance(text, date):
        return text.replace(day=1)
    try:
        t = pd.Timestamp(str(text).strip())
    except ValueError:
        raise ConsentError(f"month {text!r} is not YYYY-MM") from None
    return date(t.year, t.month, 1)


def _log(s: Session, engine_actor: str, consent: ConsentRow, action: str, at: datetime, **detail: object) -> None:
    s.add(ConsentEventRow(consent_id=consent.id, at=at, actor=engine_actor, action=action,
                          detail=json.dumps(detail, ensure_ascii=False, default=str)))


def _user(s: Session, username: str) -> UserRow:
    row = s.get(UserRow, username)
    if row is None:
        raise ConsentError(f"no user {username!r}")
    return row


def request(engine: Engine, park_id: str, bank: str, enterprise: str, purpose: str, data: list[str] | tuple,
            period_from: str | date, period_to: str | date, expires_at, *, actor: str | None = None,
            note: str = "", now: datetime | None = None, project_start: str | date | None = None) -> Consent:
    """A bank's request (state 'requested'); ConsentError naming what is wrong.  `project_start`: the start of the
    financed project (a retrofit) whose measured savings the pack reports (data 'savings'); the consented months
    must then hold its baseline, at least 12 months before it."""
    at = _now(now)
    if purpose not in PURPOSES:
        raise ConsentError(f"purpose {purpose!r} must be one of {', '.join(PURPOSES)}")
    data = tuple(dict.fromkeys(data))
    bad = [d for d in data if d not in DATA]
    if not data or bad:
        raise ConsentError(f"data {', '.join(bad) or '(none)'} must be among {', '.join(DATA)}")
    first, last = month(period_from), month(period_to)
    if last < first:
        raise ConsentError(f"period ends ({last:%Y-%m}) before it starts ({first:%Y-%m})")
    expires = _now(expires_at)
    project = None
    if project_start not in (None, ""):
        try:
            project = pd.Timestamp(str(project_start)).date()
        except ValueError:
            raise ConsentError(f"project start {project_start!r} is not a date (YYYY-MM-DD)") from None
        if not first < project < (pd.Timestamp(last) + pd.DateOffset(months=1)).date():
            raise ConsentError(f"project start {project} must fall after the first consented month {first:%Y-%m} "
                               f"and within the consented months (to {last:%Y-%m})")
    if "savings" in data and project is None:
        raise ConsentError("data 'savings' needs the financed project's start date (project_start)")
    if expires <= at:
        raise ConsentError(f"expiry {expires:%Y-%m-%d %H:%M} UTC is not in the future")
    with Session(engine) as s, s.begin():
        user = _user(s, bank)
        if user.role != Role.BANK:
            raise ConsentError(f"user {bank!r} is not a bank (role {user.role})")
        from park.metadata import EnterpriseRow

        enterprise = (enterprise or "").strip()
        if s.get(EnterpriseRow, (park_id, enterprise)) is None:  # a unified social credit code names it too
            by_code = s.scalars(select(EnterpriseRow.id).where(EnterpriseRow.park_id == park_id,
                                                               EnterpriseRow.credit_code == enterprise)).first()
            if not enterprise or by_code is None:
                raise ConsentError(f"no enterprise {enterprise!r} in park {park_id}")
            enterprise = by_code
        row = ConsentRow(park_id=park_id, bank=bank, enterprise_id=enterprise, purpose=purpose, data=",".join(data),
                         period_from=first, period_to=last, expires_at=expires, state="requested", requested_at=at,
                         requested_by=actor or bank, note=note, project_start=project)
        s.add(row)
        s.flush()
        _log(s, actor or bank, row, "request", at, purpose=purpose, data=row.data, periods=f"{first}..{last}",
             expires_at=expires.isoformat())
        out = _consent(row)
    audit.record(engine, actor or bank, "consent_request", f"consent:{out.id}", enterprise=enterprise, bank=bank,
                 purpose=purpose, data=",".join(data), periods=out.periods, expires_at=expires.isoformat())
    return out


def _decide(engine: Engine, consent_id: int, actor: str, action: str, allowed: tuple[str, ...], state: str,
            party: Callable[[ConsentRow, UserRow], bool], who: str, now: datetime | None, reason: str) -> Consent:
    at = _now(now)
    with Session(engine) as s, s.begin():
        row = s.get(ConsentRow, consent_id)
        if row is None:
            raise ConsentError(f"no consent {consent_id}")
        user = _user(s, actor)
        if not party(row, user):
            raise ConsentError(f"user {actor!r} may not {action} consent {consent_id}: only {who} may")
        if row.state not in allowed:
            raise ConsentError(f"consent {consent_id} is {row.state}: it cannot be {state} (only when "
                               f"{' or '.join(allowed)})")
        if action == "grant" and at >= row.expires_at:
            raise ConsentError(f"consent {consent_id} expired at {row.expires_at:%Y-%m-%d %H:%M} UTC: ask the bank "
                               "for a new request")
        row.state = state
        if action == "revoke":
            row.revoked_at, row.revoked_by = at, actor
        else:
            row.decided_at, row.decided_by = at, actor
        _log(s, actor, row, action, at, reason=reason)
        out = _consent(row)
    audit.record(engine, actor, f"consent_{action}", f"consent:{consent_id}", enterprise=out.enterprise,
                 bank=out.bank, reason=reason)
    return out


def _enterprise_of(row: ConsentRow, user: UserRow) -> bool:
    return user.role in (Role.ENTERPRISE, Role.ADMIN) and (user.role == Role.ADMIN
                                                           or user.enterprise_id == row.enterprise_id)


def grant(engine: Engine, consent_id: int, actor: str, now: datetime | None = None, reason: str = "") -> Consent:
    """The enterprise (its user, or the park administrator on its written instruction) grants a request."""
    return _decide(engine, consent_id, actor, "grant", ("requested",), "granted", _enterprise_of,
                   "the enterprise (or the park administrator)", now, reason)


def refuse(engine: Engine, consent_id: int, actor: str, now: datetime | None = None, reason: str = "") -> Consent:
    return _decide(engine, consent_id, actor, "refuse", ("requested",), "refused", _enterprise_of,
                   "the enterprise (or the park administrator)", now, reason)


def revoke(engine: Engine, consent_id: int, actor: str, now: datetime | None = None, reason: str = "") -> Consent:
    """Either party (the bank, or the enterprise or the park administrator) ends a request or a consent."""
    return _decide(engine, consent_id, actor, "revoke", ("requested", "granted"), "revoked",
                   lambda row, user: _enterprise_of(row, user) or user.username == row.bank,
                   "the bank or the enterprise", now, reason)


def record_export(engine: Engine, consent: Consent, actor: str, what: str, now: datetime | None = None,
                  **detail: object) -> None:
    """An export under a consent (a pack built or fetched): in its history and in the audit log."""
    at = _now(now)
    with Session(engine) as s, s.begin():
        row = s.get(ConsentRow, consent.id)
        _log(s, actor, row, "export", at, what=what, **detail)
    audit.record(engine, actor, "consent_export", f"consent:{consent.id}", enterprise=consent.enterprise,
                 bank=consent.bank, what=what, **detail)


def consents(engine: Engine, park_id: str, *, bank: str | None = None, enterprise: str | None = None
             ) -> list[Consent]:
    """Consents of a bank and/or an enterprise, newest first."""
    q = select(ConsentRow).where(ConsentRow.park_id == park_id)
    if bank is not None:
        q = q.where(ConsentRow.bank == bank)
    if enterprise is not None:
        q = q.where(ConsentRow.enterprise_id == enterprise)
    with Session(engine) as s:
        return [_consent(r) for r in s.scalars(q.order_by(ConsentRow.id.desc()))]


def get(engine: Engine, consent_id: int) -> Consent:
    with Session(engine) as s:
        row = s.get(ConsentRow, consent_id)
        if row is None:
            raise ConsentError(f"no consent {consent_id}")
        return _consent(row)


def history(engine: Engine, consent_id: int) -> pd.DataFrame:
    with Session(engine) as s:
        rows = s.scalars(select(ConsentEventRow).where(ConsentEventRow.consent_id == consent_id)
                         .order_by(ConsentEventRow.id)).all()
        return pd.DataFrame([{"at": r.at, "actor": r.actor, "action": r.action, "detail": r.detail} for r in rows],
                            columns=["at", "actor", "action", "detail"])


def in_force(engine: Engine, bank: str, now: datetime | None = None) -> list[Consent]:
    """The bank's consents in force at `now`."""
    at = _now(now)
    with Session(engine) as s:
        rows = s.scalars(select(ConsentRow).where(ConsentRow.bank == bank, ConsentRow.state == "granted")).all()
        return [c for c in map(_consent, rows) if c.in_force(at)]


def covering(engine: Engine, bank: str, enterprise: str, months: list[date], data: str = "energy",
             now: datetime | None = None) -> Consent:
    """The consent in force that lets `bank` see `enterprise` over `months` (and `data`); NoConsent otherwise
    (the newest one wins when several cover)."""
    found = [c for c in in_force(engine, bank, now) if c.enterprise == enterprise and c.covers(months)
             and data in c.data]
    if not found:
        raise NoConsent(f"bank {bank} has no consent in force for enterprise {enterprise} covering "
                        f"{months[0]:%Y-%m} – {months[-1]:%Y-%m} ({data})")
    return max(found, key=lambda c: c.id)


def provider(engine: Engine, clock: Callable[[], object] | None = None):
    """The portal's ConsentProvider (portal.scope): a bank user -> the enterprises with a consent in force."""

    def enterprises(user) -> frozenset[str]:
        if user.role is not Role.BANK:
            return frozenset()
        return frozenset(c.enterprise for c in in_force(engine, user.username, clock() if clock else None))

    return enterprises
