"""Anomaly detection on synthetic meter data with injected anomalies: each found at the right time with expected
and observed values; consecutive hours merge; a park-wide outage is ONE warning; a clean park raises nothing."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasting.anomalies import (
    FLATLINE,
    LEVEL_SHIFT,
    OFF_HOURS,
    OUTAGE,
    PARK_SERIES,
    PROFILE,
    SPIKE,
    detect,
)
from forecasting.calendar import day_table

TZ = "Asia/Shanghai"
START = pd.Timestamp("2026-03-02", tz=TZ)  # a Monday after the Spring Festival
DAYS = 70
SINCE = START + pd.Timedelta(days=63)  # the last week is examined
END = START + pd.Timedelta(days=DAYS)
METERS = [f"M{i}" for i in range(1, 9)]
ENTERPRISE = {m: ("E1" if i < 4 else "E2") for i, m in enumerate(METERS)}
DETECTED = pd.Timestamp("2026-05-11 02:30", tz="UTC").to_pydatetime()


def clean(seed: int = 0) -> dict[str, np.ndarray]:
    """(days, 24) kWh per meter: a day shift 08:00-18:00 on working days, a low base at night and on days off, and
    noise; the enterprise's meters share a daily production factor (they follow their enterprise's output)."""
    rng = np.random.default_rng(seed)
    off = day_table(pd.date_range(START, periods=DAYS, freq="D"))["day_off"].to_numpy(dtype=bool)
    shift = np.zeros(24)
    shift[8:18] = 1.0
    production = {e: 1 + 0.3 * rng.standard_normal(DAYS) for e in ("E1", "E2")}
    out = {}
    for i, m in enumerate(METERS):
        base, peak = 2.0 + i, 20.0 + 3 * i
        day = np.where(off[:, None], base, base + peak * shift[None, :] * production[ENTERPRISE[m]][:, None])
        out[m] = day + rng.normal(0, 0.5, (DAYS, 24))
    return out


def frame(data: dict[str, np.ndarray]) -> pd.DataFrame:
    hours = pd.date_range(START, periods=DAYS * 24, freq="h")
    return pd.concat([pd.DataFrame({"start": hours, "series": m, "value": v.ravel()}) for m, v in data.items()],
                     ignore_index=True)


def at(day: int, hour: int) -> pd.Timestamp:
    return START + pd.Timedelta(days=day, hours=hour)


def run(data) -> list:
    return detect(frame(data), ENTERPRISE, SINCE, END, DETECTED, TZ)


def test_a_clean_park_raises_no_warning():
    found = run(clean())
    assert [a for a in found if a.code != "anomaly.unusual_day"] == []


def test_a_two_hour_spike_is_one_warning_at_its_time_with_expected_and_observed():
    data = clean()
    day = 65  # a working day in the examined week
    off = day_table(pd.date_range(START, periods=DAYS, freq="D"))["day_off"].to_numpy(dtype=bool)
    same_kind = [d for d in range(day - 28, day) if off[d] == off[day]]
    expected = float(np.median(data["M1"][same_kind, 10]))  # same hour, same kind of day, 4 weeks back
    data["M1"][day, 10:12] = 200.0
    found = [a for a in run(data) if a.series == "M1"]
    spike, = [a for a in found if a.code == SPIKE]
    assert spike.start == at(day, 10) and spike.end == at(day, 12)
    assert spike.observed == pytest.approx(200.0)
    assert spike.expected == pytest.approx(expected, rel=1e-12)
    assert "200.00 kWh" in spike.reason and "expected" in spike.reason and spike.enterprise == "E1"
    assert spike.severity == "warning" and spike.key == f"{SPIKE}|M1|{at(day, 10).isoformat()}"


def test_night_use_and_a_flat_line_are_found():
    data = clean()
    data["M5"][64, 2] = 60.0  # 02:00 at night
    data["M6"][66, 9:17] = 0.0  # eight hours of nothing in a working day
    found = run(data)
    night = [a for a in found if a.series == "M5" and a.code in (OFF_HOURS, SPIKE)]
    assert [(a.start, a.observed) for a in night] == [(at(64, 2), 60.0)]
    flat, = [a for a in found if a.code == FLATLINE]
    assert flat.series == "M6" and flat.start == at(66, 9) and flat.end == at(66, 17) and flat.observed == 0.0
    assert flat.expected > 10


def test_a_level_shift_is_one_warning_not_a_spike_per_hour():
    data = clean()
    data["M7"][63:] *= 1.8  # a new line from the first examined day on
    found = [a for a in run(data) if a.series == "M7"]
    shifts = [a for a in found if a.code == LEVEL_SHIFT]
    assert len(shifts) == 1 and shifts[0].start == at(63, 0)
    assert shifts[0].observed > shifts[0].expected


def test_a_park_wide_outage_is_one_warning():
    data = clean()
    for m in METERS:
        data[m][65, 9:13] = 0.0  # every meter at zero for four working hours
    found = run(data)
    storms = [a for a in found if a.code == OUTAGE]
    assert len(storms) == 1
    s = storms[0]
    assert s.series == PARK_SERIES and s.start == at(65, 9) and s.end == at(65, 13) and s.severity == "critical"
    assert s.observed == 0.0 and s.expected == len(METERS)
    assert [a for a in found if a.code in (SPIKE, FLATLINE) and a.start.normalize() == at(65, 0)] == []


def test_a_meter_that_stops_following_its_enterprise_is_named():
    data = clean()
    # M2 (enterprise E1) from day 56 on: high when E1's other meters are low and the other way round (a meter
    # moved to another line, or wired to the wrong enterprise)
    m1 = data["M1"].sum(axis=1)
    typical = float(np.median(m1[:56]))
    for d in range(56, DAYS):
        data["M2"][d] = data["M2"][d] * (2 * typical - m1[d]) / typical
    found = [a for a in run(data) if a.code == PROFILE]
    assert [a.series for a in found] == ["M2"]
    assert found[0].expected >= 0.6 and found[0].observed < 0.2
    assert found[0].start == START + pd.Timedelta(days=DAYS - 14)


def test_a_very_regular_meter_is_not_flagged_for_a_few_per_cent_and_a_short_history_is_not_examined():
    """A bracelet-like series that hardly varies: 7 % off its usual hour is normal, 80 % off is a spike (the scale
    never falls below a tenth of the typical value); with under 14 days of history nothing is examined."""
    data = clean()
    regular = np.tile(np.r_[np.full(8, 4.0), np.full(10, 12.0), np.full(6, 4.0)], (DAYS, 1))
    regular += np.random.default_rng(5).normal(0, 0.01, regular.shape)
    regular[64, 10] *= 1.07
    regular[66, 10] *= 1.8
    data["M1"] = regular
    spikes = [a for a in run(data) if a.series == "M1" and a.code == SPIKE]
    assert [a.start for a in spikes] == [at(66, 10)]
    short = frame({"M1": regular})
    short = short[short["start"] >= START + pd.Timedelta(days=52)]  # 11 days before the examined week
    assert detect(short, ENTERPRISE, SINCE, END, DETECTED, TZ) == []
