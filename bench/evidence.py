"""Evidence-pack benchmark: one enterprise-year pack (PDF included) from the 200-enterprise benchmark park.

    python -m bench.evidence [--enterprises 200] [--meters 10] [--devices 5] [--year 2024] [--repeats 3] [--rebuild]

The park (park.synth.synth_park with `--devices` bracelets per enterprise) and one year of its 15-minute meter
readings are written once into bench/out/ (minutes, not timed), with the bracelets' one-minute currents of the
enterprise whose pack is built, its year of output value, a bank with a consent in force and the park's key.

Each timed repeat is what `GET /api/v1/evidence/<enterprise>/<year>` does, on a fresh portal context (no warm
accounts cache): read the year through the bank's scope (monthly accounts of the park, cut to the enterprise; daily
energy per meter; utilisation per bracelet per day; output value; peers), compute trust, risk indicators and
signals, render the bilingual PDF, write the CSVs, hash, sign, log.  Reported: the median over the repeats by stage
(gather, pdf, rest of the pack) and the offline verification with --recompute.  Goal: under 5 s.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from dataclasses import replace
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from bench import OUT, machine_info, print_machine

SEED = 2024
GOAL_S = 5.0
BENCHMARKS_MD = Path(__file__).parent.parent / "docs" / "benchmarks.md"
SECTION = "## Evidence pack (`python -m bench.evidence`)"
ANALYSIS = "### Analysis"  # hand-written part of the section, kept when the figures are rewritten
PASSWORD = "bench evidence password"


def build(park, store_path: Path, meta_path: Path, key_dir: Path, year: int, enterprise: str, days: int | None
          ) -> None:
    """The cached store (a year of readings, the enterprise's bracelets) and metadata (users, consent, key)."""
    from carbon import records
    from park.metadata import create_engine_from_url, import_park
    from park.store.embedded import EmbeddedStore
    from park.synth import synth_currents, synth_readings
    from portal.auth import add_user
    from portal.evidence import consent, keys

    start = pd.Timestamp(f"{year}-01-01", tz=park.timezone)
    end = start + (pd.Timedelta(days=days) if days else pd.DateOffset(years=1))
    for p in (store_path, meta_path):
        p.unlink(missing_ok=True)
    t0 = time.perf_counter()
    store = EmbeddedStore(store_path, park.catalog(), park.timezone)
    try:
        for frame in synth_readings(park, start, end, SEED, chunk="month", gap_rate=0.001):
            store.write("energy", frame, source="bench")
            print(f"  {frame['ts'].iloc[0]:%Y-%m}: readings ({time.perf_counter() - t0:.0f} s)", flush=True)
        mine = replace(park, devices=tuple(d for d in park.devices if d.enterprise == enterprise))
        for frame in synth_currents(mine, start, end, SEED, chunk="month"):
            store.write("current", frame, source="bench")
    finally:
        store.close()
    engine = create_engine_from_url(f"sqlite:///{meta_path}")
    import_park(engine, park, actor="bench")
    rng = np.random.default_rng([SEED, 12])
    months = [date(year, m, 1) for m in range(1, 13)]
    records.record_output_values(engine, park.id, pd.DataFrame(
        [{"enterprise": e.id, "month": m, "output_value_10k_cny": round(float(rng.lognormal(np.log(800), 0.3)), 2)}
         for e in park.enterprises for m in months]), actor="bench")
    add_user(engine, park.id, "bench-bank", PASSWORD, "bank", None)
    add_user(engine, park.id, "bench-admin", PASSWORD, "admin", None)
    c = consent.request(engine, park.id, "bench-bank", enterprise, "loan_application",
                        ["energy", "emissions", "utilisation", "risk"], f"{year}-01", f"{year}-12",
                        pd.Timestamp.now(tz="UTC") + pd.Timedelta(days=3650))
    consent.grant(engine, c.id, "bench-admin")
    keys.ensure_key(engine, park.id, key_dir, actor="bench")


def run_once(settings, engine, park, store, enterprise: str, year: int) -> dict:
    """One timed pack, as the API builds it, split into stages; and its offline verification."""
    from portal.auth import load_user
    from portal.context import PortalContext
    from portal.evidence import consent, keys, pack, verify
    from portal.scope import scope_for

    load = os.getloadavg()[0]
    cpu0 = time.process_time()
    t = {"start": time.perf_counter()}
    now = pd.Timestamp(f"{year + 1}-01-01 12:00", tz=park.timezone)
    ctx = PortalContext(settings, engine, park, store, clock=lambda: now)
    scope = scope_for(ctx, load_user(engine, "bench-bank"), "/api/v1/evidence")
    period = pack.parse_period(str(year), park.tz, now)
    grant = consent.covering(engine, "bench-bank", enterprise, list(period.months), "emissions", now=now)
    es = scope.enterprise(enterprise)
    data = pack.gather(es, period)
    from portal.evidence.indicators import baseline_for, savings_for

    data.savings, data.savings_note = savings_for(es, data, grant)
    data.baseline, data.baseline_summary = baseline_for(es, data, grant)
    t["gather"] = time.perf_counter()
    key_id, private = keys.active_key(engine, park.id, settings.data_dir)
    restated = pack.restatements(engine, park.id, enterprise, pack.month_figures(data.monthly))
    from portal.evidence.report import report_pdf

    summ = pack.summary(data, restated)
    report_pdf(data, summ, restated, park=park, key_id=key_id, as_of=period.end.tz_convert("UTC").to_pydatetime(),
               consent_row=grant)
    t["pdf"] = time.perf_counter()
    blob, _ = pack.build(data, park=park, consent_row=grant, issued_to="bench-bank", key_id=key_id,
                         private_key=private, generated_at=pd.Timestamp.now(tz="UTC").to_pydatetime(),
                         restated=restated, public_keys_url=keys.PUBLIC_KEYS_PATH, report=False)
    t["pack"] = time.perf_counter()
    cpu = time.process_time() - cpu0
    res = verify.verify(blob, recompute=True)
    t["verify"] = time.perf_counter()
    if not res.ok:
        raise RuntimeError(f"the benchmark pack does not verify: {res.problems[:3]}")
    stages = ["gather", "pdf", "pack"]
    out = {s: t[s] - t[p] for p, s in zip(["start", *stages[:-1]], stages, strict=True)}
    out["total"] = t["pack"] - t["start"]
    out["cpu"] = cpu  # process CPU time of the pass (all threads: DuckDB's included)
    out["load"] = load  # the machine's 1-minute load average when the pass began
    out["verify_recompute"] = t["verify"] - t["pack"]
    out["bytes"] = len(blob)
    out["figures"] = res.compared
    return out


def main(argv: list[str] | None = None) -> dict:
    from park.metadata import create_engine_from_url
    from park.settings import Settings
    from park.store.embedded import EmbeddedStore
    from park.synth import synth_park

    ap = argparse.ArgumentParser(prog="python -m bench.evidence", description=__doc__.split("\n\n")[0])
    ap.add_argument("--enterprises", type=int, default=200)
    ap.add_argument("--meters", type=int, default=10, help="meters per enterprise")
    ap.add_argument("--devices", type=int, default=5, help="bracelets per enterprise")
    ap.add_argument("--year", type=int, default=2024)
    ap.add_argument("--days", type=int, help="only this many days of data (a smoke run; not the benchmark)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--rebuild", action="store_true", help="regenerate the cached store")
    ap.add_argument("--no-docs", action="store_true", help="do not write the figures into docs/benchmarks.md")
    args = ap.parse_args(argv)

    park = synth_park(args.enterprises, args.meters, SEED, devices_per_enterprise=args.devices)
    enterprise = park.enterprises[0].id
    tag = f"evidence_{args.enterprises}x{args.meters}x{args.devices}_{args.year}" + (f"_{args.days}d" if args.days
                                                                                      else "")
    store_path, meta_path, key_dir = OUT / f"{tag}.duckdb", OUT / f"{tag}.db", OUT / tag
    OUT.mkdir(parents=True, exist_ok=True)
    if args.rebuild or not (store_path.exists() and meta_path.exists()):
        print(f"building {store_path} ({len(park.meters)} meters, {len(park.devices)} bracelets) ...", flush=True)
        build(park, store_path, meta_path, key_dir, args.year, enterprise, args.days)
    settings = Settings(data_dir=key_dir, metadata_url=f"sqlite:///{meta_path}", embedded_path=store_path)
    engine = create_engine_from_url(settings.metadata_url)  # the cached metadata upgraded to the newest schema
    info = machine_info()
    print_machine(info)
    store = EmbeddedStore(store_path, park.catalog(), park.timezone)
    try:
        runs = [run_once(settings, engine, park, store, enterprise, args.year) for _ in range(args.repeats)]
    finally:
        store.close()
    median = {k: statistics.median(r[k] for r in runs) for k in runs[0] if k not in ("bytes", "figures", "load")}
    result = {"machine": info, "enterprises": args.enterprises, "meters": len(park.meters),
              "devices": args.devices, "enterprise": enterprise, "year": args.year, "days": args.days,
              "repeats": args.repeats, "median_s": median, "runs": runs, "goal_s": GOAL_S,
              "bytes": runs[0]["bytes"], "figures": runs[0]["figures"]}
    (OUT / f"{tag}.json").write_text(json.dumps(result, indent=2, ensure_ascii=False, default=str) + "\n")
    print(report(result))
    if not args.no_docs and not args.days:
        write_docs(result)
    return result


def report(result: dict) -> str:
    """The markdown section of docs/benchmarks.md."""
    m, info = result["median_s"], result["machine"]
    verdict = "meets" if m["total"] < result["goal_s"] else "misses"
    return "\n".join([
        SECTION, "",
        f"{info['date']}; {info['nproc']} CPU(s) {info['cpu']}, {info['memory_gib']} GiB; Python {info['python']}, "
        f"pandas {info['pandas']}, DuckDB {info['duckdb']}.",
        "",
        f"Park: {result['enterprises']} enterprises, {result['meters']} meters, {result['devices']} bracelets per "
        f"enterprise; one year ({result['year']}) of 15-minute readings and the pack enterprise's one-minute "
        f"bracelet currents in the embedded store (built once, not timed). One pass = the pack of "
        f"{result['enterprise']} for {result['year']} as the bank API builds it on a cold portal context "
        f"({result['bytes']:,} bytes; {result['figures']} figures recomputed by verify). Median of "
        f"{result['repeats']} repeats.",
        "",
        "| stage | median s |", "|---|---|",
        *(f"| {k} | {v:.3f} |" for k, v in m.items() if k not in ("total", "verify_recompute", "cpu")),
        f"| **total** | **{m['total']:.3f}** |",
        f"| CPU time of the pass (all threads) | {m['cpu']:.3f} |",
        f"| verify --recompute (offline) | {m['verify_recompute']:.3f} |",
        "",
        "Load average (1 min) when the passes began: " + ", ".join(f"{r['load']:.1f}" for r in result["runs"]) + ".",
        "",
        f"Goal: under {result['goal_s']:.0f} s: {verdict} it.",
        "",
    ])


def write_docs(result: dict) -> None:
    """Replace (or append) this benchmark's section of docs/benchmarks.md; the section's hand-written analysis
    (from the ANALYSIS heading to the next section) is kept."""
    text = BENCHMARKS_MD.read_text(encoding="utf-8")
    section = report(result)
    if SECTION in text:
        head, _, rest = text.partition(SECTION)
        nxt = rest.find("\n## ")
        own = rest[:nxt] if nxt >= 0 else rest
        if ANALYSIS in own:
            section = section + "\n" + own[own.index(ANALYSIS):].rstrip("\n") + "\n"
        text = head + section + (rest[nxt:] if nxt >= 0 else "")  # keep the blank line before the next section
    else:
        text = text.rstrip("\n") + "\n\n" + section
    BENCHMARKS_MD.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
