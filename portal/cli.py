"""The `parkcarbon` command line."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import pandas as pd

from collectors.sources.files import FileFormatError
from forecasting.cli import register as register_forecast
from park.bills import register as register_bills
from park.jobs import register_jobs
from park.metadata import create_engine_from_url, import_park_file, load_park
from park.migrations import SchemaError, check_schema
from park.model import Park
from park.parkfile import DEMO_PARK_FILE, ParkFileError, load_park_file
from park.settings import Settings, SettingsError, load_settings
from park.store import StoreError, TimeSeriesStore, open_store
from portal.auth import AuthError, Role, add_user
from portal.evidence.cli import key_line as evidence_key_line
from portal.evidence.cli import register as register_evidence
from portal.reports.cli import register as register_reports

log = logging.getLogger("parkcarbon")

# Documented demo accounts, created only by `parkcarbon demo` (never by init or serve).
DEMO_ACCOUNTS = [
    ("admin", "demo-admin-pass", "admin", None),
    ("regulator", "demo-regulator-pass", "regulator", None),
    ("bank", "demo-bank-pass", "bank", None),
    ("E001", "demo-enterprise-pass", "enterprise", "E001"),
]

DESCRIPTION = """ParkCarbon: carbon and energy monitoring for industrial parks (园区双碳监测).

Settings come from parkcarbon.toml (or --config FILE, or $PARKCARBON_CONFIG) and PARKCARBON_* environment
variables; secrets (PARKCARBON_INFLUX_PASSWORD, PARKCARBON_INFLUX_TOKEN) only from the environment."""


def _engine(settings: Settings, *, upgrade: bool = False):
    """The metadata database.  `init` and `demo` upgrade its schema to this release's (park.migrations); the other
    commands refuse a database that is behind (SchemaError) rather than change it behind the operator's back."""
    from portal.serve import private_sqlite_file

    private_sqlite_file(settings.metadata_url)  # a new SQLite file (password hashes) is made 0600 in one step
    engine = create_engine_from_url(settings.metadata_url, create_tables=upgrade)
    if not upgrade:
        check_schema(engine)
    return engine


def _open(settings: Settings) -> tuple[Park, TimeSeriesStore]:
    park = load_park(_engine(settings))
    return park, open_store(settings, park.catalog())


def cmd_check_park(args: argparse.Namespace, settings: Settings) -> int:
    park = load_park_file(args.file)
    print(f"{args.file}: OK: park {park.id} ({park.name}), {len(park.enterprises)} enterprises, "
          f"{len(park.workshops)} workshops, {len(park.meters)} meters, {len(park.devices)} devices")
    return 0


def cmd_init(args: argparse.Namespace, settings: Settings) -> int:
    park_file = args.park_file or settings.park_file
    if park_file is None:
        print("no park file: pass --park-file FILE or set park_file in parkcarbon.toml "
              f"(an example: {DEMO_PARK_FILE})", file=sys.stderr)
        return 2
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    report = import_park_file(_engine(settings, upgrade=True), park_file, actor="cli")
    print(report.summary())
    print(evidence_key_line(settings))  # the park's Ed25519 signing key (portal/evidence/keys.py)
    park, store = _open(settings)
    store.close()
    print(f"time-series store: {settings.store_backend} "
          f"({settings.embedded_path if settings.store_backend == 'embedded' else settings.influx.get('url')})")
    return 0


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = _engine(settings, upgrade=True)
    print(import_park_file(engine, DEMO_PARK_FILE, actor="demo").summary())
    park, store = _open(settings)
    for username, password, role, enterprise in DEMO_ACCOUNTS:
        add_user(engine, park.id, username, password, role, enterprise, replace=True)
    print("demo accounts (user / password): " + ", ".join(f"{u} / {p}" for u, p, _, _ in DEMO_ACCOUNTS))
    from portal.demo import fill_readings, seed_carbon, seed_consent

    now = pd.Timestamp.now(tz="UTC")
    days = args.days or max(60, now.tz_convert(park.tz).dayofyear)
    print(f"filling the demo store ({settings.embedded_path}) with the last {days} days ...", flush=True)
    print(f"{fill_readings(store, park, days, now):,} readings written")
    seed_carbon(engine, store, park, now)
    print(evidence_key_line(settings))  # the demo park signs its evidence packs like any other
    print(seed_consent(engine, park, now))
    from park.bills import seed_demo_bills

    print(seed_demo_bills(engine, store, park, now))  # utility bills beside the meters: the packs' 互证 check
    if args.no_serve:
        store.close()
        return 0
    from portal.demo import DEMO_FIRST_RUNS, start_jobs, start_live

    stop_live = start_live(park, store, settings.data_dir)
    print(stop_live.description, flush=True)  # which path the live meters and bracelets take (MQTT or direct)
    stop_jobs = start_jobs(settings, engine, store, park)  # this process runs the jobs on its embedded store
    print(f"jobs: run in this process: {', '.join(DEMO_FIRST_RUNS)} now in the background, then on their schedule "
          f"(run log: PARKCARBON_DATA_DIR={settings.data_dir} parkcarbon jobs log)", flush=True)
    try:
        return _serve(store, park, settings, args)
    finally:
        stop_jobs()
        stop_live()


# Exit statuses of `parkcarbon import` (documented in its --help and in docs/store.md); with several files, the
# highest status of any of them.
IMPORT_EXIT = {0: "imported; no row rejected", 1: "imported; some rows rejected (quarantined with line and reason)",
               2: "a file cannot be read or used (unreadable, undecodable, malformed, missing columns) or a usage "
                  "error; nothing of that file written",
               3: "the store is unavailable or locked by another process (e.g. a running `parkcarbon collect`); "
                  "nothing written, or the rest spooled for the collector service",
               4: "the file's values differ from stored ones; nothing written (re-run with --correct)",
               130: "interrupted (Ctrl-C); run the same import again to complete it"}


def cmd_import(args: argparse.Namespace, settings: Settings) -> int:
    import getpass

    from collectors.pipeline import Pipeline
    from collectors.sources.files import FileImporter, ProgressLine, ValuesDiffer
    from collectors.spool import Spool
    from park.store import StoreUnavailable

    def fail(status: int, message: str) -> int:
        print(f"parkcarbon import: {message}", file=sys.stderr)
        return status

    try:
        park, store = _open(settings)
    except StoreUnavailable as exc:
        return fail(3, f"store unavailable: {exc}")
    spool = Spool(settings.data_dir / "spool.db")
    actor = f"{getpass.getuser()} (parkcarbon import)"
    try:
        importer = FileImporter(Pipeline(park.catalog(), spool), store, park.timezone)
        worst = 0
        for path in args.files:
            bar = ProgressLine(sys.stderr, Path(path).name) if sys.stderr.isatty() else None
            try:
                report = importer.import_file(path, dry_run=args.dry_run, date_format=args.date_format,
                                              timestamps=args.timestamps, kind=args.kind,
                                              repair_midnight=args.repair_midnight, meter=args.meter,
                                              correct=args.correct, actor=actor, progress=bar)
            except FileFormatError as exc:
                worst = max(worst, fail(2, str(exc)))
                continue
            except ValuesDiffer as exc:
                print(exc.report.summary())
                worst = max(worst, fail(4, str(exc)))
                continue
            except StoreError as exc:
                return max(worst, fail(3, f"{path}: store unavailable: {exc}"))
            except KeyboardInterrupt:
                return fail(130, f"{path}: interrupted; what was written stays (each chunk is written whole): run "
                            "the same import again to complete it, it changes nothing else")
            finally:
                if bar:
                    bar.done()
            print(report.summary())
            worst = max(worst, 3 if report.spooled else 1 if report.rejected else 0)
        return worst
    finally:
        spool.close()
        store.close()


def cmd_user_add(args: argparse.Namespace, settings: Settings) -> int:
    import getpass

    engine = _engine(settings)
    park = load_park(engine)
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass(f"password for {args.username}: ")
        if getpass.getpass("again: ") != password:
            print("the passwords differ", file=sys.stderr)
            return 2
    user = add_user(engine, park.id, args.username, password, args.role, args.enterprise, args.name, args.replace)
    print(f"user {user.username} ({user.role}{', ' + user.enterprise_id if user.enterprise_id else ''}) saved")
    return 0


def cmd_collect(args: argparse.Namespace, settings: Settings) -> int:
    from collectors.service import CollectorService

    park, store = _open(settings)
    service = CollectorService(park, store, settings.data_dir / "spool.db", settings.collect).start()
    print(f"collecting for park {park.id}: {len(service.sources)} source(s), spool {service.spool_path}; "
          "Ctrl-C stops", flush=True)
    service.run_forever()
    store.close()
    return 0


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from portal.serve import serve_command  # gunicorn with [serve] workers (docs/deploy.md)

    return serve_command(args, settings)


def _serve(store: TimeSeriesStore, park: Park, settings: Settings, args: argparse.Namespace) -> int:
    import os

    from portal.app import create_app
    from portal.context import PortalContext
    from portal.web import secret_key

    ctx = PortalContext(settings, _engine(settings), park, store)
    app = create_app(ctx, secret_key(settings.data_dir, os.environ.get("PARKCARBON_SECRET_KEY")))
    from portal.warm import keep_warm

    keep_warm(ctx)  # as under `parkcarbon serve`: the park-wide overview kept warm
    host, port = args.host or settings.host, args.port or settings.port
    print(f"portal: http://{host}:{port}/  (Ctrl-C stops)", flush=True)
    from werkzeug.serving import WSGIRequestHandler

    class _Handler(WSGIRequestHandler):  # the demo's one process: no server version in the answers
        server_version, sys_version = "ParkCarbon", ""

    app.run(host=host, port=port, debug=False, request_handler=_Handler)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="parkcarbon", description=DESCRIPTION,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", help="settings file (default: ./parkcarbon.toml if present)")
    p.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser("demo", help="run the portal on a demo park with synthetic data (no server needed)",
                          description="Import the shipped demo park into var/demo, fill its embedded store with "
                          "realistic synthetic readings (steel-plant load shapes) up to now, and serve the portal.")
    demo.add_argument("--days", type=int, help="days of history to generate (default: since 1 January, at least 60)")
    demo.add_argument("--data-dir", default="var/demo", help="where the demo keeps its files (default var/demo)")
    demo.add_argument("--no-serve", action="store_true", help="prepare the data and exit")
    demo.set_defaults(func=cmd_demo)

    init = sub.add_parser("init", help="create the databases and import (or re-import) the park file",
                          description="Create the metadata database (or upgrade its schema to this release's, "
                          "keeping its rows: back it up first) and the time-series store, and import the "
                          "park file. Re-running it with the same file changes nothing; a bad file is rejected "
                          "with its line numbers and nothing is half-imported.")
    init.add_argument("--park-file", type=Path, help="park file (YAML); default: park_file in the settings")
    init.set_defaults(func=cmd_init)

    check = sub.add_parser("check-park", help="validate a park file without importing it",
                           description="Report every problem of a park file with its line number.")
    check.add_argument("file", type=Path)
    check.set_defaults(func=cmd_check_park)

    import textwrap

    imp = sub.add_parser("import", help="import meter readings, bills or deliveries from CSV or Excel files",
                         formatter_class=argparse.RawDescriptionHelpFormatter,
                         description=textwrap.fill("Import readings (ts, meter, value[, unit, kind, quality]) or "
                         "periods (meter, "
                         "period_start, period_end, value[, unit]) from CSV (UTF-8, UTF-16 or GB18030; comma, tab, "
                         "semicolon or | separated; .gz too) or Excel. Each file is checked whole before anything "
                         "is written: a file that cannot be read is refused whole; bad rows are reported with "
                         "their line and quarantined, good rows go in. Re-importing a file changes nothing; a file "
                         "whose values differ from stored ones is refused unless --correct.", 100),
                         epilog="exit status (with several files, the highest):\n" + "\n".join(
                             textwrap.fill(v, 100, initial_indent=f"  {k}  ", subsequent_indent="     ")
                             for k, v in IMPORT_EXIT.items()))
    imp.add_argument("files", type=Path, nargs="+")
    imp.add_argument("--dry-run", action="store_true", help="report what would be imported, write nothing")
    imp.add_argument("--date-format", help="strptime format of the time column, e.g. '%%d/%%m/%%Y %%H:%%M' "
                     "(default ISO 8601)")
    imp.add_argument("--timestamps", choices=["start", "end"], default="start",
                     help="whether a row's time is the start (default) or the end of its interval")
    imp.add_argument("--kind", choices=["interval", "cumulative"], help="values are interval energy (default) or "
                     "cumulative register readings")
    imp.add_argument("--repair-midnight", action="store_true",
                     help="move rows dated exactly one day early (a 00:00 row carrying the previous day's date) "
                     "forward one day instead of rejecting them")
    imp.add_argument("--meter", metavar="ID", help="the meter of a single-meter file that has no meter column")
    imp.add_argument("--correct", action="store_true",
                     help="the file corrects stored values: replace the stored values of the series that differ, "
                     "in the file's range, and write an audit record (who, when, file, range, old and new totals)")
    imp.set_defaults(func=cmd_import)

    collect = sub.add_parser("collect", help="run the configured collectors (Modbus meters, bracelets) until stopped",
                             description="Poll the park's Modbus meters and receive bracelet telemetry (MQTT, "
                             "vendor API) as configured in [collect] of parkcarbon.toml; readings go through the "
                             "pipeline and the on-disk spool into the store, so a store outage loses nothing.")
    collect.set_defaults(func=cmd_collect)

    user = sub.add_parser("user", help="manage portal users (user add NAME --role ROLE)")
    usub = user.add_subparsers(dest="user_command", required=True, metavar="ACTION")
    add = usub.add_parser("add", help="create or reset a user",
                          description="Create a portal user. Roles: admin (park administrator), enterprise (bound "
                          "to one enterprise: --enterprise ID), bank, regulator (read-only, park-wide). The "
                          "password is asked for twice, or read from standard input with --password-stdin.")
    add.add_argument("username")
    add.add_argument("--role", required=True, choices=[r.value for r in Role])
    add.add_argument("--enterprise", help="enterprise id, for role enterprise")
    add.add_argument("--name", default="", help="display name")
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    add.add_argument("--replace", action="store_true", help="reset an existing user")
    add.set_defaults(func=cmd_user_add)

    for name, helptext in (("serve", "serve the portal for the configured park"),):
        s = sub.add_parser(name, help=helptext, description="Serve the Dash portal on the configured store.")
        s.set_defaults(func=cmd_serve)
    register_forecast(sub)  # `forecast backtest FILE` (forecasting/cli.py)
    register_bills(sub)  # `bills import FILE`, `bills list` (park/bills.py)
    register_jobs(sub)  # `jobs`, `jobs list`, `jobs run JOB_ID` (park/jobs_cli.py)
    register_reports(sub)  # `report run|list|show|get` (portal/reports/cli.py)
    register_evidence(sub)  # `evidence request|grant|...|build|verify|keys|token` (portal/evidence/cli.py)

    for s in (demo, sub.choices["serve"]):
        s.add_argument("--host", help="address to listen on (default 127.0.0.1)")
        s.add_argument("--port", type=int, help="port (default 8050)")
    sub.choices["serve"].add_argument("--workers", type=int, help="worker processes (default [serve] workers, 1); "
                                      "more than 1 needs InfluxDB and PostgreSQL (docs/deploy.md)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = load_settings(args.config)
        if args.command == "demo":
            settings = Settings(**{**settings.__dict__, "data_dir": Path(args.data_dir), "metadata_url": None,
                                   "embedded_path": None, "store_backend": "embedded"})
        return args.func(args, settings)
    except (SettingsError, ParkFileError, StoreError, FileFormatError, AuthError, SchemaError) as exc:
        print(f"parkcarbon: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
