"""`parkcarbon collect`'s service: sources, pipeline, spool and writer under one scheduler, on real parts."""

from __future__ import annotations

import logging
import time

import pandas as pd
import pytest

from collectors.registermaps import load_register_map
from collectors.service import CollectConfigError, CollectorService
from collectors.simulator.modbus_meters import MeterSimulator, SimulatedMeter
from park.model import Enterprise, Meter, Park
from park.store.embedded import EmbeddedStore
from park.units import Carrier

TZ = "Asia/Shanghai"


def test_the_service_polls_modbus_meters_into_the_store_and_drains_on_stop(tmp_path):
    sim = MeterSimulator([SimulatedMeter(1, load_register_map("generic"), load=lambda t: 40.0),
                          SimulatedMeter(2, load_register_map("chint-dtsu666"), load=lambda t: 20.0)]).start()
    try:
        park = Park(id="p", name="测试", enterprises=(Enterprise("E1", "甲"),), meters=(
            Meter("M1", Carrier.ELECTRICITY, "E1", model="generic", address=sim.address(1)),
            Meter("M2", Carrier.ELECTRICITY, "E1", model="chint-dtsu666", address=sim.address(2)),
            Meter("GAS", Carrier.NATURAL_GAS, "E1")))  # not a Modbus meter: not polled
        store = EmbeddedStore(tmp_path / "ts.duckdb", park.catalog(), TZ)
        service = CollectorService(park, store, tmp_path / "spool.db",
                                   {"modbus": {"interval_s": 0.2, "timeout_s": 1, "batch_s": 0.2}},
                                   writer_interval_s=0.2).start()
        try:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                power = store.latest("power")
                if set(power["series"]) == {"M1", "M2"}:
                    break
                time.sleep(0.1)
        finally:
            service.stop()
        power = store.latest("power").set_index("series")
        assert power.loc["M1", "value"] == pytest.approx(40.0, rel=0.01)
        assert power.loc["M2", "value"] == pytest.approx(20.0, rel=0.01)
        assert (pd.Timestamp.now(tz="UTC") - power["ts"].max()).total_seconds() < 30
        assert service.spool.path.exists() and len(service.sources) == 1
        store.close()
    finally:
        sim.stop()


def test_an_unknown_collect_table_is_refused(tmp_path):
    park = Park(id="p", name="测试")
    store = EmbeddedStore(tmp_path / "ts.duckdb", park.catalog(), TZ)
    with pytest.raises(CollectConfigError, match="modbsu"):
        CollectorService(park, store, tmp_path / "spool.db", {"modbsu": {}})
    store.close()


def test_the_service_derives_every_meters_limits_and_logs_the_pipelines_findings(tmp_path, caplog):
    from collectors.readings import Kind, RawReading

    park = Park(id="p", name="测试", enterprises=(Enterprise("E1", "甲"),), meters=(
        Meter("M1", Carrier.ELECTRICITY, "E1", model="generic", address="modbus://127.0.0.1:1502/1",
              transformer_kva=250.0),
        Meter("W1", Carrier.WATER, "E1", register_max=100_000.0)))
    store = EmbeddedStore(tmp_path / "ts.duckdb", park.catalog(), TZ)
    service = CollectorService(park, store, tmp_path / "spool.db")  # built, not started
    assert service.pipeline.limits["M1"].max_per_h == 500.0  # 2 x 250 kVA
    assert service.pipeline.limits["M1"].register_max == 2 ** 32 * 0.01  # from the generic register map
    assert service.pipeline.limits["M1"].register_source.startswith("register map generic")
    assert service.pipeline.limits["M1"].resolution == 0.01  # the register's least step, in kWh
    assert service.pipeline.limits["W1"].register_max == 100_000.0
    t0 = pd.Timestamp("2024-03-01", tz=TZ)

    def reading(series, minutes, value):
        return RawReading(series, t0 + pd.Timedelta(minutes=minutes), value, Kind.CUMULATIVE, source="test")

    with caplog.at_level("INFO", logger="collectors.service"):
        service.pipeline.submit([reading("M1", 0, 1000.0), reading("M1", 15, 1005.0),
                                 reading("M1", 30, 100_500.0), reading("M1", 45, 1015.0), reading("M1", 45, 1015.0),
                                 reading("W1", 0, 99_990.0), reading("W1", 15, 5.0)])
    logged = [r.getMessage() for r in caplog.records]
    assert any("M1" in m and "reading.spike" in m and "2 x transformer_kva 250" in m for m in logged), logged
    assert any("W1" in m and "meter.rollover" in m and "register size in the park file" in m for m in logged)
    assert any(r.levelname == "INFO" and "reading.duplicate" in r.getMessage() for r in caplog.records)
    service.spool.close()
    store.close()


def test_only_the_busy_store_writer_warning_of_the_scheduler_is_dropped(caplog):
    """Under load a drain outlasts the writer's 0.5 s tick and APScheduler warns at every tick (hundreds of lines a
    minute in bench.mqtt_load); that one warning is dropped, the same warning of any other job is kept."""
    import collectors.service  # noqa: F401  (installs the filter)

    sched = logging.getLogger("apscheduler.scheduler")
    with caplog.at_level(logging.WARNING, logger="apscheduler.scheduler"):
        sched.warning('Execution of job "%s" skipped: maximum number of running instances reached (%d)',
                      "CollectorService._drain_if_due (trigger: interval[0:00:00.500000])", 1)
        sched.warning('Execution of job "%s" skipped: maximum number of running instances reached (%d)',
                      "InfluxStore.refresh_rollups (trigger: interval[0:01:00])", 1)
        sched.warning("Run time of job %s was missed by %s", "CollectorService._drain_if_due", "0:00:03")
    kept = [r.getMessage() for r in caplog.records]
    assert len(kept) == 2 and "refresh_rollups" in kept[0] and "was missed" in kept[1]
