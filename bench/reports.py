"""Regulator report benchmark: the monthly report of the 200-enterprise benchmark park, all formats.

    python -m bench.reports [--enterprises 200] [--meters 10] [--year 2024] [--month 10] [--repeats 3] [--rebuild]

The park and its year of 15-minute readings are bench.carbon's (park.synth.synth_park, built once into bench/out/
and reused; not timed), with the same recorded output value, product output, certificates, quota plans and
ledgers, in a metadata database of its own made by the migrations.  Each timed repeat does what a scheduled
monthly run does when the data changed: read through the regulator scope and build the report
(portal.reports.content), then write the Excel workbook, the CSV files and the PDF (portal.reports.render).  An
unchanged re-run (content hash equal: nothing written) is timed as well.  Goal: under 30 s for a new version.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from bench import OUT, machine_info, print_machine
from bench.carbon import SEED, cached_store, record_inputs
from park.metadata import create_engine_from_url, import_park
from park.settings import Settings
from park.store.embedded import EmbeddedStore
from park.synth import synth_park
from portal.reports.archive import render_files, report_scope, run_report
from portal.reports.config import ReportSettings
from portal.reports.content import Reader, build
from portal.reports.periods import ReportPeriod

GOAL_S = 30.0
BENCHMARKS_MD = Path(__file__).parent.parent / "docs" / "benchmarks.md"
SECTION = "## Regulator reports (`python -m bench.reports`)"


def run_once(settings, engine, park, store, period: ReportPeriod, now) -> dict:
    cfg = ReportSettings()
    t0 = time.perf_counter()
    report = build(Reader(report_scope(settings, engine, park, store, now), cfg), "monthly", period)
    t1 = time.perf_counter()
    digest = report.content_hash()
    files = render_files(report, 1, now.to_pydatetime(), digest, cfg)
    t2 = time.perf_counter()
    return {"build": t1 - t0, "render": t2 - t1, "total": t2 - t0,
            "bytes": {fmt: sum(len(d) for _, f, d in files if f == fmt) for fmt in ("xlsx", "csv", "pdf")},
            "rows": sum(len(s.frame) for s in report.sections)}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(prog="python -m bench.reports", description=__doc__.split("\n\n")[0])
    ap.add_argument("--enterprises", type=int, default=200)
    ap.add_argument("--meters", type=int, default=10, help="meters per enterprise")
    ap.add_argument("--year", type=int, default=2024)
    ap.add_argument("--month", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--rebuild", action="store_true", help="regenerate the cached store")
    ap.add_argument("--no-docs", action="store_true", help="do not write the figures into docs/benchmarks.md")
    args = ap.parse_args(argv)

    park = synth_park(args.enterprises, args.meters, SEED)
    store_path = cached_store(park, args.enterprises, args.meters, args.year, args.rebuild)
    meta_path = OUT / f"reports_{args.enterprises}x{args.meters}_{args.year}.db"
    if args.rebuild or not meta_path.exists():
        meta_path.unlink(missing_ok=True)
        engine = create_engine_from_url(f"sqlite:///{meta_path}")
        import_park(engine, park, actor="bench")
        record_inputs(engine, park, args.year)
    engine = create_engine_from_url(f"sqlite:///{meta_path}")
    period = ReportPeriod("month", args.year, args.month)
    now = pd.Timestamp(args.year + 1, 1, 15, tz=park.timezone)
    info = machine_info()
    print_machine(info)
    store = EmbeddedStore(store_path, park.catalog(), park.timezone)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            settings = Settings(data_dir=Path(tmp), metadata_url=f"sqlite:///{meta_path}")
            runs = [run_once(settings, engine, park, store, period, now) for _ in range(args.repeats + 1)][1:]
            run_report(settings, engine, park, store, "monthly", period, now=now)  # archive once ...
            t = time.perf_counter()
            again = run_report(settings, engine, park, store, "monthly", period, now=now)  # ... and re-run
            unchanged_s = time.perf_counter() - t
            if again.created:
                raise RuntimeError("a re-run with unchanged data made a new version")
    finally:
        store.close()
    median = {k: statistics.median(r[k] for r in runs) for k in ("build", "render", "total")}
    result = {"machine": info, "enterprises": args.enterprises, "meters": len(park.meters), "period": period.label,
              "repeats": args.repeats, "median_s": median, "unchanged_s": unchanged_s, "runs": runs,
              "goal_s": GOAL_S}
    (OUT / "reports.json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(report(result))
    if not args.no_docs:
        write_docs(result)
    return result


def report(result: dict) -> str:
    m, info, first = result["median_s"], result["machine"], result["runs"][0]
    verdict = "meets" if m["total"] < result["goal_s"] else "misses"
    return "\n".join([
        SECTION, "",
        f"{info['date']}; {info['nproc']} CPU(s) {info['cpu']}, {info['memory_gib']} GiB; Python {info['python']}, "
        f"pandas {info['pandas']}, DuckDB {info['duckdb']}.",
        "",
        f"Park: {result['enterprises']} enterprises, {result['meters']} meters (bench.carbon's park and store). "
        f"The monthly report of {result['period']} ({first['rows']:,} table rows), built through the regulator "
        "scope and written as Excel, CSV and PDF "
        f"({first['bytes']['xlsx']:,} / {first['bytes']['csv']:,} / {first['bytes']['pdf']:,} bytes). "
        f"Median of {result['repeats']} repeats after one warm-up.",
        "",
        "| stage | median s |", "|---|---|",
        f"| build (accounts, intensities, quota, coverage) | {m['build']:.2f} |",
        f"| render (xlsx, csv, pdf) | {m['render']:.2f} |",
        f"| **total, new version** | **{m['total']:.2f}** |",
        f"| re-run with unchanged data (nothing written) | {result['unchanged_s']:.2f} |",
        "",
        f"Goal: under {result['goal_s']:.0f} s: {verdict} it.",
        "",
    ])


def write_docs(result: dict) -> None:
    """Replace this benchmark's section of docs/benchmarks.md, leaving the others as they are."""
    text = BENCHMARKS_MD.read_text(encoding="utf-8") if BENCHMARKS_MD.exists() else ""
    head = text.split(SECTION)[0].rstrip("\n")
    tail = ""
    if SECTION in text:
        rest = text.split(SECTION, 1)[1]
        nxt = rest.find("\n## ")
        tail = rest[nxt:] if nxt >= 0 else ""
    BENCHMARKS_MD.write_text((head + "\n\n" if head else "") + report(result) + tail.lstrip("\n"), encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1:])
