"""Mailing reports to a real local SMTP server (aiosmtpd) over STARTTLS and SMTPS, with a self-signed certificate
made here (cryptography) and trusted through [smtp] ca_file; credentials from the environment; failures retried
with doubling waits, each attempt in the delivery log, never dropped silently."""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
from email import message_from_bytes
from email.message import Message

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.reports.archive import ReportDeliveryRow, run_report, versions
from portal.reports.config import report_settings, smtp_settings
from portal.reports.delivery import DeliveryError, deliver, undelivered
from tests.reports.support import NOW, PARK, build

USER, PASSWORD = "reports@park.example", "s3cret-from-env"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1: (cert file, key file)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "parkcarbon test smtp")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    folder = tmp_path_factory.mktemp("tls")
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


class Inbox:
    """The SMTP server's handler: keeps what it accepts; refuses the first `refuse` messages with 451."""

    def __init__(self, refuse: int = 0) -> None:
        self.messages: list[tuple[list[str], Message]] = []
        self.refuse = refuse
        self.logins: list[str] = []

    async def handle_DATA(self, server, session, envelope):
        if self.refuse > 0:
            self.refuse -= 1
            return "451 4.3.0 try again later"
        self.messages.append((list(envelope.rcpt_tos), message_from_bytes(envelope.original_content)))
        return "250 OK"

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        ok = auth_data.login == USER.encode() and auth_data.password == PASSWORD.encode()
        if ok:
            self.logins.append(auth_data.login.decode())
        return AuthResult(success=ok)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _server(inbox: Inbox, certificate, implicit_tls: bool) -> Controller:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    common = {"hostname": "127.0.0.1", "port": _free_port(), "authenticator": inbox.authenticate}
    if implicit_tls:  # the whole connection is TLS (aiosmtpd does not count it as such for auth_require_tls)
        controller = Controller(inbox, ssl_context=context, auth_require_tls=False, **common)
    else:
        controller = Controller(inbox, tls_context=context, require_starttls=True, auth_require_tls=True, **common)
    controller.start()
    return controller


@pytest.fixture
def archived(tmp_path):
    settings, engine, store = build(tmp_path, {"reports": {"formats": ["xlsx", "csv"], "delivery_attempts": 3,
                                                           "delivery_backoff_s": 2.0,
                                                           "recipients": {"monthly": ["regulator@gov.example",
                                                                                      "archive@park.example"]}}})
    result = run_report(settings, engine, PARK, store, "monthly", "2026-10", now=NOW)
    store.close()
    return settings, engine, result


def _settings_for(settings, controller: Controller, security: str, ca_file):
    settings.smtp = {"host": "127.0.0.1", "port": controller.port, "from": "parkcarbon@park.example",
                     "security": security, "timeout_s": 10, **({"ca_file": str(ca_file)} if ca_file else {})}
    return smtp_settings(settings, env={"PARKCARBON_SMTP_USERNAME": USER, "PARKCARBON_SMTP_PASSWORD": PASSWORD})


@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_delivered_over_tls_with_the_files_attached(archived, certificate, security):
    settings, engine, result = archived
    inbox = Inbox()
    controller = _server(inbox, certificate, implicit_tls=security == "ssl")
    try:
        smtp = _settings_for(settings, controller, security, certificate[0])
        delivery = deliver(settings, engine, result.version_id, smtp=smtp, sleep=lambda s: None)
    finally:
        controller.stop()
    assert delivery.status == "sent" and delivery.attempts == 1
    assert inbox.logins == [USER]  # credentials from the environment
    (rcpt, msg), = inbox.messages
    assert rcpt == ["regulator@gov.example", "archive@park.example"]
    assert "2026-10" in msg["Subject"] and "v1" in msg["Subject"]
    names = {part.get_filename() for part in msg.walk() if part.get_filename()}
    assert "monthly-p-2026-10-v1.xlsx" in names and "monthly-p-2026-10-v1-emissions.csv" in names
    xlsx = next(p for p in msg.walk() if p.get_filename() == "monthly-p-2026-10-v1.xlsx").get_payload(decode=True)
    assert xlsx[:2] == b"PK"
    body = next(p for p in msg.walk() if p.get_content_type() == "text/plain").get_payload(decode=True).decode()
    assert "丙公司" in body  # the failed rule, by name
    assert versions(engine, "p")["delivered"].iloc[0] == "sent"


def test_refused_attempts_are_retried_with_doubling_waits_and_logged(archived, certificate):
    settings, engine, result = archived
    inbox = Inbox(refuse=2)
    controller = _server(inbox, certificate, implicit_tls=False)
    waits: list[float] = []
    try:
        smtp = _settings_for(settings, controller, "starttls", certificate[0])
        delivery = deliver(settings, engine, result.version_id, smtp=smtp, sleep=waits.append)
    finally:
        controller.stop()
    assert (delivery.status, delivery.attempts) == ("sent", 3)
    assert waits == [2.0, 4.0]
    assert len(inbox.messages) == 1
    with Session(engine) as s:
        log = [(r.attempt, r.status, r.error) for r in s.scalars(select(ReportDeliveryRow).order_by(
            ReportDeliveryRow.id))]
    assert [(a, st) for a, st, _ in log] == [(1, "failed"), (2, "failed"), (3, "sent")]
    assert "451" in log[0][2]


def test_an_untrusted_certificate_fails_every_attempt_and_is_not_dropped(archived, certificate):
    settings, engine, result = archived
    inbox = Inbox()
    controller = _server(inbox, certificate, implicit_tls=False)
    try:
        smtp = _settings_for(settings, controller, "starttls", ca_file=None)  # the system CAs do not know it
        with pytest.raises(DeliveryError, match="not delivered to regulator@gov.example"):
            deliver(settings, engine, result.version_id, smtp=smtp, sleep=lambda s: None)
    finally:
        controller.stop()
    assert inbox.messages == []
    with Session(engine) as s:
        statuses = [r.status for r in s.scalars(select(ReportDeliveryRow))]
    assert statuses == ["failed"] * report_settings(settings).delivery_attempts
    assert undelivered(engine, "p") == [result.version_id]  # the next scheduled run tries again
    assert versions(engine, "p")["delivered"].iloc[0] == "failed"
