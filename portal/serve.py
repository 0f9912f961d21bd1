"""`parkcarbon serve`: the portal under gunicorn, the health endpoint, and what may run with several workers.

Why gunicorn: it is the pre-fork WSGI server of the Python world on Linux (a master that starts, watches and
replaces worker processes; SIGHUP reloads gracefully, SIGTERM stops gracefully, access logs built in), it needs
no C compiler, and nginx in front of it is the documented set-up (docs/deploy.md).  Workers are `gthread`
(threads per process) because the Dash renderer sends several callbacks at once per page.

Workers keep nothing between requests: sessions and the login throttle live in the metadata database
(portal.auth), the figures in the time-series store.  Several workers therefore need backends several processes
can share: InfluxDB (store_backend = "influx") and PostgreSQL (metadata_url).  The embedded DuckDB file allows one
process, a SQLite metadata file one writer at a time: `serve` refuses more than one worker on either
(`check_workers`).

[serve] settings (docs/deploy.md): workers (1), threads (4), timeout_s (60), graceful_timeout_s (30),
access_log ("-": standard output; a path, relative to the settings file; or "" for none), secure_cookies (true:
the session cookie is only sent over HTTPS; the demo serves plain HTTP without), proxies (0: how many reverse
proxies in front, whose X-Forwarded-For/-Proto headers are trusted; 1 behind nginx).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from park.settings import Settings, SettingsError, register_section

log = logging.getLogger(__name__)

SERVE_KEYS = {
    "workers": (int, "a whole number of worker processes, at least 1"),
    "threads": (int, "a whole number of threads per worker, at least 1"),
    "timeout_s": ((int, float), "seconds a request may take before its worker is restarted"),
    "graceful_timeout_s": ((int, float), "seconds a worker has to finish its requests at restart or stop"),
    "access_log": (str, '"-" (standard output), a file path, or "" (none)'),
    "secure_cookies": (bool, "true or false"),
    "proxies": (int, "how many reverse proxies (nginx: 1) stand in front, 0 when none"),
    "warm": (bool, "true or false: each worker renders the park-wide overview at start and keeps it fresh "
                   "(portal.warm)"),
}
DEFAULTS = {"workers": 1, "threads": 4, "timeout_s": 60, "graceful_timeout_s": 30, "access_log": "-",
            "secure_cookies": True, "proxies": 0, "warm": True}
ACCESS_LOG_FORMAT = '%(h)s - %(u)s [%(t)s] "%(r)s" %(s)s %(b)s %(M)sms "%(a)s"'
HEALTH_TIMEOUT_S = 2.0
LOCK_WAIT_S = 25.0  # a new worker waits this long for the old one to release the embedded store (SIGHUP)


def validate_serve(table: dict, where: str) -> None:
    """[serve]: known keys, right types, sensible values (SettingsError naming file, key and what is allowed)."""
    for key, value in table.items():
        if key not in SERVE_KEYS:
            raise SettingsError(f"{where}: unknown key 'serve.{key}'; allowed: {', '.join(sorted(SERVE_KEYS))}")
        kind, allowed = SERVE_KEYS[key]
        ok = isinstance(value, kind) and not (isinstance(value, bool) and kind is not bool)
        if ok and key in ("workers", "threads"):
            ok = value >= 1
        if ok and key in ("timeout_s", "graceful_timeout_s", "proxies"):
            ok = value >= 0
        if not ok:
            raise SettingsError(f"{where}: 'serve.{key}' = {value!r}: expected {allowed}")


register_section("serve", validate_serve)


def serve_options(settings: Settings) -> dict[str, Any]:
    """[serve] with its defaults filled in."""
    return {**DEFAULTS, **settings.serve}


def check_workers(settings: Settings, workers: int) -> None:
    """Refuse a number of workers the backends cannot take, saying what works instead."""
    if workers < 1:
        raise SettingsError(f"--workers {workers}: at least one worker is needed")
    if workers == 1:
        return
    problems = []
    if settings.store_backend == "embedded":
        problems.append(f"the embedded time-series store ({settings.embedded_path}) is a DuckDB file that only one "
                        "process may open")
    if str(settings.metadata_url).startswith("sqlite"):
        problems.append("the metadata database is a SQLite file, which takes one writer at a time")
    if problems:
        raise SettingsError(
            f"cannot serve with {workers} workers: {'; and '.join(problems)}. Serve with --workers 1 (or "
            "[serve] workers = 1), or, for several workers, use InfluxDB for the store (store_backend = \"influx\", "
            "[influx] url) and PostgreSQL for the metadata (metadata_url = \"postgresql+psycopg://...\"); see "
            "docs/deploy.md")


def private_sqlite_file(url: str) -> None:
    """Create the SQLite metadata file (it holds the password hashes) readable by its owner only, in one step: no
    moment where it exists with looser permissions.  Nothing to do for other databases or an existing file."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or url.startswith(prefix + ":memory:") or url.startswith(prefix + "file:"):
        return
    path = Path(url[len(prefix):])
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):  # another process made it first
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


# ---- health --------------------------------------------------------------------------------------------------

def _check(fn) -> dict:
    started = time.monotonic()
    try:
        detail = fn()
    except Exception as exc:  # noqa: BLE001 (a health check reports every failure, whatever it is)
        return {"ok": False, "error": f"{type(exc).__name__}: {str(exc)[:300]}",
                "ms": round((time.monotonic() - started) * 1000)}
    return {"ok": True, **({"detail": detail} if detail else {}), "ms": round((time.monotonic() - started) * 1000)}


def _store_check(store) -> str:
    if store.backend == "influx":
        import requests

        url = store.config.url.rstrip("/") + "/ping"
        resp = requests.get(url, timeout=HEALTH_TIMEOUT_S)
        if resp.status_code >= 300:
            raise RuntimeError(f"{url} answered HTTP {resp.status_code}")
        return f"influx {store.config.url}"
    cursor = store._con.cursor()  # the embedded store: a query on this process' connection
    try:
        cursor.execute("SELECT 1").fetchall()
    finally:
        cursor.close()
    return "embedded"


def _metadata_check(engine) -> str:
    from sqlalchemy import text

    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))
    return engine.dialect.name


def _broker_check(mqtt: dict) -> str:
    host, port = mqtt.get("host", "127.0.0.1"), int(mqtt.get("port", 1883))
    with socket.create_connection((host, port), timeout=HEALTH_TIMEOUT_S):
        pass
    return f"{host}:{port}"


def health(ctx) -> dict:
    """What a load balancer asks: the store, the metadata database and (when [collect.mqtt] is configured) the
    broker, each {"ok", "ms", "error"|"detail"}; "status" is "ok" only when all are.  The collectors' source
    states are added when the collectors publish them (collectors.status.read_states), for information."""
    checks = {"store": _check(lambda: _store_check(ctx.store)), "metadata": _check(lambda: _metadata_check(ctx.engine))}
    mqtt = ctx.settings.collect.get("mqtt")
    if isinstance(mqtt, dict):
        checks["broker"] = _check(lambda: _broker_check(mqtt))
    report: dict[str, Any] = {"status": "ok" if all(c["ok"] for c in checks.values()) else "unavailable",
                              "park": ctx.park.id, "checks": checks, "pid": os.getpid()}
    if ctx.warmer is not None:  # for information (a warming worker serves, only slower): portal.warm
        report["warm"] = {"done": ctx.warmer.warm, "first_round_s": ctx.warmer.first_round_s,
                          "error": ctx.warmer.last_error}
    try:
        from collectors.status import read_states  # published by `parkcarbon collect`, when it does
    except ImportError:
        pass
    else:
        try:
            report["collectors"] = read_states(ctx.settings)
        except Exception as exc:  # noqa: BLE001
            report["collectors"] = {"error": f"{type(exc).__name__}: {str(exc)[:300]}"}
    return report


# ---- the WSGI application one worker serves ---------------------------------------------------------------------

def open_portal_store(settings: Settings, catalog, wait_s: float = 0.0):
    """The store as the portal opens it: InfluxDB without CREATE DATABASE (the portal only reads; `init` made it),
    so a worker starts while InfluxDB is down and the pages say so until it is back; the embedded file, waiting
    up to `wait_s` for a previous worker (graceful restart) to let go of it."""
    from park.store import StoreUnavailable

    if settings.store_backend == "influx":
        from park.store.influx import InfluxConfig, InfluxStore

        return InfluxStore(replace(InfluxConfig(**settings.influx), create_database=False), catalog,
                           settings.timezone)
    from park.store.embedded import EmbeddedStore

    deadline = time.monotonic() + wait_s
    while True:
        try:
            return EmbeddedStore(settings.embedded_path, catalog, settings.timezone)
        except StoreUnavailable:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.5)


def portal_wsgi(settings: Settings, *, wait_s: float = 0.0, clock=None, jobs: bool | None = None):
    """The portal's Flask server for this process: its own metadata engine, store and app (nothing shared with
    other workers but the databases), Secure cookies per [serve], proxy headers trusted per [serve] proxies.
    `clock` (a pandas-Timestamp-returning callable) fixes the portal's "now", for benchmarks on a past year.
    `jobs`: host the scheduled jobs in this process (park.jobs.JobsHost, sharing its store); by default on the
    embedded store (which no `parkcarbon jobs` process can open beside the portal) unless `clock` is fixed."""
    from park.metadata import create_engine_from_url, load_park
    from park.migrations import check_schema
    from portal.app import create_app
    from portal.context import PortalContext
    from portal.web import secret_key

    options = serve_options(settings)
    engine = create_engine_from_url(settings.metadata_url, create_tables=False)
    check_schema(engine)
    park = load_park(engine)
    store = open_portal_store(settings, park.catalog(), wait_s)
    ctx = PortalContext(settings, engine, park, store, **({"clock": clock} if clock else {}))
    app = create_app(ctx, secret_key(settings.data_dir, os.environ.get("PARKCARBON_SECRET_KEY")))
    if (settings.store_backend == "embedded" and clock is None) if jobs is None else jobs:
        from park.jobs import JobsHost  # the one worker runs the jobs on the embedded store (docs/jobs.md)

        JobsHost(settings, engine, store, park, role="portal worker").start()
    from portal.warm import keep_warm

    keep_warm(ctx)  # the park-wide overview rendered at start and kept fresh, unless [serve] warm = false
    app.server.config["SESSION_COOKIE_SECURE"] = bool(options["secure_cookies"])
    wsgi = app.server
    if options["proxies"]:
        from werkzeug.middleware.proxy_fix import ProxyFix

        n = int(options["proxies"])
        wsgi.wsgi_app = ProxyFix(wsgi.wsgi_app, x_for=n, x_proto=n, x_host=n)
    return wsgi


def gunicorn_options(settings: Settings, host: str, port: int, workers: int) -> dict[str, Any]:
    o = serve_options(settings)
    access = o["access_log"]
    if access and access != "-" and not Path(access).is_absolute() and settings.source != "defaults":
        access = str(Path(settings.source).parent / access)  # relative to the settings file, like data_dir
    return {"bind": f"{host}:{port}", "workers": workers, "worker_class": "gthread", "threads": o["threads"],
            "timeout": o["timeout_s"], "graceful_timeout": o["graceful_timeout_s"],
            "accesslog": access or None, "access_log_format": ACCESS_LOG_FORMAT, "errorlog": "-",
            "proc_name": "parkcarbon-serve", "preload_app": False,
            # X-Forwarded-Proto from the proxy decides whether a request came over TLS (ProxyFix does the rest)
            "forwarded_allow_ips": "*" if o["proxies"] else "127.0.0.1"}


def run_gunicorn(settings: Settings, host: str, port: int, workers: int, load=None) -> int:
    """Run the portal under gunicorn until stopped (SIGTERM/SIGINT: graceful stop; SIGHUP: graceful reload of
    every worker; TTIN/TTOU: one worker more/less).  `load()` builds each worker's WSGI app (default
    `portal_wsgi(settings)`; bench/portal.py passes one with a fixed clock)."""
    from gunicorn.app.base import BaseApplication

    options = gunicorn_options(settings, host, port, workers)
    wait_s = LOCK_WAIT_S if settings.store_backend == "embedded" else 0.0

    class PortalApplication(BaseApplication):
        def load_config(self) -> None:
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self):  # in each worker, after the fork: its own connections
            return load() if load else portal_wsgi(settings, wait_s=wait_s)

    PortalApplication().run()
    return 0


def serve_command(args, settings: Settings) -> int:
    """`parkcarbon serve`: check everything the workers will need, then hand over to gunicorn."""
    from park.metadata import create_engine_from_url, load_park
    from park.migrations import check_schema
    from portal.web import secret_key

    workers = args.workers or serve_options(settings)["workers"]
    check_workers(settings, workers)
    engine = create_engine_from_url(settings.metadata_url, create_tables=False)
    check_schema(engine)
    park = load_park(engine)
    engine.dispose()
    if settings.store_backend == "embedded":  # taken by another process? say so now, not in a worker
        open_portal_store(settings, park.catalog()).close()
    secret_key(settings.data_dir, os.environ.get("PARKCARBON_SECRET_KEY"))  # made once, before the workers race
    host, port = args.host or settings.host, args.port or settings.port
    print(f"portal: http://{host}:{port}/ ({workers} worker(s) under gunicorn; SIGHUP reloads, Ctrl-C stops)",
          flush=True)
    if settings.store_backend == "embedded":
        print("jobs: on the embedded store the portal worker runs the scheduled jobs (forecasts, reports) itself; "
              "`parkcarbon jobs log` shows the runs (docs/jobs.md)", flush=True)
    return run_gunicorn(settings, host, port, workers)
