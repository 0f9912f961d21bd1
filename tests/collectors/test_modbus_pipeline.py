"""End to end: simulated meters on a real pymodbus TCP server, polled by the Modbus source into the real
pipeline, spool, writer and embedded store: register readings become interval energy, across a rollover."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import pytest

from collectors.pipeline import Pipeline
from collectors.registermaps import load_register_map
from collectors.simulator.modbus_meters import MeterSimulator, SimulatedMeter
from collectors.sources.modbus import ModbusSource, meter_limits
from collectors.spool import Spool
from collectors.writer import Writer
from park.model import Meter, Park
from park.store.embedded import EmbeddedStore
from park.units import Carrier
from tests.support.modbus import wait_for

KW = 3600.0  # 1 kWh per second
INTERVAL_S = 1  # one-second intervals, so a test sees several complete within seconds


class Collector:
    """The real chain for a park: Modbus source -> pipeline -> spool -> writer -> embedded store."""

    def __init__(self, park: Park, tmp_path: Path) -> None:
        catalog = park.catalog()
        self.spool = Spool(tmp_path / "spool.db")
        self.store = EmbeddedStore(tmp_path / "ts.duckdb", catalog, park.timezone)
        self.pipeline = Pipeline(catalog, self.spool, limits=meter_limits(park.meters))
        self.source = ModbusSource(park.meters, self.pipeline, interval_s=0.1, timeout_s=2.0, batch_s=0.5)
        self.writer = Writer(self.spool, self.store)
        self.start = pd.Timestamp.now(tz="UTC") - pd.Timedelta("1min")

    def points(self, measurement: str) -> pd.DataFrame:
        """Everything stored so far (the spool drained first)."""
        self.writer.drain()
        return self.store.points(measurement, self.start, self.start + pd.Timedelta("1h"))

    def measured(self) -> dict[str, list[float]]:
        """Measured interval energies by series."""
        pts = self.points("energy")
        pts = pts[pts["quality"] == "measured"]
        return {str(s): g["value"].tolist() for s, g in pts.groupby("series", observed=True)}

    def close(self) -> None:
        self.source.stop()
        self.store.close()
        self.spool.close()


def park_of(sim: MeterSimulator, *models: str) -> Park:
    return Park("P", "Park", meters=tuple(
        Meter(f"M{unit}", Carrier.ELECTRICITY, "E1", "W1", model=model, address=sim.address(unit),
              interval_s=INTERVAL_S) for unit, model in enumerate(models, start=1)))


def test_polled_registers_become_interval_energy_in_the_store(tmp_path):
    meters = [SimulatedMeter(1, load_register_map("generic"), load=lambda t: KW, energy_kwh=1000.0),
              SimulatedMeter(2, load_register_map("chint-dtsu666"), load=lambda t: KW / 2, energy_kwh=5000.0)]
    with MeterSimulator(meters) as sim:
        collector = Collector(park_of(sim, "generic", "chint-dtsu666"), tmp_path)
        try:
            with collector.source:
                wait_for(lambda: [len(v) >= 4 for v in collector.measured().values()] == [True, True],
                         timeout_s=15, what="four measured intervals of each meter", every_s=0.5)
            measured = collector.measured()
            m1, m2 = measured["M1"], measured["M2"]
            power = {str(s): set(g["value"]) for s, g in collector.points("power").groupby("series", observed=True)}
            quarantine = collector.store.quarantined()
        finally:
            collector.close()
    # Each second holds the energy of the load.  A reading's time is the collector's estimate of when the
    # server sampled the counter, off by up to tens of ms on a loaded machine: a lot for one-second intervals,
    # so single intervals get a loose tolerance; the errors cancel between neighbours, so their mean a tight one.
    for values, kwh in ((m1, KW / 3600), (m2, KW / 7200)):
        assert values == pytest.approx([kwh] * len(values), rel=0.3)
        assert sum(values) / len(values) == pytest.approx(kwh, rel=0.05)
    assert power == {"M1": {KW}, "M2": {KW / 2}}
    assert quarantine.empty, quarantine[["series", "code", "reason"]]


def test_energy_is_exact_across_a_register_rollover(tmp_path):
    with MeterSimulator([SimulatedMeter(1, load_register_map("generic"), load=lambda t: KW)]) as sim:
        sim.rollover(1, kwh_before_wrap=1.5)  # the uint32 register wraps 1.5 s after the first reading
        collector = Collector(park_of(sim, "generic"), tmp_path)
        try:
            deadline = time.monotonic() + 15
            while len(collector.measured().get("M1", [])) < 4:  # polled by hand, 10 times a second
                assert time.monotonic() < deadline, "no four measured intervals within 15 s"
                for _ in range(3):
                    collector.source.poll("M1")
                    time.sleep(0.1)
                assert collector.source.flush() == 6, "the pipeline refused a batch: see the log"
            measured = collector.measured()["M1"]
            quarantine = collector.store.quarantined()
        finally:
            collector.close()
    assert sim.energy_kwh(1) > load_register_map("generic").energy_register_max  # the register did wrap
    assert measured == pytest.approx([KW / 3600] * len(measured), rel=0.3)
    assert sum(measured) / len(measured) == pytest.approx(KW / 3600, rel=0.05)
    assert quarantine.empty, quarantine[["series", "code", "reason"]]


def test_a_dtsu666_read_with_the_wrong_variant_map_stores_no_zero_energy(tmp_path):
    """A meter of the 0x401E kind (0x101E answers 0.0 for ever) read as M1 with chint-dtsu666 and as M2 with
    chint-dtsu666-401e: M1's flat readings are quarantined as register.energy_flat, so its coverage shows a gap
    instead of measured 0 kWh; M2 gets the load's energy."""
    from collectors.sources.modbus import ENERGY_FLAT, EnergyFlatCheck

    meter = SimulatedMeter(1, load_register_map("chint-dtsu666-401e"), load=lambda t: KW, energy_kwh=5000.0,
                           frozen_energy_at=(load_register_map("chint-dtsu666"),))
    with MeterSimulator([meter]) as sim:
        park = Park("P", "Park", meters=tuple(
            Meter(m, Carrier.ELECTRICITY, "E1", "W1", model=model, address=sim.address(1), interval_s=INTERVAL_S)
            for m, model in (("M1", "chint-dtsu666"), ("M2", "chint-dtsu666-401e"))))
        collector = Collector(park, tmp_path)
        collector.source = ModbusSource(park.meters, collector.pipeline, timeout_s=2.0,
                                        flat_check=EnergyFlatCheck(window_s=0.5, min_polls=3))
        try:
            deadline = time.monotonic() + 15
            while len(collector.measured().get("M2", [])) < 4 or len(collector.store.quarantined()) < 5:
                assert time.monotonic() < deadline, "no four intervals of M2 and five rejects of M1 within 15 s"
                for _ in range(3):
                    collector.source.poll("M1")
                    collector.source.poll("M2")
                    time.sleep(0.1)
                collector.source.flush()
            energy = collector.points("energy")
            quarantine = collector.store.quarantined()
        finally:
            collector.close()
    assert energy[energy["series"] == "M1"].empty  # not one 0 kWh interval, measured or otherwise
    m2 = energy[(energy["series"] == "M2") & (energy["quality"] == "measured")]["value"].tolist()
    assert sum(m2) / len(m2) == pytest.approx(KW / 3600, rel=0.05)
    assert set(quarantine["series"]) == {"M1"} and set(quarantine["code"]) == {ENERGY_FLAT}
    reason = quarantine["reason"].iloc[0]
    assert "flat at 0 kWh" in reason and "set model: chint-dtsu666-401e for meter M1 in the park file" in reason
