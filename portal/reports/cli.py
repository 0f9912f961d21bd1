"""`parkcarbon report ...`: run a report by hand, list the archive, show a version, get its files."""

from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path

from park.settings import Settings
from portal.reports import KINDS

# Exit statuses of `parkcarbon report` (docs/reports.md).
EXIT = {0: "done: the report was archived (a new version, or unchanged: same data as the newest version), or the "
           "archive was listed / shown / written out",
        1: "done, but a monitoring rule failed (completeness below 90 %, daily and monthly totals more than 5 % "
           "apart): the report is archived with the failures in it, named by enterprise",
        2: "usage error: unknown kind, a period not of the kind's form, no such report or version",
        3: "the report could not be built or stored (store or database unavailable, missing PDF font, ...); the run "
           "is logged as an error",
        4: "archived, but mailing it failed after every retry (each attempt is in the delivery log)"}


def register(sub) -> None:
    epilog = "exit status:\n" + "\n".join(textwrap.fill(v, 100, initial_indent=f"  {k}  ", subsequent_indent="     ")
                                          for k, v in EXIT.items())
    rep = sub.add_parser("report", help="regulator reports: run, list, show, get",
                         formatter_class=argparse.RawDescriptionHelpFormatter, epilog=epilog,
                         description="Regulator reports (monthly, key-units, quarterly, annual) in Excel, CSV and "
                                     "PDF, archived with versions (docs/reports.md). Periods: 2026-10 (monthly, "
                                     "key-units), 2026-Q3 (quarterly), 2026 (annual), in park local time.")
    rsub = rep.add_subparsers(dest="report_command", required=True, metavar="ACTION")
    run = rsub.add_parser("run", help="build and archive one report", epilog=epilog,
                          formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("kind", choices=KINDS)
    run.add_argument("--period", required=True, help="2026-10, 2026-Q3 or 2026")
    run.add_argument("--deliver", action="store_true", help="mail the new version to the kind's recipients")
    run.set_defaults(func=cmd_run)
    ls = rsub.add_parser("list", help="list the archived versions")
    ls.add_argument("--kind", choices=KINDS)
    ls.add_argument("--runs", action="store_true", help="list the run log instead")
    ls.set_defaults(func=cmd_list)
    for name, helptext in (("show", "show a version: files, rule failures, differences from the one before"),
                           ("get", "write a version's files into a directory")):
        p = rsub.add_parser(name, help=helptext, epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter)
        p.add_argument("kind", choices=KINDS)
        p.add_argument("period")
        p.add_argument("--version", type=int, help="version number (default: the newest)")
        if name == "get":
            p.add_argument("--out", type=Path, default=Path("."), help="directory (default: the current one)")
            p.add_argument("--format", choices=("xlsx", "csv", "pdf"), help="only files of this format")
        p.set_defaults(func=cmd_show if name == "show" else cmd_get)


def _context(settings: Settings):
    from portal.cli import _engine, _open

    park, store = _open(settings)
    return _engine(settings), park, store


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    from portal.reports.archive import ERROR, parse_period, run_report
    from portal.reports.periods import PeriodError

    try:
        period = parse_period(args.kind, args.period)
    except PeriodError as exc:
        print(f"parkcarbon report: {exc}", file=sys.stderr)
        return 2
    engine, park, store = _context(settings)
    try:
        result = run_report(settings, engine, park, store, args.kind, period)
    finally:
        store.close()
    print(result.summary())
    for d in result.differences[:50]:
        print(f"  changed: {d['section']} {d['enterprise']} {d['item']} {d['indicator']}: {d['old_value']} -> "
              f"{d['new_value']}")
    if len(result.differences) > 50:
        print(f"  ... and {len(result.differences) - 50} more (parkcarbon report show)")
    for f in result.failures:
        print(f"  rule failed: {f}")
    if result.outcome == ERROR:
        return 3
    if args.deliver and result.version_id:
        from portal.reports.delivery import DeliveryError, deliver

        try:
            d = deliver(settings, engine, result.version_id)
            print(f"delivery: {d.status}" + (f" to {', '.join(d.recipients)}" if d.recipients else ""))
        except DeliveryError as exc:
            print(f"parkcarbon report: {exc}", file=sys.stderr)
            return 4
    return 1 if result.failures else 0


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    from park.metadata import load_park
    from portal.cli import _engine
    from portal.reports.archive import runs, versions

    engine = _engine(settings)
    park = load_park(engine)
    if args.runs:
        frame = runs(engine, park.id)
        if args.kind:
            frame = frame[frame["kind"] == args.kind]
        for r in frame.itertuples():
            first = (r.detail or "").splitlines()[0] if r.detail else ""
            print(f"{r.started_at:%Y-%m-%d %H:%M}Z  {r.kind:<10} {r.period:<8} {r.trigger:<9} {r.outcome:<12} "
                  f"v{r.version if r.version else '-'}  {first}")
        return 0
    frame = versions(engine, park.id, args.kind)
    if frame.empty:
        print("no reports archived yet")
        return 0
    print(f"{'kind':<10} {'period':<8} {'ver':>3}  {'generated (UTC)':<16}  {'outcome':<12} {'fails':>5}  "
          f"{'delivered':<9}  sha256")
    for r in frame.itertuples():
        print(f"{r.kind:<10} {r.period:<8} {r.version:>3}  {r.generated_at:%Y-%m-%d %H:%M}  {r.outcome:<12} "
              f"{r.failures:>5}  {r.delivered or '-':<9}  {r.content_hash[:16]}")
    return 0


def _version(args: argparse.Namespace, settings: Settings):
    from park.metadata import load_park
    from portal.cli import _engine
    from portal.reports.archive import parse_period, version_row
    from portal.reports.periods import PeriodError

    engine = _engine(settings)
    park = load_park(engine)
    try:
        label = parse_period(args.kind, args.period).label
    except PeriodError as exc:
        print(f"parkcarbon report: {exc}", file=sys.stderr)
        return engine, None
    row = version_row(engine, park.id, args.kind, label, args.version)
    if row is None:
        what = f"version {args.version} of " if args.version else ""
        print(f"parkcarbon report: no {what}{args.kind} report for {label} in the archive (parkcarbon report list)",
              file=sys.stderr)
    return engine, row


def cmd_show(args: argparse.Namespace, settings: Settings) -> int:
    from portal.reports.archive import files, version_differences

    engine, row = _version(args, settings)
    if row is None:
        return 2
    print(f"{row.kind} {row.period} version {row.version}: {row.outcome}, generated {row.generated_at:%Y-%m-%d %H:%M} "
          f"UTC, content SHA-256 {row.content_hash}")
    for f in files(engine, row.id).itertuples():
        print(f"  file {f.name}  {f.size:,} bytes  SHA-256 {f.sha256}")
    for line in (row.detail or "").splitlines():
        print(f"  rule failed: {line}")
    diffs = version_differences(engine, row.id)
    if row.version > 1:
        print(f"  {len(diffs)} figure(s) changed from version {row.version - 1}:")
        for d in diffs.itertuples():
            print(f"    {d.section} {d.enterprise} {d.item} {d.indicator}: {d.old_value} -> {d.new_value}")
    return 0


def cmd_get(args: argparse.Namespace, settings: Settings) -> int:
    from portal.reports.archive import files, read_file

    engine, row = _version(args, settings)
    if row is None:
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    stored = files(engine, row.id)
    if args.format:
        stored = stored[stored["format"] == args.format]
    for f in stored.itertuples():
        try:
            name, data = read_file(settings, engine, int(f.id))
        except (OSError, ValueError) as exc:
            print(f"parkcarbon report: {exc}", file=sys.stderr)
            return 3
        (args.out / name).write_bytes(data)
        print(args.out / name)
    return 0
