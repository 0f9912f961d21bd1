"""One small park with three months of readings, its quota plans, and the nightly forecasting job run once on it
through the jobs process's own JobContext (park/jobs.py; session-scoped: training takes tens of seconds), for the
job, cache, page and warning tests."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd
import pytest

from carbon import records
from carbon.quota import QuotaPlan
from park.jobs import JobContext
from park.metadata import create_engine_from_url, import_park
from park.model import Enterprise, Meter, Park
from park.settings import Settings
from park.store.embedded import EmbeddedStore
from park.synth import synth_park, synth_readings
from park.units import Carrier

TZ = "Asia/Shanghai"
START = pd.Timestamp("2026-08-01", tz=TZ)
ORIGIN = pd.Timestamp("2026-11-01", tz=TZ)  # the run is due at 02:30 local on 1 November: history before midnight
SCHEDULED = pd.Timestamp("2026-11-01 02:30", tz=TZ).tz_convert("UTC")
ALLOWANCES = {"E0001": 1.0, "E0002": 1.0e6}  # E0001 heads for a deficit, E0002 does not
SETTINGS = {"origins": 2, "daily_origins": 2, "workers": 1, "hourly_history_days": 21, "backtest_days": 14,
            "anomaly_days": 7}


@dataclass
class JobRun:
    ctx: JobContext
    park: Park
    summary: str


def job_park() -> Park:
    """Two synthetic enterprises, plus E9 whose meter reads zero all the time and E8 whose meter never reported."""
    base = synth_park(2, 2, seed=1, park_id="p")
    extra_e = (Enterprise("E9", "零公司", "Zero Co."), Enterprise("E8", "无数公司", "Silent Co."))
    extra_m = (Meter("E9-M1", Carrier.ELECTRICITY, "E9"), Meter("E8-M1", Carrier.ELECTRICITY, "E8"))
    return replace(base, enterprises=base.enterprises + extra_e, meters=base.meters + extra_m)


def build(tmp: Path) -> JobContext:
    park = job_park()
    engine = create_engine_from_url(f"sqlite:///{tmp / 'meta.db'}")
    import_park(engine, park)
    store = EmbeddedStore(tmp / "ts.duckdb", park.catalog(), TZ)
    synthetic = replace(park, enterprises=park.enterprises[:2], meters=park.meters[:-2])
    for frame in synth_readings(synthetic, START, ORIGIN, seed=1):
        store.write("energy", frame)
    ts = pd.date_range(START, ORIGIN, freq="15min", inclusive="left")
    store.write("energy", pd.DataFrame({"ts": ts, "series": "E9-M1", "value": 0.0}))
    for e, allowances in ALLOWANCES.items():
        records.record_quota_plan(engine, "p", QuotaPlan.absolute(e, 2026, allowances), actor="test")
        records.record_movement(engine, "p", e, 2026, "allocation", allowances, actor="test")
    return JobContext(Settings(data_dir=tmp, forecast=dict(SETTINGS)), engine, SCHEDULED.to_pydatetime(),
                      (SCHEDULED + pd.Timedelta("3min")).to_pydatetime(), job_id="forecast.nightly", park=park,
                      store=store)


@pytest.fixture(scope="session")
def job_run(tmp_path_factory) -> JobRun:
    from forecasting.jobs import run

    ctx = build(tmp_path_factory.mktemp("forecast-job"))
    summary = run(ctx)
    yield JobRun(ctx, ctx.park, summary)
    ctx.store.close()
