"""Utilisation by day in one pass (collectors.bracelet_analytics.utilisation_by_day, window_runs) is exactly the
per-day computation: `collectors.bracelet.utilisation` of each day's readings (and a gap limit before them) alone.
Hypothesis over random sample sequences (gaps, duplicates, currents around the thresholds, hysteresis, dwell,
shifts across midnight and holidays, Asia/Shanghai days), plus the demo park's synthetic currents."""

from __future__ import annotations

from datetime import date, time

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collectors import bracelet_analytics as ba
from collectors.bracelet import DEFAULT_CALENDAR, Shift, ShiftCalendar, StateParams, _ns, _samples, states
from park.model import Device

TZ = "Asia/Shanghai"
DAY0 = pd.Timestamp("2024-03-01", tz=TZ)


def device(idle: float, run: float, interval_s: int, name: str = "D1") -> Device:
    return Device(name, "E1", idle_current_a=idle, run_current_a=run, interval_s=interval_s, rated_voltage_v=380.0,
                  power_factor=0.85)


@st.composite
def readings(draw, interval_s: int, span_s: int) -> pd.DataFrame:
    """Sample times at a jittered pace with gaps (some longer than the gap limit) and duplicates, from a little
    before the first day to past the last; currents near the thresholds so hysteresis and dwell both matter."""
    n = draw(st.integers(0, 160))
    steps = draw(st.lists(st.sampled_from([0, interval_s // 2, interval_s, interval_s, interval_s, 2 * interval_s,
                                           3 * interval_s, 3 * interval_s + 1, 7 * interval_s, 3600, 5 * 3600]),
                          min_size=n, max_size=n))
    first = draw(st.integers(-3 * 3600, span_s))
    ts = DAY0 + pd.to_timedelta(first + np.cumsum(steps, dtype=np.int64), unit="s")
    values = draw(st.lists(st.sampled_from([0.0, 0.5, 0.85, 0.95, 1.0, 3.0, 4.4, 4.6, 5.0, 9.0, float("nan")]),
                           min_size=n, max_size=n))
    return pd.DataFrame({"ts": ts, "value": values})


CALENDARS = [
    DEFAULT_CALENDAR,  # 08:00-16:00 and 16:00-24:00, Monday-Saturday
    ShiftCalendar({wd: (Shift(time(22), time(6)), Shift(time(9, 30), time(17, 15))) for wd in range(7)},
                  holidays=frozenset({date(2024, 3, 2)})),  # a night shift across midnight, a holiday
    ShiftCalendar({}),  # nothing planned: utilisation NaN
    ShiftCalendar({wd: (Shift(time(8), time(16)), Shift(time(12), time(20))) for wd in range(5)}),  # overlapping
]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), days=st.integers(1, 4), interval_s=st.sampled_from([60, 300]),
       cal=st.sampled_from(CALENDARS), part=st.booleans(),
       params=st.builds(StateParams, hysteresis=st.sampled_from([0.0, 0.1, 0.3]),
                        min_dwell_s=st.sampled_from([0.0, 120.0, 600.0]),
                        gap_intervals=st.sampled_from([1.0, 3.0, 2.5])))
def test_one_pass_is_exactly_the_per_day_computation(data, days, interval_s, cal, part, params):
    d1, d2 = device(1.0, 5.0, interval_s), device(1.0, 5.0, 60, "D2")
    end = DAY0 + pd.DateOffset(days=days)
    if part:  # the last day ends before midnight (a period to the last quarter hour)
        end = end - pd.Timedelta(minutes=data.draw(st.sampled_from([15, 615, 1425])))
    span_s = int((end - DAY0).total_seconds()) + 3600
    r1, r2 = data.draw(readings(interval_s, span_s)), data.draw(readings(60, span_s))
    points = pd.concat([r1.assign(series="D1"), r2.assign(series="D2")], ignore_index=True)
    fast = ba.utilisation_by_day([d1, d2], points, DAY0, end, cal, params)
    slow = ba.utilisation_by_day_per_day([d1, d2], points, DAY0, end, cal, params)
    pd.testing.assert_frame_equal(fast, slow, check_exact=True)


@settings(max_examples=60, deadline=None)
@given(data=st.data(), interval_s=st.sampled_from([60, 300]), windows=st.integers(1, 5),
       params=st.builds(StateParams, hysteresis=st.sampled_from([0.0, 0.1]),
                        min_dwell_s=st.sampled_from([0.0, 120.0, 900.0]), gap_intervals=st.sampled_from([1.0, 3.0])))
def test_window_runs_are_the_states_of_each_window_to_the_nanosecond(data, interval_s, windows, params):
    d = device(1.0, 5.0, interval_s)
    r = data.draw(readings(interval_s, 2 * 86400))
    ts, current, _, _ = _samples(r, d, params)
    lo, hi, t0, t1 = [], [], [], []
    for _ in range(windows):  # any windows, overlapping or not, empty or not
        a = data.draw(st.integers(-4 * 3600, 2 * 86400))
        b = a + data.draw(st.integers(1, 86400))
        t0.append(_ns(DAY0) + a * 10**9)
        t1.append(_ns(DAY0) + b * 10**9)
        lo.append(data.draw(st.integers(0, len(ts))))
        hi.append(data.draw(st.integers(lo[-1], len(ts))))
    w, s, e, c, _ = ba.window_runs(ts, current, np.array(lo), np.array(hi), np.array(t0), np.array(t1), d, params)
    for k in range(windows):
        part = r.iloc[0:0] if hi[k] == lo[k] else pd.DataFrame({
            "ts": pd.to_datetime(ts[lo[k]:hi[k]], utc=True), "value": current[lo[k]:hi[k]]})
        want = states(part, d, pd.Timestamp(t0[k], tz="UTC"), pd.Timestamp(t1[k], tz="UTC"), params)
        got = list(zip(s[w == k].tolist(), e[w == k].tolist(), [ba.STATE_NAMES[i] for i in c[w == k]], strict=True))
        assert got == list(zip(want["start"].map(_ns), want["end"].map(_ns), want["state"], strict=True))


def test_devices_the_array_form_does_not_assume_take_the_per_day_way():
    odd = device(5.0, 5.0, 60)  # running and idle at the same threshold
    points = pd.DataFrame({"ts": DAY0 + pd.to_timedelta(np.arange(0, 3000, 60), unit="s"), "value": 6.0,
                           "series": "D1"})
    fast = ba.utilisation_by_day([odd], points, DAY0, DAY0 + pd.DateOffset(days=2))
    slow = ba.utilisation_by_day_per_day([odd], points, DAY0, DAY0 + pd.DateOffset(days=2))
    pd.testing.assert_frame_equal(fast, slow, check_exact=True)
    assert fast["running_h"].iloc[0] == pytest.approx(50 / 60)


@pytest.fixture(scope="module")
def demo():
    """The demo park's busiest enterprise (most bracelets): its devices and synthetic currents, 1-11 March 2024."""
    from park.parkfile import DEMO_PARK_FILE, load_park_file
    from park.synth import synth_currents

    park = load_park_file(DEMO_PARK_FILE)
    counts = pd.Series([d.enterprise for d in park.devices]).value_counts()
    devices = [d for d in park.devices if d.enterprise == counts.index[0]]
    start, end = pd.Timestamp("2024-03-01", tz=park.tz), pd.Timestamp("2024-03-11 12:00", tz=park.tz)
    points = pd.concat(list(synth_currents(park, start - ba.lead_time(devices), end, seed=2024, gap_rate=0.001)))
    return devices, points[points["series"].isin([d.id for d in devices])], start, end


def test_the_demo_parks_busiest_enterprise_is_exactly_the_per_day_computation(demo):
    devices, points, start, end = demo
    fast = ba.utilisation_by_day(devices, points, start, end)
    slow = ba.utilisation_by_day_per_day(devices, points, start, end)
    pd.testing.assert_frame_equal(fast, slow, check_exact=True)
    assert len(fast) == 11 * len(devices) and (fast["running_h"] > 0).any() and (fast["coverage"] > 0.9).all()


def test_running_in_shift_counts_every_shift_whatever_order_the_calendar_lists_them_in():
    """A night shift listed before the day shift: planned time comes out in time order, so running in the day
    shift counts (it was 0 when planned() kept the listing order and the overlap walked past it)."""
    night_first = ShiftCalendar({wd: (Shift(time(22), time(6)), Shift(time(9), time(17))) for wd in range(7)})
    d = device(1.0, 5.0, 60)
    day = pd.Timestamp("2024-03-03", tz=TZ)
    planned = night_first.planned(day, day + pd.DateOffset(days=1))
    assert planned == sorted(planned) and len(planned) == 3
    points = pd.DataFrame({"ts": day + pd.Timedelta(hours=10) + pd.to_timedelta(np.arange(0, 3600, 60), unit="s"),
                           "value": 9.0, "series": "D1"})
    u = ba.utilisation_by_day_per_day([d], points, day, day + pd.DateOffset(days=1), night_first)
    assert u["running_in_shift_h"].iloc[0] == pytest.approx(1.0) and u["overtime_h"].iloc[0] == pytest.approx(0.0)
    fast = ba.utilisation_by_day([d], points, day, day + pd.DateOffset(days=1), night_first)
    pd.testing.assert_frame_equal(fast, u, check_exact=True)


def test_the_days_week_and_the_periods_energy_are_the_per_day_figures(demo):
    """equipment_day's week (7 days ending on the day) and equipment_period's energy over the period are the
    per-day computation's: the week's rows exactly, the period's estimate the sum of the days' estimates."""
    devices, points, _, _ = demo
    day, end = pd.Timestamp("2024-03-08", tz=TZ), pd.Timestamp("2024-03-09", tz=TZ)
    metered = pd.DataFrame({"value": [100.0], "measured": [96], "expected": [96]})
    e = ba.equipment_day("E", devices, points, metered, day, end)
    pd.testing.assert_frame_equal(
        e.by_day, ba.utilisation_by_day_per_day(devices, points, day - pd.DateOffset(days=6), end), check_exact=True)
    start = pd.Timestamp("2024-03-02", tz=TZ)
    p = ba.equipment_period("E", devices, points, metered, start, end)
    slow = ba.utilisation_by_day_per_day(devices, points, start, end)
    want = slow.groupby("device", sort=False)["energy_kwh"].sum()
    assert p.energy.set_index("device")["estimated_kwh"].to_dict() == want.to_dict()
    assert p.reconciliation.reconciled_kwh == {k: v * min(1.0, 100.0 / want.sum()) for k, v in want.items()}


@pytest.mark.parametrize("day", ["2024-03-08", "2024-03-10"])  # a Friday; a Sunday: no shifts planned
def test_the_days_shifts_timeline_and_energy_are_the_per_shift_figures(demo, day):
    """equipment_day's shifts, state timeline and energy from one pass per device equal `utilisation` of each
    shift and `states` of the day, computed here from the day's readings the way they were before."""
    from collectors.bracelet import utilisation

    devices, points, _, _ = demo
    start, end = pd.Timestamp(day, tz=TZ), pd.Timestamp(day, tz=TZ) + pd.DateOffset(days=1)
    metered = pd.DataFrame({"value": [100.0], "measured": [96], "expected": [96]})
    e = ba.equipment_day("E", devices, points, metered, start, end)
    on_day = points[points["ts"] >= start - ba.lead_time(devices)]
    shifts, timeline, energy = [], [], {}
    for d in devices:
        r = on_day.loc[on_day["series"] == d.id, ["ts", "value"]]
        timeline.append(states(r, d, start, end).assign(device=d.id))
        shifts += [{"shift_start": a, "shift_end": b, **utilisation(r, d, a, b).__dict__}
                   for a, b in DEFAULT_CALENDAR.planned(start, end)]
        u = utilisation(r, d, start, end)
        energy[d.id] = (u.energy_kwh, u.coverage)
    pd.testing.assert_frame_equal(e.by_shift, pd.DataFrame(shifts), check_exact=True)
    pd.testing.assert_frame_equal(e.timeline, pd.concat(timeline, ignore_index=True)[ba.TIMELINE_COLUMNS],
                                  check_exact=True)
    got = e.energy.set_index("device")
    assert {k: (got.loc[k, "estimated_kwh"], got.loc[k, "coverage"]) for k in energy} == energy
    assert len(e.by_shift) == (0 if day == "2024-03-10" else 2 * len(devices))
