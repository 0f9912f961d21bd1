"""Forecast the benchmark park: train, choose (rolling-origin backtest) and forecast every enterprise's daily energy
from one year of history to the year end, plus the park's hourly electricity day-ahead, on both cores.

    python -m bench.forecast [--enterprises 200] [--origin 2026-07-01] [--workers 2] [--origins 3] [--per-series]

The series are the benchmark park's (bench/parkgen's generator, park.synth: one meter per enterprise, 15-minute
readings summed to days and hours in pandas; making them is not timed).  What is timed is exactly what the nightly
job does with each series (forecasting.jobs.run_tasks: forecasting.forecast.forecast_series with a month-ahead
backtest for the daily series at 3 origins, the pooled gradient-boosting model trained once per origin for all of
them, on `--workers` processes).  Prints the wall time, the time per series, which
models were chosen, their backtest MASE and coverage, and writes bench/out/forecast.json.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections import Counter

import numpy as np
import pandas as pd

from bench import OUT, machine_info, print_machine
from forecasting.jobs import ForecastSettings, Task, run_tasks
from park.synth import synth_park, synth_readings

SEED = 1


def series(n_enterprises: int, origin: pd.Timestamp, tz: str) -> tuple[dict[str, pd.Series], pd.Series, float]:
    """Daily kWh per enterprise over the year before `origin`, the park's hourly kWh over its last 8 weeks, and
    the seconds it took to make them."""
    t0 = time.perf_counter()
    park = synth_park(n_enterprises, 1, SEED)
    start = origin - pd.DateOffset(years=1)
    days: list[pd.DataFrame] = []
    hours: list[pd.Series] = []
    hourly_from = origin - pd.Timedelta(days=56)
    for frame in synth_readings(park, start, origin, SEED):
        ts = pd.DatetimeIndex(frame["ts"])
        f = pd.DataFrame({"day": ts.floor("D"), "series": frame["series"].astype(str), "value": frame["value"]})
        days.append(f.groupby(["day", "series"], observed=True)["value"].sum().reset_index())
        recent = ts >= hourly_from
        if recent.any():
            hours.append(pd.Series(frame["value"].to_numpy()[recent], index=ts[recent].floor("h")).groupby(
                level=0).sum())
    daily = pd.concat(days).groupby(["day", "series"])["value"].sum().unstack("series")
    meter_enterprise = {m.id: m.enterprise for m in park.meters}
    by_enterprise = daily.T.groupby(meter_enterprise).sum(min_count=1).T
    by_enterprise.index = pd.DatetimeIndex(by_enterprise.index)
    by_enterprise.index.freq = "D"
    hourly = pd.concat(hours).groupby(level=0).sum()
    hourly.index = pd.DatetimeIndex(hourly.index)
    hourly.index.freq = "h"
    return {e: by_enterprise[e] for e in by_enterprise.columns}, hourly, time.perf_counter() - t0


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--enterprises", type=int, default=200)
    p.add_argument("--origin", default="2026-07-01", help="first forecast day (park-local); history is the year "
                                                         "before it, the horizon runs to 31 December")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    p.add_argument("--origins", type=int, default=ForecastSettings.daily_origins,
                   help="backtest origins per daily series")
    p.add_argument("--per-series", action="store_true",
                   help="per-series gradient boosting (5 models per series and origin) instead of the pooled model")
    p.add_argument("--backtest-days", type=int, default=28)
    args = p.parse_args(argv)
    print_machine(machine_info())
    tz = "Asia/Shanghai"
    origin = pd.Timestamp(args.origin, tz=tz)
    horizon = int((pd.Timestamp(origin.year + 1, 1, 1, tz=tz) - origin) / pd.Timedelta(days=1))
    daily, hourly, make_s = series(args.enterprises, origin, tz)
    print(f"series made in {make_s:.1f} s (not timed): {len(daily)} enterprises x {len(next(iter(daily.values())))} "
          f"days, park hourly {len(hourly)} hours; horizon {horizon} days")
    cfg = ForecastSettings(workers=args.workers, daily_origins=args.origins, backtest_days=args.backtest_days)
    tasks = [Task(e, "energy_kwh", "kWh", y, horizon, min(cfg.backtest_days, horizon)) for e, y in daily.items()]
    tasks.append(Task("park", "electricity_kwh", "kWh", hourly, cfg.day_ahead_hours))
    t0 = time.perf_counter()
    outcomes = run_tasks(tasks, cfg, pooled=not args.per_series)
    wall = time.perf_counter() - t0
    ok = [o for o in outcomes if o.result is not None]
    daily_ok = [o for o in ok if o.task.subject != "park"]
    chosen = Counter(o.result.model for o in daily_ok)
    mase = [o.result.mase for o in daily_ok if o.result.mase is not None]
    vs = [o.result.backtest.score(o.result.model).mase_vs_reference for o in daily_ok
          if o.result.backtest and not o.result.fallback]
    cov80 = [o.result.backtest.score(o.result.model).coverage_80 for o in daily_ok
             if o.result.backtest and not o.result.fallback]
    park = next((o for o in ok if o.task.subject == "park"), None)
    out = {
        "machine": machine_info(), "enterprises": args.enterprises, "origin": origin.isoformat(),
        "horizon_days": horizon, "workers": cfg.workers, "origins": cfg.daily_origins,
        "backtest_days": cfg.backtest_days,
        "series": len(tasks), "failed": len(outcomes) - len(ok), "fallbacks": sum(o.result.fallback is not None
                                                                                  for o in ok),
        "pooled": not args.per_series, "wall_s": round(wall, 1), "series_per_s": round(len(tasks) / wall, 2),
        "cpu_s_per_series_median": round(float(np.median([o.seconds for o in outcomes])), 2),
        "chosen": dict(chosen), "daily_mase_median": round(float(np.median(mase)), 3) if mase else None,
        "daily_mase_vs_naive_median": round(float(np.median([v for v in vs if v is not None])), 3) if vs else None,
        "daily_coverage_80_mean": round(float(np.mean([c for c in cov80 if c is not None])), 3) if cov80 else None,
        "park_hourly": {"model": park.result.model, "mase": park.result.mase} if park else None,
        "goal_s": 60, "goal_met": wall < 60,
    }
    print(json.dumps(out, indent=2, ensure_ascii=False))
    OUT.mkdir(exist_ok=True)
    (OUT / "forecast.json").write_text(json.dumps(out, indent=2, ensure_ascii=False), encoding="utf-8")
    return out


if __name__ == "__main__":
    main()
