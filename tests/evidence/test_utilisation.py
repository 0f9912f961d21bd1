"""The pack's utilisation by day (one run of the state machine cut at midnights) equals the wing's
collectors.bracelet.utilisation computed day by day (within minutes at midnight), including gaps, a partial last
day and days off."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collectors.bracelet import utilisation
from collectors.bracelet_analytics import lead_time
from park.model import Device
from portal.evidence.utilisation import daily_utilisation

TZ = "Asia/Shanghai"
DEVICES = [Device("D1", "E1", None, "切割机"), Device("D2", "E1", None, "空压机", interval_s=120)]
FIELDS = ["running_h", "idle_h", "off_h", "unknown_h", "planned_h", "running_in_shift_h", "utilisation", "coverage"]


def readings(seed: int, days: int, gaps: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2024-03-01", tz=TZ) - pd.Timedelta(minutes=30)
    frames = []
    for d in DEVICES:
        ts = pd.date_range(start, start + pd.Timedelta(days=days, hours=1), freq=f"{d.interval_s}s")
        hour = ts.hour.to_numpy()
        amps = np.where((hour >= 8) & (hour < 17), rng.uniform(4, 30, len(ts)), rng.uniform(0, 3, len(ts)))
        keep = np.ones(len(ts), dtype=bool)
        for _ in range(gaps):  # silent stretches of a few minutes to a day
            a = int(rng.integers(len(ts)))
            keep[a:a + int(rng.integers(3, 1500))] = False
        frames.append(pd.DataFrame({"ts": ts[keep], "series": d.id, "value": amps[keep]}))
    return pd.concat(frames, ignore_index=True)


@settings(max_examples=4, deadline=None)
@given(seed=st.integers(0, 10_000), gaps=st.integers(0, 6), end_hour=st.integers(1, 24))
def test_daily_utilisation_is_the_wings_day_by_day(seed, gaps, end_hour):
    days = 3
    points = readings(seed, days, gaps)
    start = pd.Timestamp("2024-03-01", tz=TZ)
    end = start + pd.Timedelta(days=days - 1, hours=end_hour)  # a partial last day
    got = daily_utilisation(points, DEVICES, start, end)
    lead = lead_time(DEVICES)
    assert len(got) == len(DEVICES) * days
    for d in DEVICES:
        mine = points[points["series"] == d.id]
        for i in range(days):
            a = start + pd.Timedelta(days=i)
            b = min(a + pd.Timedelta(days=1), end)
            want = utilisation(mine[(mine["ts"] >= a - lead) & (mine["ts"] < b)], d, a, b)
            row = got[(got["device"] == d.id) & (got["date"] == a.strftime("%Y-%m-%d"))].iloc[0]
            for f in FIELDS:
                w, g = getattr(want, f), row[f]
                if np.isnan(w):
                    assert np.isnan(g), (d.id, i, f)
                else:
                    # hours agree within minutes: a day-by-day run restarts the state machine at midnight
                    # (minimum dwell, hysteresis), the period run carries its state across
                    tol = 0.01 if f in ("utilisation", "coverage") else 0.1
                    assert g == pytest.approx(w, abs=tol), (d.id, i, f, g, w)


def test_sunday_has_nothing_planned_and_no_utilisation():
    points = readings(1, 7, 0)
    start = pd.Timestamp("2024-03-01", tz=TZ)  # a Friday
    got = daily_utilisation(points, DEVICES[:1], start, start + pd.Timedelta(days=7))
    sunday = got[got["date"] == "2024-03-03"].iloc[0]
    assert sunday["planned_h"] == 0 and np.isnan(sunday["utilisation"])
    friday = got[got["date"] == "2024-03-01"].iloc[0]
    assert friday["planned_h"] == 16 and 0 < friday["utilisation"] < 1


@settings(max_examples=200, deadline=None)
@given(amps=st.lists(st.sampled_from([0.0, 0.85, 0.95, 1.0, 2.0, 4.4, 4.6, 5.0, 9.0]), min_size=1, max_size=120),
       steps=st.lists(st.sampled_from([60, 60, 60, 120, 181, 240, 3600]), min_size=120, max_size=120),
       lead=st.integers(-5, 40), span=st.integers(1, 200), dwell=st.sampled_from([0.0, 120.0, 600.0]))
def test_state_runs_are_the_wings_states(amps, steps, lead, span, dwell):
    """The array state machine gives exactly the wing's runs (to the nanosecond): thresholds, hysteresis (amps just
    under each exit threshold), gaps, minimum dwell, a period starting before or after the first reading."""
    from collectors.bracelet import StateParams, states
    from portal.evidence.utilisation import STATE_NAMES, state_runs

    d = Device("D1", "E1", None, "x", interval_s=60)
    t = pd.Timestamp("2024-03-01 08:00", tz=TZ) + pd.to_timedelta(np.cumsum([0, *steps[:len(amps) - 1]]), unit="s")
    points = pd.DataFrame({"ts": t, "value": amps})
    start = t[0] + pd.Timedelta(minutes=lead)
    end = start + pd.Timedelta(minutes=span)
    params = StateParams(min_dwell_s=dwell)
    want = states(points, d, start, end, params)
    s, e, code = state_runs(points, d, start, end, params)
    assert [int(x.value) for x in want["start"]] == s.tolist()
    assert [int(x.value) for x in want["end"]] == e.tolist()
    assert list(want["state"]) == STATE_NAMES[code].tolist()


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), gaps=st.integers(0, 6))
def test_monthly_estimates_are_the_wings_month_by_month(seed, gaps):
    """The crosscheck's bracelet energy per month (readings sorted once, cut by month) is exactly
    collectors.bracelet.estimated_energy_kwh of each month's readings passed alone."""
    from collectors.bracelet import estimated_energy_kwh
    from portal.evidence.indicators import monthly_estimates

    points = readings(seed, 3, gaps)
    cuts = [pd.Timestamp("2024-03-01", tz=TZ) + pd.Timedelta(hours=h) for h in (0, 7, 30, 31, 55, 72)]
    bounds = list(zip(cuts[:-1], cuts[1:], strict=True))
    for d in DEVICES:
        mine = points[points["series"] == d.id]
        got = monthly_estimates(mine, d, bounds)
        for (a, b), g in zip(bounds, got, strict=True):
            part = mine[(mine["ts"] >= a) & (mine["ts"] < b)]
            assert g == (estimated_energy_kwh(part, d, a, b) if len(part) else None)


def test_a_months_last_reading_stands_for_one_interval_as_when_the_month_is_passed_alone():
    """A reading 2.5 intervals before the next one (no gap) that is the last of its month: passed alone, the month
    holds it for one interval (60 s), not until the next reading (150 s, cut at the month's end)."""
    from collectors.bracelet import estimated_energy_kwh
    from portal.evidence.indicators import monthly_estimates

    d = DEVICES[0]
    cut = pd.Timestamp("2024-04-01", tz=TZ)
    ts = pd.DatetimeIndex([cut - pd.Timedelta(seconds=s) for s in (300, 240, 180, 120)]
                          + [cut + pd.Timedelta(seconds=30), cut + pd.Timedelta(seconds=90)])
    part = pd.DataFrame({"ts": ts, "value": 10.0})
    bounds = [(cut - pd.Timedelta(hours=1), cut), (cut, cut + pd.Timedelta(hours=1))]
    got = monthly_estimates(part, d, bounds)
    want = [estimated_energy_kwh(part[(part["ts"] >= a) & (part["ts"] < b)], d, a, b) for a, b in bounds]
    assert got == want
    assert got[0] == pytest.approx(estimated_energy_kwh(part, d, *bounds[0]) * 4 / 5)  # 4 min held, not 5
