"""Findings of the penetration test (issue 11, "Sessions and login"), each replayed against the real Flask app:
login CSRF without a session token, the open redirect after login, formula injection into the audit-log export
(CSV and Excel), a NUL byte and a 400 KB user name in logged fields, and the page shell behind open prefixes."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, urljoin, urlsplit

import openpyxl
import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from park.metadata import create_engine_from_url, import_park
from park.model import Enterprise, Meter, Park
from park.settings import Settings
from park.store.embedded import EmbeddedStore
from park.units import Carrier
from portal import audit
from portal.app import create_app
from portal.auth import AuthError, LoginFailureRow, LoginThrottle, SessionRow, add_user
from portal.context import PortalContext
from portal.web import safe_next, secret_key
from tests.support import portal as support

TZ = "Asia/Shanghai"
PARK = Park(id="p", name="测试园区", name_en="Test Park", enterprises=(Enterprise("E1", "甲公司", "Alpha Co."),),
            meters=(Meter("E1-M1", Carrier.ELECTRICITY, "E1"),))
NOW = pd.Timestamp("2024-03-10 12:00", tz=TZ)
PASSWORD = "correct horse battery"
HOST = "portal.test"


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("security")
    engine = create_engine_from_url(f"sqlite:///{tmp / 'meta.db'}")
    import_park(engine, PARK)
    store = EmbeddedStore(tmp / "ts.duckdb", PARK.catalog(), TZ)
    add_user(engine, "p", "admin", PASSWORD, "admin")
    add_user(engine, "p", "alpha", PASSWORD, "enterprise", "E1")
    ctx = PortalContext(Settings(data_dir=tmp), engine, PARK, store, clock=lambda: NOW)
    yield create_app(ctx, "k" * 32), ctx
    store.close()


def client_of(app):
    return app[0].server.test_client()


# ---- login CSRF --------------------------------------------------------------------------------------------------

def test_a_login_post_without_a_session_token_is_refused(app):
    """The attacker's page posts its own credentials with csrf='-' from a browser that never loaded the form."""
    client = client_of(app)
    resp = client.post("/login", data={"username": "alpha", "password": PASSWORD, "csrf": "-"})
    assert resp.status_code == 400
    assert client.get("/").status_code == 302  # not signed in
    empty = client_of(app).post("/login", data={"username": "alpha", "password": PASSWORD})
    assert empty.status_code == 400


def test_a_login_post_with_another_sessions_token_is_refused(app):
    victim, attacker = client_of(app), client_of(app)
    attacker.get("/login")
    with attacker.session_transaction() as s:
        stolen = s["login_csrf"]
    victim.get("/login")
    resp = victim.post("/login", data={"username": "alpha", "password": PASSWORD, "csrf": stolen})
    assert resp.status_code == 400


# ---- open redirect -----------------------------------------------------------------------------------------------

def browser_target(location: str) -> tuple[str, str]:
    """Where a browser goes for a Location header seen from https://portal.test/login: it drops tabs and
    newlines, trims C0 controls and spaces, and reads backslashes as slashes (WHATWG URL parsing)."""
    cleaned = "".join(ch for ch in location if ch not in "\t\n\r").strip("".join(map(chr, range(33))))
    resolved = urlsplit(urljoin(f"https://{HOST}/login", cleaned.replace("\\", "/")))
    return resolved.scheme, resolved.netloc


def login_with_next(client, raw_query_value: str):
    client.get("/login", base_url=f"https://{HOST}")
    with client.session_transaction(base_url=f"https://{HOST}") as s:
        token = s["login_csrf"]
    return client.post(f"/login?next={raw_query_value}",
                       data={"username": "alpha", "password": PASSWORD, "csrf": token}, base_url=f"https://{HOST}")


@pytest.mark.parametrize("raw", ["/%09/evil.example", "//evil.example", "/%5Cevil.example", "%5C%5Cevil.example",
                                 "https://evil.example", "/%0d%0a/evil.example", "javascript:alert(1)",
                                 "/%20/evil.example", "%09//evil.example", "/%E3%80%80/evil.example",
                                 "https:evil.example", "/./%2F/evil.example"])
def test_login_never_redirects_off_site(app, raw):
    resp = login_with_next(client_of(app), raw)
    assert resp.status_code == 302
    assert browser_target(resp.headers["Location"]) == ("https", HOST)
    assert resp.headers["Location"] == "/enterprise"  # refused: the role's landing page


def test_login_keeps_a_same_site_next(app):
    resp = login_with_next(client_of(app), quote("/equipment?day=2024-03-09", safe=""))
    assert resp.headers["Location"] == "/equipment?day=2024-03-09"


def test_the_login_guard_sends_the_asked_path_as_next(app):
    resp = client_of(app).get("/equipment?day=2024-03-09&x=1")
    assert resp.status_code == 302 and resp.headers["Location"] == "/login?next=%2Fequipment%3Fday%3D2024-03-09%26x%3D1"


NEXTS = st.one_of(st.text(max_size=40),
                  st.lists(st.sampled_from(["/", "\\", "//", "\t", "\n", "\r", " ", "\x00", "\u3000", ":", "%2F",
                                            "evil.example", "http", "https:", "@", "?", "#", ".", "..", "a"]),
                           max_size=12).map("".join))


@given(NEXTS)
@settings(max_examples=400, deadline=None)
def test_safe_next_never_names_another_site(target):
    got = safe_next(target)
    if got is not None:
        assert got == target and browser_target(got) == ("https", HOST)


@given(NEXTS)
@example("/\t/evil.example")
@example("/\\evil.example")
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_no_generated_next_yields_an_off_site_location(app, target):
    resp = login_with_next(client_of(app), quote(target, safe=""))
    assert resp.status_code == 302 and browser_target(resp.headers["Location"]) == ("https", HOST)


# ---- formula injection and logged fields ------------------------------------------------------------------------

PAYLOADS = ["=HYPERLINK(\"http://evil.example\",\"x\")", "+cmd|' /C calc'!A0", "-2+3+cmd|' /C calc'!A0",
            "@SUM(1+9)*cmd|' /C calc'!A0", "\t=1+1", "\r=1+1"]


def download(client, fmt: str) -> dict:
    token = support.session_csrf(client)
    body = support.callback_body(["admin-audit-download.data"],
                                 {f"admin-audit-dl-{fmt}.n_clicks": 1,
                                  f"admin-audit-dl-{'xlsx' if fmt == 'csv' else 'csv'}.n_clicks": None},
                                 {"lang.data": "en"})
    resp = client.post("/_dash-update-component", json=body, headers={"X-CSRFToken": token})
    assert resp.status_code == 200, resp.get_data(as_text=True)[:500]
    return resp.json["response"]["admin-audit-download"]["data"]


def test_failed_logins_never_become_live_formulas_in_the_audit_export(app):
    for name in PAYLOADS:
        support.login(client_of(app), name, "wrong password!")
    admin = client_of(app)
    support.login(admin, "admin", PASSWORD)

    rows = list(csv.reader(io.StringIO(download(admin, "csv")["content"].removeprefix("\ufeff"))))
    users = [r[1] for r in rows[1:]]
    for name in PAYLOADS:  # the login form strips the name; a leading tab or CR is covered in test_portal_downloads
        assert "'" + name.strip() in users, name
    assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for row in rows for cell in row)

    data = download(admin, "xlsx")
    book = openpyxl.load_workbook(io.BytesIO(base64.b64decode(data["content"])))
    cells = [c for row in book.active.iter_rows() for c in row if c.value is not None]
    assert not [c.coordinate for c in cells if c.data_type == "f"]
    texts = {c.value for c in cells if isinstance(c.value, str)}
    for name in PAYLOADS:
        assert "'" + name.strip() in texts, name


def test_a_nul_byte_and_a_huge_user_name_are_logged_bounded_and_the_export_still_opens(app):
    support.login(client_of(app), "E1\x00evil", "wrong password!")
    support.login(client_of(app), "x" * 400_000, "wrong password!")
    ev = audit.events(app[1].engine, limit=5)
    assert "\x00" not in "".join(ev["user"]) and "E1\ufffdevil" in set(ev["user"])
    assert ev["user"].str.len().max() <= 64 and "[400000 chars]" in ev["user"].iloc[0]
    assert all(len(d) < 5000 for d in ev["detail"]) and json.loads(ev["detail"].iloc[0])
    admin = client_of(app)
    support.login(admin, "admin", PASSWORD)
    book = openpyxl.load_workbook(io.BytesIO(base64.b64decode(download(admin, "xlsx")["content"])))
    assert any(c.value == "E1\ufffdevil" for row in book.active.iter_rows() for c in row)


# ---- open prefixes ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/loginx", "/login/../enterprise", "/healthzz", "/assetsx", "/favicon.icox"])
def test_only_the_exact_open_paths_are_served_without_login(app, path):
    resp = client_of(app).get(path)
    assert resp.status_code in (302, 404) and (resp.status_code == 404 or "/login?next=" in resp.headers["Location"])
    assert "_dash-config" not in resp.get_data(as_text=True)


# ---- sessions, cookies, headers, passwords --------------------------------------------------------------------

def test_security_headers_on_every_answer(app):
    client = client_of(app)
    for resp in (client.get("/login"), client.get("/"), client.get("/healthz")):
        assert resp.headers["X-Frame-Options"] == "DENY"
        assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"]
        assert resp.headers["X-Content-Type-Options"] == "nosniff"


def cookies_of(resp) -> dict[str, str]:
    return {c.split("=", 1)[0]: c for c in resp.headers.getlist("Set-Cookie")}


def test_cookies_are_secure_over_tls_only(app):
    tls = login_with_next(client_of(app), "")
    assert tls.status_code == 302
    assert all("Secure" in c for c in cookies_of(tls).values()) and {"session", "_csrf_token"} <= set(cookies_of(tls))
    plain = login(client_of(app), "alpha")
    assert not any("Secure" in c for c in cookies_of(plain).values())


def login(client, username: str, password: str = PASSWORD):
    return support.login(client, username, password)


def session_row(app, client) -> SessionRow:
    with client.session_transaction() as s:
        token = s["sid"]
    with Session(app[1].engine) as db:
        return db.get(SessionRow, hashlib.sha256(token.encode()).hexdigest())


def shift_session(app, client, **columns: timedelta) -> None:
    """Move the client's server-side session times back (as if they had passed)."""
    row = session_row(app, client)
    with Session(app[1].engine) as db, db.begin():
        db.execute(update(SessionRow).where(SessionRow.id == row.id)
                   .values({c: getattr(row, c) - d for c, d in columns.items()}))


def test_a_session_ends_at_its_absolute_lifetime_however_active(app):
    client = client_of(app)
    login(client, "alpha")
    assert client.get("/enterprise").status_code == 200
    row = session_row(app, client)
    assert row.expires_at - row.created_at == timedelta(hours=8) and row.revoked_at is None
    shift_session(app, client, expires_at=timedelta(hours=8, seconds=1))  # active all along, but 8 h are up
    assert client.get("/enterprise").status_code == 302
    assert client.post("/_dash-update-component", json={}).status_code == 401


def test_a_session_ends_after_two_idle_hours(app):
    client = client_of(app)
    login(client, "alpha")
    shift_session(app, client, last_seen_at=timedelta(hours=1, minutes=59))
    assert client.get("/enterprise").status_code == 200  # still in time: and now seen again
    assert datetime.now(UTC) - session_row(app, client).last_seen_at < timedelta(minutes=1)
    shift_session(app, client, last_seen_at=timedelta(hours=2, seconds=1))
    assert client.get("/enterprise").status_code == 302


def test_a_cookie_replayed_after_logout_is_refused(app):
    """The stolen copy of a cookie is worth nothing once its owner logs out (it used to keep working and renew
    itself)."""
    client = client_of(app)
    login(client, "alpha")
    stolen = client.get_cookie("session").value
    assert client.get("/logout").status_code == 302
    thief = client_of(app)
    thief.set_cookie("session", stolen)
    assert thief.get("/enterprise").status_code == 302
    assert thief.post("/_dash-update-component", json={}).status_code == 401
    assert session_row_by_cookie(app, stolen).revoked_at is not None


def session_row_by_cookie(app, cookie: str) -> SessionRow:
    data = app[0].server.session_interface.get_signing_serializer(app[0].server).loads(cookie)
    with Session(app[1].engine) as db:
        return db.get(SessionRow, hashlib.sha256(data["sid"].encode()).hexdigest())


def test_a_session_is_served_by_any_portal_process_sharing_the_database(app, tmp_path):
    """Two apps on the same metadata database stand for two workers: signed in through one, served by the other,
    and a logout through the second ends the session in the first."""
    ctx = app[1]
    other = create_app(PortalContext(ctx.settings, ctx.engine, ctx.park, ctx.store, clock=ctx.clock), "k" * 32)
    one, two = client_of(app), other.server.test_client()
    login(one, "alpha")
    two.set_cookie("session", one.get_cookie("session").value)
    assert two.get("/enterprise").status_code == 200
    two.get("/logout")
    assert one.get("/enterprise").status_code == 302


def test_a_password_reset_ends_the_users_sessions(app):
    add_user(app[1].engine, "p", "bob", PASSWORD, "enterprise", "E1")
    client, laptop = client_of(app), client_of(app)
    login(client, "bob")
    login(laptop, "bob")
    assert client.get("/enterprise").status_code == 200
    add_user(app[1].engine, "p", "bob", "another long passphrase", "enterprise", "E1", replace=True)
    assert client.get("/enterprise").status_code == 302  # the stolen or old cookie is worth nothing now
    assert laptop.get("/enterprise").status_code == 302
    login(client, "bob", "another long passphrase")
    assert client.get("/enterprise").status_code == 200


@pytest.mark.parametrize("password", [" " * 10, "1234567890", "0987654321", "qwertyuiop", "aaaaaaaaaaaa",
                                      "Password123", "abcdefghijk", "ababababab"])
def test_common_and_trivial_passwords_are_refused(app, password):
    with pytest.raises(AuthError):
        add_user(app[1].engine, "p", "weak", password, "admin")


def test_the_secret_key_file_is_private(tmp_path):
    key = secret_key(tmp_path, None)
    assert len(key) > 40 and (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600
    assert secret_key(tmp_path, None) == key


# ---- throttling instead of lockout --------------------------------------------------------------------------------

def login_from(app, address: str, username: str, password: str):
    client = client_of(app)
    env = {"REMOTE_ADDR": address}
    client.get("/login", environ_overrides=env)
    with client.session_transaction() as s:
        token = s["login_csrf"]
    return client.post("/login", data={"username": username, "password": password, "csrf": token},
                       environ_overrides=env)


def test_guessing_one_account_is_throttled_at_that_address_only_and_unknown_names_answer_the_same(app):
    for _ in range(5):
        assert login_from(app, "203.0.113.7", "alpha", "wrong password!").status_code == 200
    held = login_from(app, "203.0.113.7", "alpha", PASSWORD)  # even the right password waits at that address
    assert held.status_code == 429 and "登录失败次数过多" in held.get_data(as_text=True)  # in the page's language
    for _ in range(5):
        login_from(app, "203.0.113.8", "nobody-here", "wrong password!")
    unknown = login_from(app, "203.0.113.8", "nobody-here", "wrong password!")
    assert unknown.status_code == 429 and unknown.get_data(as_text=True).replace("nobody-here", "") \
        .split("role=\"alert\">")[1][:40] == held.get_data(as_text=True).split("role=\"alert\">")[1][:40]
    rightful = login_from(app, "198.51.100.20", "alpha", PASSWORD)  # the real user, elsewhere: not locked out
    assert rightful.status_code == 302
    actions = audit.events(app[1].engine, limit=20)["action"].tolist()
    assert "login_throttled" in actions


def test_password_spraying_from_one_address_is_throttled(app):
    for i in range(20):
        assert login_from(app, "203.0.113.50", f"user{i}", "Winter2024!!").status_code == 200
    assert login_from(app, "203.0.113.50", "alpha", PASSWORD).status_code == 429
    assert login_from(app, "203.0.113.51", "alpha", PASSWORD).status_code == 302


def test_the_throttle_forgets_after_its_window_and_a_success_clears_the_name(app):
    now = [datetime(2024, 3, 10, 4, tzinfo=UTC)]
    throttle = LoginThrottle(app[1].engine, per_name=2, per_address=5, per_account=100,
                             window=timedelta(seconds=60), clock=lambda: now[0])
    throttle.failed("10.9.0.1", "x")
    throttle.failed("10.9.0.1", "X ")
    assert throttle.wait("10.9.0.1", "x") == 60 and throttle.wait("10.9.0.2", "x") == 0
    assert throttle.wait("10.9.0.1", "y") == 0
    now[0] += timedelta(seconds=61)
    assert throttle.wait("10.9.0.1", "x") == 0
    throttle.failed("10.9.0.1", "x")
    throttle.succeeded("10.9.0.1", "x")
    throttle.failed("10.9.0.1", "x")
    assert throttle.wait("10.9.0.1", "x") == 0
    with Session(app[1].engine) as db:  # the old rows went as new ones came: the table stays small
        assert db.scalar(select(func.count()).select_from(LoginFailureRow)
                         .where(LoginFailureRow.at <= now[0] - timedelta(seconds=60))) == 0


def test_the_throttle_is_shared_by_every_process_on_the_database(app):
    """Counted in the metadata database: a second throttle object (another worker) sees the first one's failures."""
    one, two = LoginThrottle(app[1].engine, per_name=3), LoginThrottle(app[1].engine, per_name=3)
    for _ in range(3):
        one.failed("10.8.0.1", "carol")
    assert two.wait("10.8.0.1", "carol") > 0


def test_guessing_from_many_addresses_slows_the_account_but_not_a_browser_it_signed_in_from(app):
    """A distributed guesser (a new address per try) gets one try per 10 s at the account; the rightful user's
    browser, which signed in before, is not held up; an unknown name answers the same."""
    add_user(app[1].engine, "p", "dora", PASSWORD, "enterprise", "E1")
    rightful = client_of(app)
    env = {"REMOTE_ADDR": "198.51.100.77"}
    rightful.get("/login", environ_overrides=env)
    with rightful.session_transaction() as s:
        token = s["login_csrf"]
    assert rightful.post("/login", data={"username": "dora", "password": PASSWORD, "csrf": token},
                         environ_overrides=env).status_code == 302
    rightful.get("/logout")
    answers = [login_from(app, f"192.0.2.{i}", name, "wrong password!").status_code
               for name in ("dora", "ghost-of-dora") for i in range(12)]
    assert answers[:10] == [200] * 10 and answers[10:12] == [429, 429]  # the 11th try of dora waits
    assert answers[12:22] == [200] * 10 and answers[22:] == [429, 429]  # the same for a name nobody has
    assert login_from(app, "192.0.2.200", "dora", PASSWORD).status_code == 429  # a stranger's browser waits
    rightful.get("/login", environ_overrides=env)
    with rightful.session_transaction() as s:
        token = s["login_csrf"]
    back = rightful.post("/login", data={"username": "dora", "password": PASSWORD, "csrf": token},
                         environ_overrides=env)
    assert back.status_code == 302  # the browser dora signed in from before
    forged = client_of(app)
    forged.set_cookie("pc_known", "dora")  # not signed: counts for nothing
    forged.get("/login")
    with forged.session_transaction() as s:
        token = s["login_csrf"]
    assert forged.post("/login", data={"username": "dora", "password": PASSWORD, "csrf": token}).status_code == 429


EVENTS = st.lists(st.tuples(st.sampled_from(["10.7.0.1", "10.7.0.2", "10.7.0.3"]), st.sampled_from(["ann", "Ann ",
                                                                                                     "bo"]),
                            st.integers(0, 40)), max_size=40)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=EVENTS, known=st.booleans())
def test_the_throttle_waits_exactly_when_a_limit_is_reached_in_the_window(app, events, known):
    """Against a plain model: an attempt waits iff its address had per_address failures within the window, or the
    pair per_name, or (for a browser the user never signed in from) the account per_account with the last less
    than the spacing ago.  Names compare trimmed and case-blind."""
    window, spacing = timedelta(seconds=60), timedelta(seconds=10)
    now = [datetime(2024, 3, 10, 4, tzinfo=UTC)]
    throttle = LoginThrottle(app[1].engine, per_name=3, per_address=5, per_account=4, window=window,
                             account_spacing=spacing, clock=lambda: now[0])
    with Session(app[1].engine) as db, db.begin():
        db.execute(LoginFailureRow.__table__.delete())
    log: list[tuple[str, str, datetime]] = []
    for address, name, step in events:
        now[0] += timedelta(seconds=step)
        throttle.failed(address, name)
        log.append((address, name.strip().lower(), now[0]))
    now[0] += timedelta(seconds=1)
    recent = [e for e in log if now[0] - e[2] < window]
    for address in ("10.7.0.1", "10.7.0.2", "10.7.0.3", "10.7.0.9"):
        for name in ("ann", "bo", "cy"):
            by_address = [e for e in recent if e[0] == address]
            by_pair = [e for e in by_address if e[1] == name]
            by_account = [e for e in recent if e[1] == name]
            expect = (len(by_address) >= 5 or len(by_pair) >= 3
                      or (not known and len(by_account) >= 4 and now[0] - by_account[-1][2] < spacing))
            assert (throttle.wait(address, name, known_browser=known) > 0) == expect, (address, name)


def test_health_reports_an_unreachable_broker_and_answers_503(app):
    """[collect.mqtt] configured: the broker is checked too; with nothing listening, 503 naming it."""
    import socket

    from tests.support.servers import free_port

    ctx = app[1]
    port = free_port()
    settings_ = Settings(data_dir=ctx.settings.data_dir, collect={"mqtt": {"host": "127.0.0.1", "port": port}})
    other = create_app(PortalContext(settings_, ctx.engine, ctx.park, ctx.store, clock=ctx.clock), "k" * 32)
    client = other.server.test_client()
    down = client.get("/healthz")
    assert down.status_code == 503
    checks = down.get_json()["checks"]
    assert checks["broker"]["ok"] is False and checks["store"]["ok"] and checks["metadata"]["ok"]
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", port))
        listener.listen()
        up = client.get("/healthz")
    broker = up.get_json()["checks"]["broker"]
    assert up.status_code == 200 and broker["ok"] is True and broker["detail"] == f"127.0.0.1:{port}"
