"""Bracelets become utilisation: the worked examples of docs/bracelets.md, number for number."""

from __future__ import annotations

import math
from datetime import date, time

import pandas as pd
import pytest

from collectors.bracelet import (
    DEFAULT_CALENDAR,
    Shift,
    ShiftCalendar,
    StateParams,
    estimated_energy_kwh,
    reconcile,
    states,
    utilisation,
    utilisation_table,
)
from park.model import Device

TZ = "Asia/Shanghai"
# idle from 1 A, running from 5 A; with the default 10 % hysteresis running is left below 4.5 A, idle below 0.9 A
MACHINE = Device("D1", "E001", idle_current_a=1.0, run_current_a=5.0, interval_s=60, rated_voltage_v=380.0,
                 power_factor=0.85)


def at(hhmm: str, day: str = "2024-03-01") -> pd.Timestamp:
    return pd.Timestamp(f"{day} {hhmm}", tz=TZ)


def readings(first: str, currents: list[float], step_s: int = 60) -> pd.DataFrame:
    """One reading every `step_s` seconds from `first` (park-local, 2024-03-01)."""
    return pd.DataFrame({"ts": [at(first) + pd.Timedelta(seconds=step_s * i) for i in range(len(currents))],
                         "value": currents})


def runs(frame: pd.DataFrame) -> list[tuple[str, str, str]]:
    return [(r.start.strftime("%H:%M:%S"), r.end.strftime("%H:%M:%S"), r.state) for r in frame.itertuples()]


CHATTER = [6.0, 4.8, 5.2, 4.6, 6.0, 4.4, 4.4, 4.4]  # 08:00 .. 08:07, hovering around the 5 A threshold


def test_hysteresis_suppresses_chatter_around_the_run_threshold():
    got = states(readings("08:00", CHATTER), MACHINE, at("08:00"), at("08:08"), StateParams(min_dwell_s=0))
    assert runs(got) == [("08:00:00", "08:05:00", "running"), ("08:05:00", "08:08:00", "idle")]
    assert got["seconds"].tolist() == [300.0, 180.0]


def test_without_hysteresis_the_same_current_chatters():
    got = states(readings("08:00", CHATTER), MACHINE, at("08:00"), at("08:08"),
                 StateParams(hysteresis=0.0, min_dwell_s=0))
    assert got["state"].tolist() == ["running", "idle", "running", "idle", "running", "idle"]


def test_a_state_shorter_than_the_minimum_dwell_merges_into_the_one_before():
    # 10 min at 8 A, one reading of 0.5 A (a one-minute "off"), 10 min at 8 A, 5 min at 2 A
    data = readings("08:00", [8.0] * 10 + [0.5] + [8.0] * 10 + [2.0] * 5)
    merged = states(data, MACHINE, at("08:00"), at("08:26"), StateParams(min_dwell_s=120))
    assert runs(merged) == [("08:00:00", "08:21:00", "running"), ("08:21:00", "08:26:00", "idle")]
    assert merged["seconds"].tolist() == [1260.0, 300.0]
    raw = states(data, MACHINE, at("08:00"), at("08:26"), StateParams(min_dwell_s=0))
    assert raw["state"].tolist() == ["running", "off", "running", "idle"]
    assert raw["seconds"].tolist() == [600.0, 60.0, 600.0, 300.0]


def test_a_gap_of_more_than_three_intervals_is_unknown_not_off():
    data = pd.concat([readings("08:00", [8.0] * 10), readings("08:20", [8.0] * 10)])
    got = states(data, MACHINE, at("08:00"), at("08:30"))
    assert runs(got) == [("08:00:00", "08:10:00", "running"), ("08:10:00", "08:20:00", "unknown"),
                         ("08:20:00", "08:30:00", "running")]
    u = utilisation(data, MACHINE, at("08:00"), at("08:30"))
    assert (u.running_h, u.unknown_h, u.off_h) == (pytest.approx(1 / 3), pytest.approx(1 / 6), 0.0)
    assert u.coverage == pytest.approx(2 / 3)


def test_three_intervals_without_a_reading_is_still_known_and_a_second_more_is_not():
    exactly = readings("08:00", [8.0, 8.0], step_s=180)
    assert runs(states(exactly, MACHINE, at("08:00"), at("08:04"))) == [("08:00:00", "08:04:00", "running")]
    beyond = readings("08:00", [8.0, 8.0], step_s=181)
    assert runs(states(beyond, MACHINE, at("08:00"), at("08:04:01"))) == [
        ("08:00:00", "08:01:00", "running"), ("08:01:00", "08:03:01", "unknown"), ("08:03:01", "08:04:01", "running")]


def test_after_a_gap_the_state_starts_afresh_from_the_entry_thresholds():
    # 4.8 A keeps a running machine running (above 4.5 A) but does not make a machine of unknown state run.
    data = pd.concat([readings("08:00", [8.0] * 5), readings("08:10", [4.8] * 5)])
    assert states(data, MACHINE, at("08:00"), at("08:15"))["state"].tolist() == ["running", "unknown", "idle"]
    joined = readings("08:00", [8.0] * 5 + [4.8] * 5)
    assert states(joined, MACHINE, at("08:00"), at("08:10"))["state"].tolist() == ["running"]


def test_readings_before_the_period_make_its_first_moments_known():
    data = readings("07:58", [8.0] * 5)  # 07:58 .. 08:02
    assert runs(states(data, MACHINE, at("08:00"), at("08:03"))) == [("08:00:00", "08:03:00", "running")]
    assert runs(states(data.iloc[2:], MACHINE, at("07:59:30"), at("08:03"))) == [
        ("07:59:30", "08:00:00", "unknown"), ("08:00:00", "08:03:00", "running")]


def test_estimated_energy_is_sqrt3_v_i_pf_t():
    one_hour_at_10a = readings("08:00", [10.0] * 60)
    # sqrt(3) x 380 V x 10 A x 0.85 x 1 h = 5594.524 Wh
    assert estimated_energy_kwh(one_hour_at_10a, MACHINE, at("08:00"), at("09:00")) == pytest.approx(
        5.594524108447474, rel=1e-12)
    # only the time inside the period counts, and unknown time adds nothing
    assert estimated_energy_kwh(one_hour_at_10a, MACHINE, at("08:30"), at("10:00")) == pytest.approx(
        5.594524108447474 / 2, rel=1e-12)
    gap = pd.concat([readings("08:00", [8.0] * 10), readings("08:20", [8.0] * 10)])  # 20 known minutes at 8 A
    assert estimated_energy_kwh(gap, MACHINE, at("08:00"), at("08:30")) == pytest.approx(
        math.sqrt(3) * 380 * 8 * 0.85 * (20 / 60) / 1000, rel=1e-12)


def three_days(machine: Device) -> pd.DataFrame:
    """Fri 2024-03-01 .. Sun 03-03, every 5 min: 8 A Fri 08:00-20:00 and Sat 09:00-11:00, else 0 A."""
    ts = pd.date_range(at("00:00"), at("00:00", "2024-03-04"), freq="300s", inclusive="left")
    on = ((ts.day == 1) & (ts.hour >= 8) & (ts.hour < 20)) | ((ts.day == 2) & (ts.hour >= 9) & (ts.hour < 11))
    return pd.DataFrame({"ts": ts, "value": [8.0 if x else 0.0 for x in on]})


def test_utilisation_against_the_shift_calendar_and_a_holiday():
    machine = Device("D5", "E001", interval_s=300)
    data, start, end = three_days(machine), at("00:00"), at("00:00", "2024-03-04")
    # Default calendar: two shifts 08:00-24:00 Mon-Sat: Fri 16 h + Sat 16 h planned, Sunday none.
    u = utilisation(data, machine, start, end, DEFAULT_CALENDAR)
    assert (u.running_h, u.off_h, u.idle_h, u.unknown_h) == (14.0, 58.0, 0.0, 0.0)
    assert (u.planned_h, u.running_in_shift_h, u.overtime_h) == (32.0, 14.0, 0.0)
    assert u.utilisation == pytest.approx(14 / 32)  # 0.4375
    assert u.running_share == pytest.approx(14 / 72)
    assert u.coverage == 1.0
    assert u.energy_kwh == pytest.approx(math.sqrt(3) * 380 * 8 * 0.85 * 14 / 1000)  # 62.659 kWh
    # Saturday made a holiday: 16 h planned, and Saturday's 2 running hours become overtime.
    holiday = ShiftCalendar(DEFAULT_CALENDAR.weekly, holidays=frozenset({date(2024, 3, 2)}))
    h = utilisation(data, machine, start, end, holiday)
    assert (h.planned_h, h.running_in_shift_h, h.overtime_h) == (16.0, 12.0, 2.0)
    assert h.utilisation == 0.75
    sunday = utilisation(data, machine, at("00:00", "2024-03-03"), end, holiday)
    assert math.isnan(sunday.utilisation) and sunday.running_share == 0.0


def test_shift_calendar_overnight_shifts_and_holidays():
    night = ShiftCalendar({0: (Shift(time(22), time(6)),), 1: (Shift(time(8), time(0)),)},
                          holidays=frozenset({date(2024, 3, 5)}))
    # Mon 2024-03-04 22:00 - Tue 06:00; Tue 03-05 is a holiday; the Monday night shift still counts.
    got = night.planned(at("00:00", "2024-03-04"), at("00:00", "2024-03-06"))
    assert got == [(at("22:00", "2024-03-04"), at("06:00", "2024-03-05"))]
    # A period starting mid-shift keeps the shift's remainder, including a shift begun the day before.
    assert night.planned(at("02:00", "2024-03-05"), at("12:00", "2024-03-05")) == [
        (at("02:00", "2024-03-05"), at("06:00", "2024-03-05"))]
    assert DEFAULT_CALENDAR.planned_hours(at("00:00", "2024-03-04"), at("00:00", "2024-03-11")) == 96.0


def test_utilisation_table_reads_store_points_and_a_silent_device_is_unknown():
    silent = Device("D2", "E001")
    points = readings("08:00", [8.0] * 60).assign(series="D1", quality="measured")
    table = utilisation_table(points, [MACHINE, silent], at("08:00"), at("09:00"))
    assert table["device"].tolist() == ["D1", "D2"]
    assert table["running_h"].tolist() == [1.0, 0.0]
    assert table["unknown_h"].tolist() == [0.0, 1.0]
    assert table["coverage"].tolist() == [1.0, 0.0]
    assert table["utilisation"].tolist() == [1.0, 0.0]  # Friday 08:00-09:00 is planned


def test_reconciliation_scales_estimates_down_to_the_meter():
    over = reconcile({"D1": 60.0, "D2": 40.0}, metered_kwh=80.0)
    assert (over.estimated_kwh, over.ratio, over.scale) == (100.0, 1.25, 0.8)
    assert over.factors == {"D1": 0.8, "D2": 0.8}
    assert over.reconciled_kwh == pytest.approx({"D1": 48.0, "D2": 32.0})
    assert over.unattributed_kwh == pytest.approx(0.0)

    under = reconcile({"D1": 30.0, "D2": 20.0}, metered_kwh=80.0)  # the rest is lighting, HVAC, other machines
    assert (under.ratio, under.scale, under.factors, under.unattributed_kwh) == (0.625, 1.0, {"D1": 1.0, "D2": 1.0},
                                                                                  30.0)


def test_reconciliation_applies_calibration_factors_before_the_meter_cap():
    got = reconcile({"D1": 60.0, "D2": 40.0}, metered_kwh=100.0, calibration={"D1": 1.5})
    assert got.estimated_kwh == 130.0 and got.ratio == 1.3
    assert got.scale == pytest.approx(100 / 130)
    assert got.factors == pytest.approx({"D1": 1.5 * 100 / 130, "D2": 100 / 130})
    assert sum(got.reconciled_kwh.values()) == pytest.approx(100.0)
    with pytest.raises(ValueError, match="metered electricity nan kWh"):
        reconcile({"D1": 1.0}, metered_kwh=float("nan"))


# ---- bracelet analytics of an enterprise (collectors.bracelet_analytics) -----------------------------------------
def test_device_status_says_silent_and_never_and_the_state_at_the_last_reading():
    from collectors.bracelet_analytics import device_status

    quiet = Device("D2", "E001", idle_current_a=1.0, run_current_a=5.0, interval_s=60)
    never = Device("D3", "E001", interval_s=60)
    now = at("09:00")
    latest = pd.DataFrame({"series": ["D1", "D2"], "ts": [at("08:59"), at("08:50")], "value": [6.0, 0.5]})
    recent = readings("08:00", [6.0] * 60).assign(series="D1")
    s = device_status(latest, recent, [MACHINE, quiet, never], now).set_index("device")
    assert s.loc["D1", "state"] == "running" and not s.loc["D1", "silent"] and s.loc["D1", "current_a"] == 6.0
    assert s.loc["D2", "silent"] and s.loc["D2", "state"] == "unknown" and s.loc["D2", "silent_min"] == 10
    assert s.loc["D3", "silent"] and pd.isna(s.loc["D3", "last_seen"]) and math.isnan(s.loc["D3", "silent_min"])


def test_equipment_day_reconciles_the_estimate_with_the_meter():
    from collectors.bracelet_analytics import equipment_day

    # 8 A from 08:00 to 16:00 (480 readings): 4.475 kW x 8 h = 35.8 kWh; the meter says 30 kWh for the day
    points = readings("08:00", [8.0] * 480).assign(series="D1")
    metered = pd.DataFrame({"value": [30.0], "measured": [96], "expected": [96]})
    start = at("00:00")
    e = equipment_day("E001", [MACHINE], points, metered, start, start + pd.Timedelta("1D"))
    kw = math.sqrt(3) * 380.0 * 8.0 * 0.85 / 1000
    row = e.energy.iloc[0]
    assert row["estimated_kwh"] == pytest.approx(kw * 8) and e.has_readings and e.metered_kwh == 30.0
    assert e.reconciliation.scale == pytest.approx(30.0 / (kw * 8))  # the estimate exceeds the meter: scaled down
    assert row["reconciled_kwh"] == pytest.approx(30.0) and e.metered_coverage == 1.0
    assert len(e.by_day) == 7 and e.by_day["day"].iloc[-1] == start  # the week ending on this day
    assert set(e.timeline["state"]) >= {"running", "unknown"}


def test_equipment_day_without_a_meter_has_no_reconciliation():
    from collectors.bracelet_analytics import equipment_day

    metered = pd.DataFrame({"value": [float("nan")], "measured": [0], "expected": [96]})
    e = equipment_day("E001", [MACHINE], readings("08:00", [8.0] * 10).assign(series="D1"), metered, at("00:00"),
                      at("00:00") + pd.Timedelta("1D"))
    assert e.reconciliation is None and e.energy["factor"].isna().all() and e.metered_coverage == 0.0
