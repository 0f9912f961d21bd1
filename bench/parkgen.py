"""Write the benchmark park's readings into a store, through the store interface, with progress and rates.

    python -m bench.parkgen --backend embedded|influx --enterprises 200 --meters-per-enterprise 10 --days 365
                            --seed 1 [--path FILE | --influx-url URL --database DB]

The full size (200 x 10 meters, a year of 15-minute readings) is about 70 million readings, made month by
month by park.synth so that memory stays bounded.  Without --influx-url the influx backend starts a throwaway
influxd (tests.support.influx) and removes it at the end, so only the figures remain.  The park itself is
written as a park file (park.parkfile.dump_park) next to the data.  --generate-only times the generator
alone, to estimate a full run before starting one.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pandas as pd

from bench import OUT, machine_info, print_machine
from park.model import Park
from park.store.base import TimeSeriesStore
from park.synth import synth_park, synth_readings

MEASUREMENT = "energy"


def write_park_file(park: Park, path: Path) -> str:
    """Write the park file if park.parkfile.dump_park exists; say what happened either way."""
    try:
        from park.parkfile import dump_park
    except ImportError:
        return "park.parkfile.dump_park is not available: park file not written"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dump_park(park), encoding="utf-8")
    return f"park file written to {path}"


def open_backend(args: argparse.Namespace, park: Park) -> tuple[TimeSeriesStore, object | None, str]:
    """The store to write into, the throwaway server started for it (or None), and a description."""
    catalog = park.catalog()
    if args.backend == "embedded":
        from park.store.embedded import EmbeddedStore

        path = Path(args.path)
        if path.exists():
            if not args.overwrite:
                raise SystemExit(f"{path} exists: remove it or pass --overwrite")
            path.unlink()
        return EmbeddedStore(path, catalog, park.timezone), None, f"embedded store {path}"
    from park.store.influx import InfluxConfig, InfluxStore

    server = None
    url = args.influx_url
    if not url:
        from tests.support.influx import InfluxServer

        server = InfluxServer().start()
        url = server.url
    store = InfluxStore(InfluxConfig(url=url, database=args.database, timeout_s=60), catalog, park.timezone)
    where = f"throwaway influxd {url}" if server else url
    return store, server, f"InfluxDB {where}, database {args.database}"


def generate_only(park: Park, start: pd.Timestamp, end: pd.Timestamp, args: argparse.Namespace) -> dict:
    """Time the generator alone (no store), chunk by chunk."""
    t0 = time.perf_counter()
    rows = 0
    for frame in synth_readings(park, start, end, args.seed, chunk=args.chunk, gap_rate=args.gap_rate):
        rows += len(frame)
        el = time.perf_counter() - t0
        print(f"  up to {frame['ts'].iloc[-1]:%Y-%m-%d %H:%M}: {rows:>12,} rows {el:7.1f} s "
              f"{rows / el:>12,.0f} rows/s", flush=True)
    el = time.perf_counter() - t0
    return {"rows": rows, "seconds": el, "rows_per_s": rows / el}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(prog="python -m bench.parkgen", description=__doc__.split("\n\n")[0])
    ap.add_argument("--backend", choices=["embedded", "influx"], default="embedded")
    ap.add_argument("--enterprises", type=int, default=200)
    ap.add_argument("--meters-per-enterprise", type=int, default=10)
    ap.add_argument("--days", type=float, default=365)
    ap.add_argument("--start", default="2024-01-01", help="first day, park-local (default 2024-01-01)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--gap-rate", type=float, default=0.0)
    ap.add_argument("--chunk", default="month", help="generator chunk: day, week, month or year")
    ap.add_argument("--batch", type=int, default=100_000, help="readings per store.write call")
    ap.add_argument("--path", default=str(OUT / "parkgen.duckdb"), help="embedded: DuckDB file")
    ap.add_argument("--overwrite", action="store_true", help="embedded: replace an existing file")
    ap.add_argument("--influx-url", help="influx: server URL; default: start a throwaway influxd")
    ap.add_argument("--database", default="parkgen", help="influx: database")
    ap.add_argument("--park-file", type=Path, help="where to write the park file (default: beside the data)")
    ap.add_argument("--generate-only", action="store_true", help="time the generator alone, write nothing")
    ap.add_argument("--json", type=Path, help="also write the figures as JSON here")
    args = ap.parse_args(argv)

    info = machine_info()
    print_machine(info)
    park = synth_park(args.enterprises, args.meters_per_enterprise, args.seed)
    tz = park.timezone
    start = pd.Timestamp(args.start).tz_localize(tz) if pd.Timestamp(args.start).tzinfo is None \
        else pd.Timestamp(args.start)
    end = start + pd.Timedelta(days=args.days)
    expected = len(park.meters) * int((end - start) / pd.Timedelta(minutes=15))
    print(f"park {park.id}: {len(park.enterprises)} enterprises, {len(park.meters)} meters; "
          f"{start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} ({args.days:g} days), ~{expected:,} readings")
    result: dict = {"benchmark": "parkgen", "machine": info, "config": {k: str(v) for k, v in vars(args).items()},
                    "expected_readings": expected}
    if args.generate_only:
        result["generator"] = generate_only(park, start, end, args)
        g = result["generator"]
        print(f"generator alone: {g['rows']:,} rows in {g['seconds']:.1f} s, {g['rows_per_s']:,.0f} rows/s")
        _save(result, args.json)
        return result

    store, server, where = open_backend(args, park)
    print(f"writing into {where}, batches of {args.batch:,}")
    default_park_file = (Path(args.path).with_suffix(".park.yaml") if args.backend == "embedded"
                         else OUT / f"parkgen-{args.database}.park.yaml")
    result["park_file"] = write_park_file(park, args.park_file or default_park_file)
    print(result["park_file"])
    try:
        t0 = time.perf_counter()
        rows = gen_s = write_s = 0.0
        rejected = 0
        frames = synth_readings(park, start, end, args.seed, chunk=args.chunk, gap_rate=args.gap_rate)
        while True:
            g0 = time.perf_counter()
            frame = next(frames, None)
            gen_s += time.perf_counter() - g0
            if frame is None:
                break
            w0 = time.perf_counter()
            for i in range(0, len(frame), args.batch):
                res = store.write(MEASUREMENT, frame.iloc[i:i + args.batch], source="bench.parkgen")
                rejected += len(res.rejected)
            write_s += time.perf_counter() - w0
            rows += len(frame)
            el = time.perf_counter() - t0
            eta = el / rows * (expected - rows)
            print(f"  up to {frame['ts'].iloc[-1]:%Y-%m-%d %H:%M}: {rows:>12,.0f} rows {el:7.1f} s "
                  f"{rows / el:>10,.0f} rows/s overall (generate {gen_s:.1f} s, write {write_s:.1f} s) "
                  f"ETA {eta / 60:.1f} min", flush=True)
        total = time.perf_counter() - t0
        r0 = time.perf_counter()
        ranges = store.refresh_rollups()
        rollup_s = time.perf_counter() - r0
        q0 = time.perf_counter()
        check = store.coverage(MEASUREMENT, start, end, by=["carrier"])
        query_s = time.perf_counter() - q0
    finally:
        store.close()
        if server is not None:
            server.cleanup()
    print(f"wrote {rows:,.0f} readings in {total:.1f} s: {rows / total:,.0f} readings/s overall; generator "
          f"{gen_s:.1f} s ({rows / max(gen_s, 1e-9):,.0f} rows/s), store writes {write_s:.1f} s "
          f"({rows / max(write_s, 1e-9):,.0f} readings/s); {rejected} rejected")
    print(f"roll-up refresh: {rollup_s:.1f} s ({ranges} pending range(s)); coverage query by carrier {query_s:.2f} s:")
    print(check.to_string(index=False))
    coverage = json.loads(check.to_json(orient="records", date_format="iso"))
    result.update({"rows": rows, "seconds": total, "readings_per_s": rows / total, "generate_s": gen_s,
                   "write_s": write_s, "rejected": rejected, "rollup_s": rollup_s, "rollup_ranges": ranges,
                   "coverage_query_s": query_s, "coverage": coverage})
    if rejected or int(check["present"].sum()) != rows:
        raise SystemExit(f"the store holds {int(check['present'].sum()):,} readings, {rows:,.0f} were written "
                         f"and {rejected} rejected")
    _save(result, args.json)
    return result


def _save(result: dict, path: Path | None) -> None:
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=2, ensure_ascii=False, default=str) + "\n")
        print(f"written {path}")


if __name__ == "__main__":
    main()
