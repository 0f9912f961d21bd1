"""Mailing report versions over SMTP: STARTTLS (port 587) or SMTPS (465), the server's certificate verified
(the system's CAs, or [smtp] ca_file), credentials from PARKCARBON_SMTP_USERNAME / PARKCARBON_SMTP_PASSWORD.

Each attempt is logged in `report_deliveries` (sent, or failed with the server's answer); a failed attempt is
retried after `delivery_backoff_s`, doubled each time, up to `delivery_attempts`; when every attempt failed,
`DeliveryError` is raised, so the run says so.  Nothing is silently dropped: `undelivered` lists the versions
whose last attempt failed, and the next scheduled run tries them again.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from park.settings import Settings
from portal.reports.archive import ReportDeliveryRow, ReportVersionRow, files, read_file
from portal.reports.config import ReportSettings, SmtpSettings, report_settings, smtp_settings
from portal.reports.content import TITLES

log = logging.getLogger(__name__)
MIME = {"xlsx": ("application", "vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        "csv": ("text", "csv"), "pdf": ("application", "pdf")}


class DeliveryError(RuntimeError):
    """Every attempt to mail a report failed (each attempt is in the delivery log)."""


@dataclass
class Delivery:
    version_id: int
    recipients: tuple[str, ...]
    attempts: int
    status: str  # sent, failed, or "no recipients"


def message(settings: Settings, engine: Engine, version: ReportVersionRow, recipients: tuple[str, ...],
            sender: str) -> EmailMessage:
    title_zh, title_en = TITLES[version.kind]
    msg = EmailMessage()
    msg["Subject"] = f"[ParkCarbon] {title_zh} {version.period} v{version.version} / {title_en}"
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain=sender.split("@")[-1] or "parkcarbon")
    rules = "监测规则全部通过 / all monitoring rules passed" if not version.failures else \
        f"{version.failures} 项规则未通过 / rule failure(s):\n{version.detail}"
    stored = files(engine, version.id)
    listing = "\n".join(f"  {r.name}  SHA-256 {r.sha256}" for r in stored.itertuples())
    msg.set_content(f"{title_zh} / {title_en}\n统计期 Period: {version.period}\n版本 Version: {version.version}\n"
                    f"{rules}\n\n附件 Attached files:\n{listing}\n\n数据指纹 Content SHA-256: {version.content_hash}\n")
    for r in stored.itertuples():
        name, data = read_file(settings, engine, int(r.id))
        maintype, subtype = MIME.get(r.format, ("application", "octet-stream"))
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return msg


def send(smtp: SmtpSettings, msg: EmailMessage) -> None:
    """Send one message (raises smtplib.SMTPException or OSError on failure)."""
    if not smtp.host:
        raise smtplib.SMTPException("no SMTP server: set [smtp] host")
    context = ssl.create_default_context(cafile=smtp.ca_file) if smtp.security != "none" else None
    if smtp.security == "ssl":
        client: smtplib.SMTP = smtplib.SMTP_SSL(smtp.host, smtp.port, timeout=smtp.timeout_s, context=context)
    else:
        client = smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout_s)
    with client:
        client.ehlo()
        if smtp.security == "starttls":
            client.starttls(context=context)
            client.ehlo()
        if smtp.username:
            client.login(smtp.username, smtp.password or "")
        client.send_message(msg)


def deliver(settings: Settings, engine: Engine, version_id: int, *, cfg: ReportSettings | None = None,
            smtp: SmtpSettings | None = None, sleep: Callable[[float], None] = time.sleep) -> Delivery:
    """Mail one archived version to its kind's recipients, retrying with backoff; DeliveryError when every
    attempt failed."""
    cfg = cfg or report_settings(settings)
    smtp = smtp or smtp_settings(settings)
    with Session(engine) as session:
        version = session.get(ReportVersionRow, version_id)
        if version is None:
            raise KeyError(f"no report version {version_id}")
        session.expunge(version)
    recipients = cfg.recipients.get(version.kind, ())
    if not recipients:
        return Delivery(version_id, (), 0, "no recipients")
    msg = message(settings, engine, version, recipients, smtp.sender or f"parkcarbon@{smtp.host or 'localhost'}")
    wait = cfg.delivery_backoff_s
    last = ""
    for attempt in range(1, cfg.delivery_attempts + 1):
        try:
            send(smtp, msg)
        except (smtplib.SMTPException, OSError) as exc:
            last = f"{type(exc).__name__}: {exc}"
            _log(engine, version_id, recipients, attempt, "failed", last)
            log.warning("mailing %s %s v%s, attempt %d of %d failed: %s", version.kind, version.period,
                        version.version, attempt, cfg.delivery_attempts, last)
            if attempt < cfg.delivery_attempts:
                sleep(wait)
                wait *= 2
            continue
        _log(engine, version_id, recipients, attempt, "sent", "")
        return Delivery(version_id, recipients, attempt, "sent")
    raise DeliveryError(f"{version.kind} {version.period} v{version.version}: not delivered to "
                        f"{', '.join(recipients)} after {cfg.delivery_attempts} attempt(s): {last}")


def _log(engine: Engine, version_id: int, recipients: tuple[str, ...], attempt: int, status: str, error: str
         ) -> None:
    with Session(engine) as session:
        session.add(ReportDeliveryRow(version_id=version_id, recipients=", ".join(recipients), attempt=attempt,
                                      status=status, error=error, attempted_at=datetime.now(UTC)))
        session.commit()


def undelivered(engine: Engine, park_id: str) -> list[int]:
    """Versions whose latest delivery attempt failed (to be tried again)."""
    with Session(engine) as session:
        last = select(ReportDeliveryRow.version_id, func.max(ReportDeliveryRow.id).label("last")).group_by(
            ReportDeliveryRow.version_id).subquery()
        rows = session.execute(select(ReportDeliveryRow.version_id).join(last, ReportDeliveryRow.id == last.c.last)
                               .join(ReportVersionRow, ReportVersionRow.id == ReportDeliveryRow.version_id)
                               .where(ReportDeliveryRow.status == "failed", ReportVersionRow.park_id == park_id))
        return sorted(r[0] for r in rows)
