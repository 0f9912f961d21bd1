"""`parkcarbon serve` under gunicorn, as an operator runs it: several workers on a real influxd and a real
PostgreSQL, a session begun through one worker and served by another, logout refused everywhere, graceful reload
(SIGHUP), health that follows the store, no server version; and the combinations that cannot work refused.

The worker that answered is read from the X-ParkCarbon-Worker header, set only with PARKCARBON_EXPOSE_WORKER=1
(this test's environment).  Tests needing servers skip locally when one is missing and fail under CI=true.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from park.parkfile import DEMO_PARK_FILE
from portal.web import WORKER_HEADER
from tests.support.postgres import postgres_server
from tests.support.servers import free_port, stop_process

PARKCARBON = str(Path(sys.executable).with_name("parkcarbon"))
PASSWORD = "a long enough passphrase"


def run(config: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([PARKCARBON, "--config", str(config), *args], input=stdin, capture_output=True, text=True,
                          timeout=300, check=False)


class Portal:
    """A `parkcarbon serve` process and the HTTP conversation with it (a new connection per request, so that
    gunicorn's workers take turns)."""

    def __init__(self, config: Path, workers: int, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        env = {**os.environ, "PARKCARBON_EXPOSE_WORKER": "1"}
        with open(log, "wb") as out:
            self.proc = subprocess.Popen([PARKCARBON, "--config", str(config), "serve", "--workers", str(workers),
                                          "--port", str(self.port)], stdout=out, stderr=subprocess.STDOUT, env=env)
        self.wait_healthy()

    def wait_healthy(self, timeout_s: float = 90) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"serve exited {self.proc.returncode}:\n{self.log.read_text()}")
            try:
                if self.get("/healthz").status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.3)
        raise AssertionError(f"no healthy portal within {timeout_s} s:\n{self.log.read_text()}")

    def get(self, path: str, cookies: dict | None = None, **kw) -> requests.Response:
        return requests.get(self.url + path, cookies=cookies, allow_redirects=False, timeout=60,
                            headers={"Connection": "close"}, **kw)

    def post(self, path: str, cookies: dict | None = None, **kw) -> requests.Response:
        headers = {"Connection": "close", **kw.pop("headers", {})}
        return requests.post(self.url + path, cookies=cookies, allow_redirects=False, timeout=60, headers=headers,
                             **kw)

    def login(self, username: str, password: str) -> tuple[dict, requests.Response]:
        page = self.get("/login")
        token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        cookies = dict(page.cookies)
        resp = self.post("/login", cookies=cookies, data={"username": username, "password": password, "csrf": token})
        return {**cookies, **dict(resp.cookies)}, resp

    def served_by_another(self, pid: str, path: str, cookies: dict, tries: int = 60) -> requests.Response:
        """The first answer to `path` from a worker other than `pid`."""
        for _ in range(tries):
            resp = self.get(path, cookies=cookies)
            if resp.headers[WORKER_HEADER] != pid:
                return resp
        raise AssertionError(f"every one of {tries} requests was served by worker {pid}")

    def stop(self) -> None:
        stop_process(self.proc, timeout_s=40)


def write_config(root: Path, body: str, secure_cookies: bool = False) -> Path:
    config = root / "parkcarbon.toml"
    secure = "" if secure_cookies else "secure_cookies = false\n"  # on by default
    config.write_text(f'data_dir = "state"\n{body}\n[serve]\n{secure}access_log = "access.log"\n')
    return config


def prepare(config: Path) -> None:
    done = run(config, "init", "--park-file", str(DEMO_PARK_FILE))
    assert done.returncode == 0, done.stderr
    done = run(config, "user", "add", "alpha", "--role", "enterprise", "--enterprise", "E001", "--password-stdin",
               stdin=PASSWORD + "\n")
    assert done.returncode == 0, done.stderr


@pytest.fixture(scope="module")
def scaled(influx_server, tmp_path_factory) -> Iterator[tuple[Portal, Path]]:
    root = tmp_path_factory.mktemp("serve")
    with postgres_server() as pg_url:
        config = write_config(root, f'store_backend = "influx"\nmetadata_url = "{pg_url}"\n'
                                    f'[influx]\nurl = "{influx_server.url}"\ndatabase = "serve_test"\n')
        prepare(config)
        portal = Portal(config, 2, root / "serve.log")
        try:
            yield portal, root
        finally:
            portal.stop()


@pytest.mark.influx
@pytest.mark.postgres
def test_signed_in_through_one_worker_and_served_by_the_other(scaled):
    portal, _ = scaled
    cookies, resp = portal.login("alpha", PASSWORD)
    assert resp.status_code == 302 and resp.headers["Location"] == "/enterprise"
    first = resp.headers[WORKER_HEADER]
    other = portal.served_by_another(first, "/enterprise", cookies)
    assert other.status_code == 200 and "_dash-config" in other.text  # the page shell, signed in
    body = {"output": "user-name.children", "outputs": {"id": "user-name", "property": "children"},
            "inputs": [{"id": "url", "property": "pathname", "value": "/enterprise"},
                       {"id": "lang", "property": "data", "value": "en"}], "changedPropIds": ["url.pathname"],
            "state": []}
    for _ in range(60):  # a Dash callback (the header's user name) from the other worker, with the CSRF header
        answer = portal.post("/_dash-update-component", cookies=cookies, json={**body, "output": ".." + "...".join(
            f"{i}.children" for i in ("app-title", "park-name", "user-name", "lang-toggle", "logout", "nav", "page"))
            + "..", "outputs": [{"id": i, "property": "children"} for i in (
                "app-title", "park-name", "user-name", "lang-toggle", "logout", "nav", "page")]},
            headers={"X-CSRFToken": cookies["_csrf_token"]})
        if answer.headers[WORKER_HEADER] != first:
            break
    assert answer.headers[WORKER_HEADER] != first
    assert answer.status_code == 200 and "alpha" in answer.text


@pytest.mark.influx
@pytest.mark.postgres
def test_a_logout_through_one_worker_ends_the_session_on_every_worker(scaled):
    portal, _ = scaled
    cookies, resp = portal.login("alpha", PASSWORD)
    assert portal.get("/enterprise", cookies=cookies).status_code == 200
    out = portal.get("/logout", cookies=cookies)
    assert out.status_code == 302
    seen = set()
    for _ in range(40):  # the old cookie replayed: refused by both workers
        replay = portal.get("/enterprise", cookies=cookies)
        assert replay.status_code == 302 and replay.headers["Location"].startswith("/login")
        seen.add(replay.headers[WORKER_HEADER])
        if len(seen) == 2:
            break
    assert len(seen) == 2


@pytest.mark.influx
@pytest.mark.postgres
def test_health_follows_the_store_and_the_server_gives_no_version(scaled, influx_server):
    portal, root = scaled
    ok = portal.get("/healthz")
    assert ok.status_code == 200
    report = ok.json()
    assert report["status"] == "ok" and report["checks"]["store"]["ok"] and report["checks"]["metadata"]["ok"]
    assert report["checks"]["metadata"]["detail"] == "postgresql"
    assert not re.search(r"\d", ok.headers["Server"])  # "gunicorn", no version
    assert ok.headers["X-Frame-Options"] == "DENY"
    influx_server.stop()
    try:
        down = portal.get("/healthz")
        assert down.status_code == 503
        assert down.json()["checks"]["store"]["ok"] is False and down.json()["checks"]["metadata"]["ok"]
    finally:
        influx_server.start()
    assert portal.get("/healthz").status_code == 200
    access = (root / "access.log").read_text()
    assert '"GET /healthz HTTP/1.1" 503' in access and '"GET /healthz HTTP/1.1" 200' in access


@pytest.mark.influx
@pytest.mark.postgres
def test_sighup_replaces_the_workers_and_sessions_survive(scaled):
    portal, _ = scaled
    cookies, _resp = portal.login("alpha", PASSWORD)
    before = {portal.get("/healthz").json()["pid"] for _ in range(20)}
    portal.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 60
    after: set[int] = set()
    while time.monotonic() < deadline and len(after) < 2:
        try:
            pid = portal.get("/healthz").json()["pid"]
        except requests.ConnectionError:
            continue
        if pid not in before:
            after.add(pid)
    assert len(after) == 2, f"workers before {before}, new ones seen {after}"
    resp = portal.get("/enterprise", cookies=cookies)
    assert resp.status_code == 200 and int(resp.headers[WORKER_HEADER]) in after


# ---- without servers -------------------------------------------------------------------------------------------

def test_several_workers_on_the_embedded_store_or_sqlite_are_refused_with_what_works(tmp_path):
    config = write_config(tmp_path, "")
    prepare(config)
    done = run(config, "serve", "--workers", "3")
    assert done.returncode == 2
    assert "cannot serve with 3 workers" in done.stderr and "DuckDB" in done.stderr and "SQLite" in done.stderr
    assert "InfluxDB" in done.stderr and "PostgreSQL" in done.stderr and "--workers 1" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_embedded_store_is_served_by_one_gunicorn_worker_that_a_reload_replaces(tmp_path):
    """SIGHUP starts the new worker while the old one still holds the DuckDB file: the new one waits for it.
    Meanwhile `import` and `collect` say plainly why they cannot run and what to do (no DuckDB traceback); the
    cookies are Secure by default (TLS is expected in front of `serve`)."""
    config = write_config(tmp_path, "", secure_cookies=True)
    prepare(config)
    portal = Portal(config, 1, tmp_path / "serve.log")
    try:
        cookies, resp = portal.login("alpha", PASSWORD)
        assert resp.status_code == 302
        set_cookies = resp.headers["Set-Cookie"]
        assert set_cookies.count("Secure") >= 3  # session, _csrf_token, pc_known
        readings = tmp_path / "readings.csv"
        readings.write_text("ts,meter,value\n2024-03-01T00:00:00+08:00,E001-M-GAS,1.5\n")
        for command, status in ((["import", str(readings)], 3), (["collect"], 2)):
            done = run(config, *command)
            assert done.returncode == status, done.stderr
            assert "in use by another process" in done.stderr and "parkcarbon serve" in done.stderr
            assert "InfluxDB + PostgreSQL" in done.stderr and "Traceback" not in done.stderr
        old = portal.get("/healthz").json()["pid"]
        portal.proc.send_signal(signal.SIGHUP)
        deadline, pid = time.monotonic() + 60, old
        while time.monotonic() < deadline and pid == old:
            try:
                pid = portal.get("/healthz").json()["pid"]
            except (requests.ConnectionError, ValueError):
                time.sleep(0.2)
        assert pid != old
        assert portal.get("/enterprise", cookies=cookies).status_code == 200
    finally:
        portal.stop()
    assert "Traceback" not in (tmp_path / "serve.log").read_text()


def test_the_sqlite_metadata_database_is_created_private_and_user_add_refuses_trivial_passwords(tmp_path):
    config = write_config(tmp_path, "")
    prepare(config)
    assert (tmp_path / "state" / "parkcarbon.db").stat().st_mode & 0o777 == 0o600
    for password in ("1234567890", " " * 10, "qwertyuiop", "password123"):
        done = run(config, "user", "add", "boss", "--role", "admin", "--password-stdin", stdin=password + "\n")
        assert done.returncode == 2 and "parkcarbon:" in done.stderr and "Traceback" not in done.stderr
    done = run(config, "user", "add", "boss", "--role", "admin", "--password-stdin", stdin=PASSWORD + "\n")
    assert done.returncode == 0, done.stderr


@pytest.mark.influx
def test_store_down_shows_the_page_with_a_banner_and_recovers_by_itself(influx_server, tmp_path):
    """With influxd stopped the page keeps its header and navigation and says the store is down (it used to go
    blank), with the figures this user was last shown and their age; once influxd is back the same request shows
    the page again, without a restart."""
    from park.metadata import create_engine_from_url, import_park_file, load_park
    from park.settings import Settings
    from park.store.influx import InfluxConfig, InfluxStore
    from portal.app import create_app
    from portal.auth import add_user
    from portal.context import PortalContext
    from tests.support import portal as support

    engine = create_engine_from_url(f"sqlite:///{tmp_path / 'meta.db'}")
    import_park_file(engine, DEMO_PARK_FILE, actor="test")
    park = load_park(engine)
    add_user(engine, park.id, "admin", PASSWORD, "admin")
    store = InfluxStore(InfluxConfig(url=influx_server.url, database="store_down", retries=0, timeout_s=2),
                        park.catalog(), park.timezone)
    ctx = PortalContext(Settings(data_dir=tmp_path), engine, park, store)
    app = create_app(ctx, "k" * 32)
    client = app.server.test_client()
    token = support.login_token(client, "admin", PASSWORD)

    def render() -> str:
        resp = client.post("/_dash-update-component", json=support.render_body("/"),
                           headers={"X-CSRFToken": token})
        assert resp.status_code == 200
        return resp.get_data(as_text=True)

    influx_server.stop()  # (before any render: figures are cached for a minute, portal.access)
    try:
        down = render()
        assert "store-down" in down and "The data store cannot be reached" in down
        assert '"http-equiv"' in down.lower() or "httpEquiv" in down  # reloads by itself
        assert "NavLink" in down  # the navigation stays
        assert "store-down-last" not in down  # nothing shown before: no old figures to show
    finally:
        influx_server.start()
    up = render()
    assert "store-down" not in up
    ctx.access._cache.ttl_s = 0  # no figures cached: the next render needs the store
    influx_server.stop()
    try:
        stale = render()
        assert "store-down" in stale and "store-down-last" in stale
        assert "the last figures shown, from" in stale and " ago); they may be out of date" in stale
        kpis = re.findall(r'"id":"kpi[^"]*"', up)
        assert kpis and all(k in stale for k in kpis)  # the figures last shown are under the banner
    finally:
        influx_server.start()
    assert "store-down" not in render()


# ---- deploy/ -----------------------------------------------------------------------------------------------------

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
UNITS = sorted((DEPLOY / "systemd").glob("*.service"))


def unit(path: Path):
    import configparser

    parser = configparser.ConfigParser(interpolation=None, strict=True, delimiters=("=",))
    parser.optionxform = str  # systemd keys are case-sensitive
    parser.read_string(path.read_text(encoding="utf-8"))
    return parser


def test_the_three_processes_have_systemd_units():
    assert [p.name for p in UNITS] == ["parkcarbon-collect.service", "parkcarbon-jobs.service",
                                       "parkcarbon-serve.service"]


@pytest.mark.parametrize("path", UNITS, ids=lambda p: p.name)
def test_each_unit_starts_a_command_the_cli_has_as_an_unprivileged_user(path):
    import shlex

    from portal.cli import build_parser

    u = unit(path)
    assert set(u.sections()) == {"Unit", "Service", "Install"}
    service = u["Service"]
    argv = shlex.split(service["ExecStart"])
    assert Path(argv[0]).name == "parkcarbon" and argv[0].startswith("/")
    args = build_parser().parse_args(argv[1:])  # an unknown command or option exits here
    assert args.command == path.stem.removeprefix("parkcarbon-")
    assert service["User"] not in ("", "root") and service["UMask"] == "0077"
    assert service["Environment"] == "PARKCARBON_CONFIG=/etc/parkcarbon/parkcarbon.toml"
    assert service["Restart"] in ("always", "on-failure") and u["Install"]["WantedBy"] == "multi-user.target"
    assert not any(k.lower() in ("password", "token") or "PASSWORD=" in v for k, v in service.items())


def test_the_serve_unit_reloads_gracefully_and_tells_systemd_when_ready():
    service = unit(DEPLOY / "systemd" / "parkcarbon-serve.service")["Service"]
    assert service["Type"] == "notify"  # gunicorn's master sends READY=1
    assert service["ExecReload"] == "/bin/kill -HUP $MAINPID" and service["KillMode"] == "mixed"


def test_the_example_settings_are_valid_and_allow_their_workers():
    from park.settings import load_settings
    from portal.serve import check_workers, serve_options

    settings = load_settings(DEPLOY / "parkcarbon.toml.example", env={})
    options = serve_options(settings)
    check_workers(settings, options["workers"])
    assert options["workers"] > 1 and options["proxies"] == 1 and options["secure_cookies"] is True
    served = unit(DEPLOY / "systemd" / "parkcarbon-serve.service")["Service"]["ExecStart"]
    assert f"--workers {options['workers']}" in served
    nginx = (DEPLOY / "nginx" / "parkcarbon.conf").read_text()
    assert f"server 127.0.0.1:{settings.port};" in nginx and "X-Forwarded-Proto $scheme" in nginx
    assert "ssl_certificate " in nginx and "return 301 https://" in nginx and "server_tokens off" in nginx
