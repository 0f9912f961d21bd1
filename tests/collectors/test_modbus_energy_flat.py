"""The energy-flat check (collectors/sources/modbus.py): an energy register that does not move while the meter
draws power is a map reading the wrong address (a CHINT DTSU666 of the 0x401E kind read at 0x101E shows 0 kWh
for ever).  Its readings must never reach the pipeline as measured 0 kWh: held back, then rejected with
`register.energy_flat` and a warning that names the likely fix."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from collectors.readings import Kind, RawReading
from collectors.registermaps import load_register_map
from collectors.sources.modbus import ENERGY_FLAT, EnergyFlatCheck, EnergyFlatDetector, _likely_fix
from park.model import Meter
from park.units import Carrier

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
DTSU = load_register_map("chint-dtsu666")
METER = Meter("M1", Carrier.ELECTRICITY, "E1", "W1", model="chint-dtsu666", address="modbus://10.0.0.5/3")


def detector(register_map=DTSU, check: EnergyFlatCheck | None = None, floor_kw=1.0) -> EnergyFlatDetector:
    return EnergyFlatDetector("M1", register_map, floor_kw, check or EnergyFlatCheck(),
                              _likely_fix(METER, register_map))


def energy(minute: float, kwh: float, unit: str = "kWh") -> RawReading:
    return RawReading("M1", T0 + timedelta(minutes=minute), kwh, Kind.CUMULATIVE, measurement="energy", unit=unit,
                      source="modbus://10.0.0.5:502/3")


def test_a_register_flat_at_zero_under_load_is_held_then_rejected_with_the_fix():
    d = detector()
    first = d.step(energy(0, 0.0), 48.2)
    assert first.release == [energy(0, 0.0)] and not first.reject  # one reading says nothing yet
    for minute in range(1, 15):  # flat, 48 kW: held back, neither stored nor rejected yet
        verdict = d.step(energy(minute, 0.0), 48.2)
        assert (verdict.release, verdict.reject, verdict.warning) == ([], [], None), minute
    tripped = d.step(energy(15, 0.0), 48.2)  # 15 min and 15 polls flat: about 12 kWh should have been counted
    assert tripped.release == []
    assert tripped.reject == [energy(m, 0.0) for m in range(1, 16)]  # every held reading is quarantined
    assert tripped.warning == tripped.detail == d.warning
    assert tripped.warning == (
        "meter M1: energy register (holding 0x101E of map chint-dtsu666) flat at 0 kWh for 15 min (15 polls) "
        "while active power is 48.2 kW (about 12 kWh expected): the meter may be the holding 0x401E variant; "
        "set model: chint-dtsu666-401e for meter M1 in the park file")
    later = d.step(energy(16, 0.0), 47.0)  # still flat: rejected at once, no new warning
    assert later.reject == [energy(16, 0.0)] and later.release == [] and later.warning is None
    assert later.detail.startswith("meter M1: energy register still flat at 0 kWh (power 47 kW) since the warning")


def test_the_warning_for_the_401e_map_points_back_to_the_101e_one():
    other = load_register_map("chint-dtsu666-401e")
    assert _likely_fix(METER, other) == ("the meter may be the holding 0x101E variant; set model: chint-dtsu666 "
                                         "for meter M1 in the park file")
    assert "compare the map with the meter's manual" in _likely_fix(METER, load_register_map("generic"))


def test_a_moving_register_goes_straight_through():
    d = detector()
    for minute in range(30):
        verdict = d.step(energy(minute, 1000.0 + minute * 0.8), 48.0)
        assert verdict.release == [energy(minute, 1000.0 + minute * 0.8)] and not verdict.reject


def test_flat_without_load_or_while_exporting_is_no_suspicion():
    d = detector()
    for minute in range(60):  # a meter at rest (0.3 kW standby, under the 1 kW floor) or feeding back (-20 kW)
        verdict = d.step(energy(minute, 500.0), 0.3 if minute < 30 else -20.0)
        assert verdict.release == [energy(minute, 500.0)] and not verdict.reject and d.warning is None


def test_a_coarse_register_that_moves_late_loses_nothing_and_keeps_order():
    d = detector(load_register_map("acrel-adl400"))  # uint32 x 0.1 kWh: at 1.2 kW one step every 5 min
    d.step(energy(0, 100.0), 1.2)
    for minute in range(1, 5):
        assert d.step(energy(minute, 100.0), 1.2).release == []  # flat under load: held
    moved = d.step(energy(5, 100.1), 1.2)
    assert moved.release == [energy(m, 100.0) for m in range(1, 5)] + [energy(5, 100.1)]
    assert not moved.reject and d.warning is None


def test_a_flat_span_shorter_than_the_resolution_allows_is_not_a_fault():
    # float32 at 10 000 000 kWh moves in steps of 1 kWh: 2 kW for 15 min (0.5 kWh) need not move it, so the
    # readings are held (not stored as zeros, not rejected) until the register moves.
    d = detector()
    d.step(energy(0, 10_000_000.0), 2.0)
    for minute in range(1, 16):
        assert d.step(energy(minute, 10_000_000.0), 2.0).reject == []
    moved = d.step(energy(16, 10_000_001.0), 2.0)
    assert moved.release == [energy(m, 10_000_000.0) for m in range(1, 16)] + [energy(16, 10_000_001.0)]
    assert not moved.reject and d.warning is None


def test_the_floor_follows_the_meters_stated_maximum():
    from collectors.sources.modbus import ModbusSource
    from tests.support.modbus import RecordingSink

    big = Meter("M1", Carrier.ELECTRICITY, "E1", "W1", model="chint-dtsu666", address="modbus://10.0.0.5/3",
                max_kw=2000.0)
    source = ModbusSource([big], RecordingSink())
    floors = {m: t.flat.floor_kw for m, t in source._targets.items()}
    assert floors == {"M1": 100.0}  # 5 % of 2000 kW: a large CT's offset at no load is not taken for load
    assert ModbusSource([METER], RecordingSink())._targets["M1"].flat.floor_kw == 1.0
    assert ModbusSource([METER], RecordingSink(), flat_check=None)._targets["M1"].flat is None


def test_once_the_register_moves_again_the_warning_clears():
    d = detector(check=EnergyFlatCheck(window_s=300))
    for minute in range(6):
        d.step(energy(minute, 0.0), 30.0)
    assert d.warning is not None
    moved = d.step(energy(6, 12_345.6), 30.0)
    assert moved.release == [energy(6, 12_345.6)] and moved.cleared.startswith("meter M1: energy register moves")
    assert d.warning is None


def test_the_rule_code_is_catalogued():
    from collectors.rules import RULES

    assert RULES[ENERGY_FLAT].severity == "reject"


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([0.0, 0.0, 5.0, 7.5]), st.sampled_from([0.0, 0.5, 3.0, 60.0, -5.0])),
                max_size=60))
def test_every_reading_is_released_once_or_rejected_once_and_released_in_order(polls):
    d = detector(check=EnergyFlatCheck(window_s=240))
    released, rejected, read = [], [], []
    for minute, (kwh, kw) in enumerate(polls):
        r = energy(minute, kwh)
        read.append(r)
        verdict = d.step(r, kw)
        released += verdict.release
        rejected += verdict.reject
        assert all(x.value == r.value for x in verdict.reject)  # only flat readings are ever rejected
    pending = d.pending()
    assert sorted(released + rejected + pending, key=lambda r: r.ts) == read  # read = released + rejected + held
    assert released == sorted(released, key=lambda r: r.ts)


# ---- over the wire: a simulated DTSU666 of the 0x401E kind on a real pymodbus server ------------------------


def test_the_wrong_dtsu666_map_is_detected_and_the_right_one_reads_the_energy():
    """One physical meter (0x401E kind: 0x101E answers 0.0 for ever) configured twice: M1 with the 0x101E map,
    M2 with the 0x401E map."""
    import time

    from collectors.simulator.modbus_meters import MeterSimulator, SimulatedMeter
    from collectors.sources.modbus import ModbusSource
    from tests.support.modbus import RecordingSink

    kw = 3600.0  # 1 kWh per second, so the right register moves between polls 0.1 s apart
    meter = SimulatedMeter(1, load_register_map("chint-dtsu666-401e"), load=lambda t: kw, energy_kwh=5000.0,
                           frozen_energy_at=(DTSU,))
    sink = RecordingSink()
    with MeterSimulator([meter]) as sim:
        meters = [Meter(m, Carrier.ELECTRICITY, "E1", "W1", model=model, address=sim.address(1))
                  for m, model in (("M1", "chint-dtsu666"), ("M2", "chint-dtsu666-401e"))]
        source = ModbusSource(meters, sink, timeout_s=2.0, flat_check=EnergyFlatCheck(window_s=0.5, min_polls=3))
        try:
            for _ in range(10):
                source.poll("M1")
                source.poll("M2")
                time.sleep(0.1)
            assert source.flush() > 0
            counter = sim.energy_kwh(1)
        finally:
            source.stop()
    submitted = [r for batch in sink.batches for r in batch if r.measurement == "energy"]
    wrong = [r.value for r in submitted if r.series == "M1"]
    right = [r.value for r in submitted if r.series == "M2"]
    assert wrong == [0.0]  # only the very first reading (which says nothing alone); no 0 kWh interval possible
    rejects = sink.rejects("M1")
    assert len(rejects) == 9 and {r["code"] for r in rejects} == {ENERGY_FLAT}
    assert {r["value"] for r in rejects} == {"0.0"}
    warning = source.status()["M1"].warning
    assert warning.startswith("meter M1: energy register (holding 0x101E of map chint-dtsu666) flat at 0 kWh for ")
    assert warning.endswith("the meter may be the holding 0x401E variant; set model: chint-dtsu666-401e for meter "
                            "M1 in the park file")
    assert rejects[0]["detail"] == warning
    assert not sink.rejects("M2") and source.status()["M2"].warning is None
    assert len(right) == 10 and right == sorted(right) and len(set(right)) == 10  # moving every poll
    assert right[0] > 5000.0 and right[-1] <= counter
    power = {r.value for batch in sink.batches for r in batch if r.measurement == "power"}
    assert power == {kw}  # power goes on for both: it is read from the same registers
