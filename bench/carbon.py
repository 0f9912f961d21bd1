"""Carbon accounting benchmark: a year of monthly accounts for a 200-enterprise park, from the embedded store.

    python -m bench.carbon [--enterprises 200] [--meters 10] [--year 2024] [--repeats 5] [--rebuild]
    python -m bench.carbon --accounts-only [--against DIR] [--rounds 6] [--repeats 3]

The park (park.synth.synth_park: 200 enterprises x 10 meters, Jiangsu / East China grid) and one year of its
15-minute readings (70 million rows) are written once through EmbeddedStore.write into bench/out/ and reused;
that generation takes minutes and is not timed.  Output value, product output, green certificates and quota
plans and ledgers are recorded once in a SQLite metadata file beside it.

Each timed repeat then does what the portal does for the park page of a year:
load the monthly activity of every enterprise and workshop from the store's roll-ups and the recorded
activity, production, instruments and ledger from the metadata database; compute monthly Scope 1 and 2
(location- and market-based) and energy in tce at workshop, enterprise and park level; intensities with the
grade and ranking; and the quota position of every enterprise.  Reported: the median over the repeats and
the split by stage.  Goal: under 2 s.

--accounts-only times compute_accounts alone, without the store: the park's monthly activity is made in memory in
the shape the store's roll-ups give (one row per enterprise, workshop, carrier and month, water left out, coverage
just under 1) with the same certificates as above.  --against DIR also times the accounting of another checkout
(`git worktree add /tmp/carbon-old <commit>`) on the same frames: each round runs both in fresh processes, in
alternating order, so that the load of a shared machine falls on both alike; medians and the ratio are reported,
and both sides' totals must agree (1e-9 relative).
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import Engine

from bench import OUT, machine_info, print_machine
from carbon import pipeline, records
from carbon.emissions import compute_accounts
from carbon.factors import FactorRegistry
from carbon.intensity import grade_enterprises, intensities
from carbon.quota import QuotaPlan, position, pre_allocation
from carbon.regions import enterprise_regions
from park.metadata import create_engine_from_url, import_park
from park.model import Park
from park.store.embedded import EmbeddedStore
from park.synth import synth_park, synth_readings
from park.units import canonical_unit

SEED = 2024
GOAL_S = 2.0
CARBON_PRICE_CNY_PER_T = 97.49  # national ETS close at the end of 2024 (docs/methodology.md)
BENCHMARKS_MD = Path(__file__).parent.parent / "docs" / "benchmarks.md"
SECTION = "## Carbon accounting (`python -m bench.carbon`)"


def cached_store(park: Park, enterprises: int, meters: int, year: int, rebuild: bool = False) -> Path:
    """The benchmark park's embedded store under bench/out/ (carbon_<E>x<M>_<year>.duckdb), built once (not
    timed) and reused by bench.carbon and bench.reports."""
    store_path = OUT / f"carbon_{enterprises}x{meters}_{year}.duckdb"
    OUT.mkdir(parents=True, exist_ok=True)
    if rebuild or not store_path.exists():
        print(f"building {store_path} ({len(park.meters)} meters, one year of 15-minute readings) ...", flush=True)
        print(f"built in {build_store(park, store_path, year):.0f} s (not timed)")
    return store_path


def build_store(park: Park, path: Path, year: int) -> float:
    """Write a year of the park's readings into a fresh embedded store at `path`, month by month; seconds."""
    tmp = path.with_suffix(".building")
    tmp.unlink(missing_ok=True)
    t0 = time.perf_counter()
    store = EmbeddedStore(tmp, park.catalog(), park.timezone)
    try:
        start, end = pd.Timestamp(f"{year}-01-01", tz=park.timezone), pd.Timestamp(f"{year + 1}-01-01",
                                                                                tz=park.timezone)
        for frame in synth_readings(park, start, end, SEED, chunk="month", gap_rate=0.001):
            result = store.write("energy", frame, source="bench")
            month = frame["ts"].iloc[0].strftime("%Y-%m")
            print(f"  {month}: {result.written:,} readings ({time.perf_counter() - t0:.0f} s)", flush=True)
    finally:
        store.close()
    tmp.rename(path)
    return time.perf_counter() - t0


def record_inputs(engine: Engine, park: Park, year: int) -> None:
    """Output value, product output, certificates, quota plans and ledgers: the recorded inputs of the year."""
    rng = np.random.default_rng([SEED, 7])
    months = [date(year, m, 1) for m in range(1, 13)]
    out_rows, prod_rows, inst_rows, movements = [], [], [], []
    for e in park.enterprises:
        value = float(rng.lognormal(np.log(800.0), 0.6))  # 10k CNY a month
        tonnes = float(rng.lognormal(np.log(500.0), 0.5))
        for m in months:
            wiggle = float(rng.uniform(0.85, 1.15))
            out_rows.append({"enterprise": e.id, "month": m, "output_value_10k_cny": round(value * wiggle, 2)})
            prod_rows.append({"enterprise": e.id, "month": m, "product": "main", "quantity": round(tonnes * wiggle, 1),
                              "unit": "t"})
        if rng.random() < 0.3:
            inst_rows.append({"enterprise": e.id, "kind": "gec", "quantity_mwh": float(rng.integers(50, 500)),
                              "period_start": date(year, 1, 1), "period_end": date(year + 1, 1, 1),
                              "reference": f"GEC-{e.id}-{year}", "vintage": year})
    records.record_output_values(engine, park.id, pd.DataFrame(out_rows), actor="bench")
    records.record_product_output(engine, park.id, pd.DataFrame(prod_rows), actor="bench")
    records.record_instruments(engine, park.id, pd.DataFrame(inst_rows), actor="bench")
    for e in park.enterprises:
        plan = QuotaPlan.intensity(e.id, year, benchmark_t_per_unit=0.9, unit="t", base_output=6000.0,
                                   pre_share=0.7)
        records.record_quota_plan(engine, park.id, plan, actor="bench")
        movements.append((e.id, pre_allocation(plan)))
    for enterprise, amount in movements:
        records.record_movement(engine, park.id, enterprise, year, "allocation", amount, actor="bench",
                                note="pre-allocation 70 %")


def bench_instruments(park: Park, year: int) -> pd.DataFrame:
    """The certificates record_inputs records (the same draws), as an instruments frame."""
    rng = np.random.default_rng([SEED, 7])
    rows = []
    for e in park.enterprises:
        rng.lognormal(np.log(800.0), 0.6), rng.lognormal(np.log(500.0), 0.5)
        rng.uniform(0.85, 1.15, size=12)
        if rng.random() < 0.3:
            rows.append({"enterprise": e.id, "kind": "gec", "quantity_mwh": float(rng.integers(50, 500)),
                         "period_start": date(year, 1, 1), "period_end": date(year + 1, 1, 1),
                         "reference": f"GEC-{e.id}-{year}", "vintage": year})
    return pd.DataFrame(rows)


def memory_activity(park: Park, year: int) -> pd.DataFrame:
    """Monthly activity of every enterprise, workshop and carrier, in the shape carbon.activity.load_activity gives
    from the store's roll-ups (quantities drawn, a few intervals missing): the accounts' input without a store."""
    rng = np.random.default_rng([SEED, 3])
    groups = sorted({(m.enterprise, m.workshop or "", str(m.carrier)) for m in park.meters
                     if str(m.carrier) != "water"})
    rows = []
    for month in range(1, 13):
        start = pd.Timestamp(year, month, 1, tz=park.timezone)
        end = start + pd.DateOffset(months=1)
        expected = (end - start) / pd.Timedelta("15min")
        for enterprise, workshop, carrier in groups:
            measured = float(expected - rng.integers(0, 30))
            rows.append({"enterprise": enterprise, "workshop": workshop or None, "carrier": carrier,
                         "flow": "import", "period_start": start, "period_end": end,
                         "quantity": float(rng.lognormal(10.0, 1.0)), "unit": canonical_unit(carrier),
                         "count": measured, "measured": measured, "expected": expected,
                         "coverage": measured / expected, "source": "store"})
    return pd.DataFrame(rows)


# Run in a fresh process with PYTHONPATH set to the checkout under test: times compute_accounts on pickled inputs.
CHILD = """
import json, pickle, sys, time
from carbon.emissions import compute_accounts
from carbon.factors import FactorRegistry
with open(sys.argv[1], "rb") as fh:
    inputs = pickle.load(fh)
registry = FactorRegistry.shipped()
runs = []
for i in range(int(sys.argv[2]) + 1):
    w, c = time.perf_counter(), time.process_time()
    acc = compute_accounts(inputs["activity"], registry, inputs["regions"], period_kind="month",
                           instruments=inputs["instruments"])
    if i:  # the first is a warm-up
        runs.append({"wall_s": time.perf_counter() - w, "cpu_s": time.process_time() - c})
t = acc.totals
check = {"rows": len(t), **{m: float(t[m].sum()) for m in ("energy_tce", "total_location_t_co2e",
                                                           "total_market_t_co2e", "green_kwh")}}
print(json.dumps({"runs": runs, "check": check}))
"""


def time_checkout(root: Path, inputs: Path, repeats: int) -> dict:
    """compute_accounts of the checkout at `root` in a fresh process: its runs and a check of its totals."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    done = subprocess.run([sys.executable, "-c", CHILD, str(inputs), str(repeats)], cwd=root, env=env,
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def compare_accounts(park: Park, year: int, against: Path | None, rounds: int, repeats: int) -> dict:
    """Accounts alone on the in-memory activity: this checkout, and `against` interleaved with it."""
    here = Path(__file__).resolve().parent.parent
    sides = {"new": here, **({"old": against.resolve()} if against else {})}
    runs: dict[str, list[dict]] = {k: [] for k in sides}
    checks: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        inputs = Path(tmp) / "inputs.pkl"
        with open(inputs, "wb") as fh:
            pickle.dump({"activity": memory_activity(park, year), "regions": enterprise_regions(park),
                         "instruments": bench_instruments(park, year)}, fh)
        for r in range(rounds):
            for side in (list(sides) if r % 2 == 0 else list(sides)[::-1]):
                got = time_checkout(sides[side], inputs, repeats)
                runs[side] += got["runs"]
                checks[side] = got["check"]
                print(f"  round {r + 1} {side}: wall " + ", ".join(f"{x['wall_s']:.3f}" for x in got["runs"])
                      + " s; cpu " + ", ".join(f"{x['cpu_s']:.3f}" for x in got["runs"]) + " s", flush=True)
    if "old" in checks:
        for k, v in checks["new"].items():
            o = checks["old"][k]
            if abs(v - o) > 1e-9 * max(abs(v), abs(o)):
                raise RuntimeError(f"old and new accounts differ: {k} {o!r} != {v!r}")
    median = {side: {k: statistics.median(x[k] for x in rs) for k in ("wall_s", "cpu_s")} for side, rs in runs.items()}
    out = {"median": median, "runs": runs, "check": checks, "rounds": rounds, "repeats": repeats,
           "against": str(against) if against else None}
    if "old" in median:
        out["ratio_old_over_new"] = {k: median["old"][k] / median["new"][k] for k in ("wall_s", "cpu_s")}
    return out


def run_once(store: EmbeddedStore, engine: Engine, park: Park, shipped: FactorRegistry, year: int) -> dict:
    """One timed pass; returns seconds per stage."""
    t = {"start": time.perf_counter()}
    start = pd.Timestamp(f"{year}-01-01", tz=park.timezone)
    end = pd.Timestamp(f"{year + 1}-01-01", tz=park.timezone)
    activity = pipeline.park_activity(store, engine, park, start, end)
    t["activity"] = time.perf_counter()
    registry = pipeline.park_registry(engine, park.id, shipped=shipped)
    instruments = records.load_instruments(engine, park.id)
    output = records.load_output_values(engine, park.id, start.date(), end.date())
    ledger = records.load_ledger(engine, park.id, year)
    plans = records.load_quota_plans(engine, park.id, year)
    t["metadata"] = time.perf_counter()
    accounts = compute_accounts(activity, registry, enterprise_regions(park), period_kind="month",
                                instruments=instruments)
    t["accounts"] = time.perf_counter()
    inten = intensities(accounts, output, industries={e.id: e.industry for e in park.enterprises})
    grades = grade_enterprises(inten)
    t["intensities"] = time.perf_counter()
    to_date = accounts.totals_at("enterprise").groupby("enterprise")["total_location_t_co2e"].sum()
    emissions = to_date.rename("emissions_t_co2e").reset_index().assign(year=year)
    pos = position(ledger, emissions, CARBON_PRICE_CNY_PER_T, plans=plans)
    t["quota"] = time.perf_counter()
    if len(pos) != len(park.enterprises) or grades["grade"].isna().all():
        raise RuntimeError("the benchmark pass did not produce a position and a grade for every enterprise")
    stages = ["activity", "metadata", "accounts", "intensities", "quota"]
    out = {s: t[s] - t[p] for p, s in zip(["start", *stages[:-1]], stages, strict=True)}
    out["total"] = t["quota"] - t["start"]
    out["rows"] = len(accounts.totals)
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(prog="python -m bench.carbon", description=__doc__.split("\n\n")[0])
    ap.add_argument("--enterprises", type=int, default=200)
    ap.add_argument("--meters", type=int, default=10, help="meters per enterprise")
    ap.add_argument("--year", type=int, default=2024)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--rebuild", action="store_true", help="regenerate the cached store")
    ap.add_argument("--build-only", action="store_true", help="build the cached store and exit")
    ap.add_argument("--no-docs", action="store_true", help="do not write the figures into docs/benchmarks.md")
    ap.add_argument("--accounts-only", action="store_true",
                    help="time compute_accounts alone on monthly activity made in memory (no store)")
    ap.add_argument("--against", type=Path, metavar="DIR",
                    help="with --accounts-only: also time the checkout in DIR, interleaved (e.g. a git worktree)")
    ap.add_argument("--rounds", type=int, default=6, help="with --accounts-only: processes per side")
    args = ap.parse_args(argv)

    park = synth_park(args.enterprises, args.meters, SEED)
    if args.accounts_only:
        info = machine_info()
        print_machine(info)
        result = {"machine": info, "enterprises": args.enterprises, "meters": len(park.meters), "year": args.year,
                  **compare_accounts(park, args.year, args.against, args.rounds, args.repeats)}
        result["loadavg_1m_at_end"] = round(os.getloadavg()[0], 2)
        (OUT / "carbon-accounts.json").parent.mkdir(parents=True, exist_ok=True)
        (OUT / "carbon-accounts.json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
        for side, m in result["median"].items():
            print(f"{side}: median wall {m['wall_s']:.3f} s, cpu {m['cpu_s']:.3f} s "
                  f"({len(result['runs'][side])} runs)")
        if "ratio_old_over_new" in result:
            r = result["ratio_old_over_new"]
            print(f"old / new: wall {r['wall_s']:.2f}x, cpu {r['cpu_s']:.2f}x")
        return result
    store_path = cached_store(park, args.enterprises, args.meters, args.year, args.rebuild)
    meta_path = store_path.with_suffix(".db")
    if args.rebuild or not meta_path.exists():
        meta_path.unlink(missing_ok=True)
        engine = create_engine_from_url(f"sqlite:///{meta_path}")
        records.create_tables(engine)
        import_park(engine, park, actor="bench")
        record_inputs(engine, park, args.year)
    if args.build_only:
        return {}
    engine = create_engine_from_url(f"sqlite:///{meta_path}", create_tables=False)
    shipped = FactorRegistry.shipped()
    info = machine_info()
    print_machine(info)
    store = EmbeddedStore(store_path, park.catalog(), park.timezone)
    try:
        runs = [run_once(store, engine, park, shipped, args.year) for _ in range(args.repeats + 1)][1:]
    finally:
        store.close()
    median = {k: statistics.median(r[k] for r in runs) for k in runs[0] if k != "rows"}
    result = {"machine": info, "enterprises": args.enterprises, "meters": len(park.meters), "year": args.year,
              "readings": len(park.meters) * 35136, "repeats": args.repeats, "median_s": median,
              "runs": runs, "goal_s": GOAL_S, "rows": runs[0]["rows"]}
    (OUT / "carbon.json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(report(result))
    if not args.no_docs:
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
        f"Park: {result['enterprises']} enterprises, {result['meters']} meters, one year ({result['year']}) of "
        "15-minute readings in the embedded store (built once, not timed). One pass = monthly Scope 1 and 2 "
        "(location- and market-based) and tce at workshop, enterprise and park level, intensities with grade "
        f"and ranking, quota positions of every enterprise ({result['rows']:,} result rows). "
        f"Median of {result['repeats']} repeats after one warm-up.",
        "",
        "| stage | median s |", "|---|---|",
        *(f"| {k} | {v:.3f} |" for k, v in m.items() if k != "total"),
        f"| **total** | **{m['total']:.3f}** |",
        "",
        f"Goal: under {result['goal_s']:.0f} s: {verdict} it.",
        "",
    ])


def write_docs(result: dict) -> None:
    """Replace this benchmark's section of docs/benchmarks.md up to its first sub-section (### ...), leaving the
    sub-sections (e.g. the --accounts-only comparison) and the other sections as they are."""
    text = BENCHMARKS_MD.read_text(encoding="utf-8") if BENCHMARKS_MD.exists() else ""
    head = text.split(SECTION)[0].rstrip("\n")
    tail = ""
    if SECTION in text:
        rest = text.split(SECTION, 1)[1]
        nxt = rest.find("\n## ")
        sub = rest.find("\n### ", 0, nxt if nxt >= 0 else len(rest))
        tail = rest[sub:] if sub >= 0 else (rest[nxt:] if nxt >= 0 else "")
    body = report(result)
    tail = ("\n" if tail.startswith("\n### ") else "") + tail.lstrip("\n")
    BENCHMARKS_MD.write_text((head + "\n\n" if head else "") + body + tail, encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1:])
