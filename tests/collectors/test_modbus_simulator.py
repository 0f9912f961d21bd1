"""The Modbus meter simulator: counters that follow a load shape, read over real TCP, and injectable faults."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from collectors.registermaps import load_register_map
from collectors.simulator.modbus_meters import (
    MeterSimulator,
    RegisterServer,
    SimulatedMeter,
    daily_shape,
    main,
    series_shape,
    serve_park,
    simulated_meters,
    steel_shape,
)
from collectors.sources.modbus import READ_ERROR, ModbusSource
from park.model import Meter, Park
from park.parkfile import load_park_file
from park.units import Carrier
from tests.support.modbus import RecordingSink
from tests.support.servers import free_port

DEMO_PARK = Path(__file__).parents[2] / "park" / "data" / "demo_park.yaml"

T0 = datetime(2024, 3, 4, 0, 0, tzinfo=UTC)  # a Monday


class FakeClock:
    """The simulator's clock, moved by the test."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def generic(unit: int = 1, **kw) -> SimulatedMeter:
    return SimulatedMeter(unit, load_register_map("generic"), **kw)


def poll_energy(sim: MeterSimulator, unit: int, model: str = "generic", timeout_s: float = 2.0,
                sink: RecordingSink | None = None) -> float | None:
    """The energy register as the Modbus source reads it over TCP (None when the read failed)."""
    source = ModbusSource([Meter("M", Carrier.ELECTRICITY, "E1", model=model, address=sim.address(unit))],
                          sink or RecordingSink(), timeout_s=timeout_s)
    readings = source.poll("M")
    source.stop()
    return readings[0].value if readings else None


def test_the_counter_integrates_the_load_shape():
    clock = FakeClock()
    with MeterSimulator([generic(load=lambda t: 120.0, energy_kwh=1000.0)], clock=clock) as sim:
        assert poll_energy(sim, 1) == 1000.0
        clock.advance(minutes=30)
        assert poll_energy(sim, 1) == 1060.0  # 120 kW for half an hour
        clock.advance(seconds=90)
        assert poll_energy(sim, 1) == 1063.0


def test_a_series_load_shape_is_a_repeating_step_function():
    kw = pd.Series([100.0, 40.0, 10.0], index=pd.date_range(T0, periods=3, freq="15min"))
    shape = series_shape(kw)
    assert [shape(T0 + timedelta(minutes=m)) for m in (0, 14, 15, 44, 45, 60)] == [100, 100, 40, 10, 100, 40]
    clock = FakeClock()
    with MeterSimulator([generic(load=kw)], clock=clock) as sim:  # a Series is accepted as the load
        clock.advance(minutes=45)
        assert poll_energy(sim, 1) == 37.5  # (100 + 40 + 10) kW x 0.25 h


def test_series_shapes_need_an_aware_increasing_index():
    with pytest.raises(ValueError, match="timezone-aware"):
        series_shape(pd.Series([1.0, 2.0], index=pd.date_range("2024-01-01", periods=2, freq="h")))
    with pytest.raises(ValueError, match="strictly increasing"):
        series_shape(pd.Series([1.0], index=pd.date_range(T0, periods=1, freq="h")))


def test_the_default_shape_is_the_steel_plants_load_repeating_every_52_weeks():
    synth = pytest.importorskip("park.synth")
    shape = steel_shape()
    profile = synth.load_steel_profile()
    monday_9am = pd.Timestamp("2018-01-08 09:00", tz="Asia/Shanghai")
    assert shape(monday_9am) == profile[monday_9am] * 4  # kWh per 15 min -> kW
    assert shape(monday_9am + pd.Timedelta(weeks=52)) == shape(monday_9am)  # still a Monday 09:00
    assert steel_shape(scale=2.0)(monday_9am) == 2 * shape(monday_9am)


def test_the_daily_fallback_shape():
    shape = daily_shape(base_kw=40, peak_kw=110)
    local = lambda text: pd.Timestamp(text, tz="Asia/Shanghai")  # noqa: E731
    assert shape(local("2024-03-04 09:00")) == 110  # Monday morning
    assert shape(local("2024-03-04 12:30")) == 75  # lunch
    assert shape(local("2024-03-04 22:00")) == 40  # night
    assert shape(local("2024-03-09 10:00")) == 75  # Saturday
    assert shape(local("2024-03-10 10:00")) == 40  # Sunday


def test_a_killed_meter_times_out_and_a_revived_one_answers():
    sink = RecordingSink()
    with MeterSimulator([generic(1, load=lambda t: 10.0), generic(2, load=lambda t: 10.0)]) as sim:
        sim.kill(1)
        assert poll_energy(sim, 1, timeout_s=0.3, sink=sink) is None
        assert poll_energy(sim, 2) is not None  # the other unit on the same server still answers
        sim.revive(1)
        assert poll_energy(sim, 1) is not None
    [reject] = sink.rejected
    assert reject["code"] == READ_ERROR and "No response received" in reject["detail"]


def test_a_reset_puts_the_counter_back_to_zero():
    clock = FakeClock()
    with MeterSimulator([generic(load=lambda t: 60.0, energy_kwh=500.0)], clock=clock) as sim:
        clock.advance(minutes=10)
        assert poll_energy(sim, 1) == 510.0
        sim.reset(1)
        clock.advance(minutes=5)
        assert poll_energy(sim, 1) == 5.0


def test_a_rollover_wraps_the_register_at_its_maximum():
    clock = FakeClock()
    with MeterSimulator([generic(load=lambda t: 60.0)], clock=clock) as sim:
        sim.rollover(1, kwh_before_wrap=2.0)
        assert poll_energy(sim, 1) == 42949672.96 - 2.0
        clock.advance(minutes=3)  # 3 kWh later the uint32 (0.01 kWh) register has wrapped
        assert poll_energy(sim, 1) == 1.0
        assert sim.energy_kwh(1) == pytest.approx(42949672.96 + 1.0)


def test_float32_registers_do_not_roll_over():
    with MeterSimulator([SimulatedMeter(1, load_register_map("chint-dtsu666"))]) as sim, \
            pytest.raises(ValueError, match="float32, which does not roll over"):
        sim.rollover(1)


def test_a_spike_shows_once():
    clock = FakeClock()
    with MeterSimulator([generic(load=lambda t: 60.0, energy_kwh=100.0)], clock=clock) as sim:
        sim.spike(1, 5000.0)
        assert poll_energy(sim, 1) == 5100.0
        clock.advance(minutes=1)
        assert poll_energy(sim, 1) == 101.0


def test_energy_in_another_unit_follows_the_map(tmp_path):
    text = (load_register_map("generic").path.read_text(encoding="utf-8")
            .replace('name = "generic"', 'name = "generic-wh"').replace('scale = 0.01\nunit = "kWh"',
                                                                        'scale = 10\nunit = "Wh"'))
    path = tmp_path / "generic-wh.toml"
    path.write_text(text, encoding="utf-8")
    clock = FakeClock()
    with MeterSimulator([SimulatedMeter(1, load_register_map(path), load=lambda t: 6.0)], clock=clock) as sim:
        clock.advance(hours=1)
        assert poll_energy(sim, 1, model=str(path)) == 6000.0  # Wh


def test_simulated_meters_for_a_parks_modbus_meters_are_reproducible():
    meters = [Meter("E1-M1", Carrier.ELECTRICITY, "E1", model="generic", address="modbus://127.0.0.1:5020/1"),
              Meter("E1-M2", Carrier.ELECTRICITY, "E1", model="chint-dtsu666", address="modbus://127.0.0.1:5020/2")]
    first, again = simulated_meters(meters, seed=3), simulated_meters(meters, seed=3)
    assert [(m.unit, m.register_map.name) for m in first] == [(1, "generic"), (2, "chint-dtsu666")]
    assert [m.energy_kwh for m in first] == [m.energy_kwh for m in again]
    assert first[0].load(T0) == again[0].load(T0) > 0
    with pytest.raises(ValueError, match="meter X: a simulated Modbus meter needs an address and a model"):
        simulated_meters([Meter("X", Carrier.ELECTRICITY, "E1")])


def test_the_register_server_refuses_what_it_cannot_serve():
    with pytest.raises(ValueError, match="unit id 248 is outside 1..247"):
        RegisterServer({248: {}})
    with pytest.raises(ValueError, match="unit id 3 is given to two simulated meters"):
        MeterSimulator([generic(3), generic(3)])
    with RegisterServer({1: {"holding": {10: 1}}}) as server:
        with pytest.raises(KeyError, match=r"unit 1 does not serve holding address\(es\) \[11\]"):
            server.set_words(1, "holding", {11: 5})
        server.set_words(1, "holding", {10: 7})
        assert server.words(1, "holding", 10, 1) == [7]


def test_the_demo_parks_meters_can_be_simulated_and_polled():
    park = load_park_file(DEMO_PARK)
    modbus = [m for m in park.meters if m.address and m.address.startswith("modbus://")]
    assert len(modbus) >= 20
    sink = RecordingSink()
    with MeterSimulator(simulated_meters(modbus)) as sim:  # on a free port rather than the demo's 5020
        meters = [replace(m, address=sim.address(int(m.address.rsplit("/", 1)[1]))) for m in modbus]
        source = ModbusSource(meters, sink, timeout_s=2.0)
        for m in meters:
            energy, power = source.poll(m.id)
            assert energy.value > 0 and power.value >= 0
        source.stop()
    assert not sink.rejected


def test_serve_park_serves_each_host_and_port_its_meters_name():
    port = free_port()
    park = Park("P", "Park", meters=(
        Meter("A", Carrier.ELECTRICITY, "E1", model="generic", address=f"modbus://127.0.0.1:{port}/1"),
        Meter("B", Carrier.ELECTRICITY, "E1", model="chint-dtsu666", address=f"modbus://127.0.0.1:{port}/2"),
        Meter("C", Carrier.ELECTRICITY, "E1")))  # not a Modbus meter: left alone
    simulators = serve_park(park)
    try:
        assert [s.port for s in simulators] == [port]
        source = ModbusSource(park.meters[:2], RecordingSink(), timeout_s=2.0)
        assert [len(source.poll(m)) for m in ("A", "B")] == [2, 2]
        source.stop()
    finally:
        for sim in simulators:
            sim.stop()


def test_the_command_line_needs_a_park_with_modbus_meters(tmp_path, capsys):
    path = tmp_path / "park.yaml"
    path.write_text("park:\n  id: P\n  name: Park\n", encoding="utf-8")
    with pytest.raises(SystemExit) as exit_:
        main([str(path)])
    assert exit_.value.code == 1
    assert "no meter has a modbus:// address and a model" in capsys.readouterr().err


def test_a_dtsu666_of_the_401e_kind_serves_a_frozen_101e_register():
    clock = FakeClock()
    meter = SimulatedMeter(1, load_register_map("chint-dtsu666-401e"), load=lambda t: 60.0, energy_kwh=250.0,
                           frozen_energy_at=(load_register_map("chint-dtsu666"),))
    with MeterSimulator([meter], clock=clock) as sim:
        assert poll_energy(sim, 1, "chint-dtsu666-401e") == 250.0
        assert poll_energy(sim, 1, "chint-dtsu666") == 0.0
        clock.advance(minutes=30)
        assert poll_energy(sim, 1, "chint-dtsu666-401e") == 280.0  # 60 kW for half an hour
        assert poll_energy(sim, 1, "chint-dtsu666") == 0.0  # never moves


def test_a_frozen_register_may_not_overlap_the_meters_own():
    with pytest.raises(ValueError, match="the chint-dtsu666 energy register .holding 0x101E. overlaps"):
        SimulatedMeter(1, load_register_map("chint-dtsu666"), frozen_energy_at=(load_register_map("chint-dtsu666"),))
