"""Bracelet analytics of one enterprise's devices: status (last seen, latest current, state, silent) and one day's
state timeline, utilisation by day and by shift, estimated energy reconciled with the metered electricity.

Pure: readings come in as frames (ts, series, value: current in A), figures go out.  The method and its parameters
are collectors.bracelet's (docs/bracelets.md); the portal's scope reads the readings and renders the result.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from collectors.bracelet import (
    DEFAULT_CALENDAR,
    DEFAULT_PARAMS,
    RUNNING,
    UNKNOWN,
    Reconciliation,
    ShiftCalendar,
    reconcile,
    states,
    utilisation,
)
from park.model import Device

STATUS_COLUMNS = ["device", "name", "workshop", "last_seen", "current_a", "state", "silent", "silent_min"]
TIMELINE_COLUMNS = ["device", "start", "end", "state", "seconds"]


def _readings(points: pd.DataFrame, device: str) -> pd.DataFrame:
    return points.loc[points["series"] == device, ["ts", "value"]]


def device_status(latest: pd.DataFrame, recent: pd.DataFrame, devices: list[Device], now,
                  gap_intervals: float = DEFAULT_PARAMS.gap_intervals) -> pd.DataFrame:
    """Per device: last seen, latest current (A), state at the last reading, and whether it is silent (no reading
    for more than `gap_intervals` intervals, or never).

    latest: series, ts, value (the latest reading per device); recent: the readings of the hour before `now`."""
    now = pd.Timestamp(now)
    latest = latest.set_index("series")
    rows = []
    for d in devices:
        seen = latest["ts"].get(d.id)
        silent = seen is None or (now - seen).total_seconds() > gap_intervals * d.interval_s
        state = UNKNOWN
        if not silent:
            runs = states(_readings(recent, d.id), d, now - pd.Timedelta("1h"), now)
            known = runs[runs["state"] != UNKNOWN]
            state = known["state"].iloc[-1] if len(known) else UNKNOWN
        rows.append({"device": d.id, "name": d.name, "workshop": d.workshop, "last_seen": seen,
                     "current_a": latest["value"].get(d.id, math.nan), "state": state, "silent": silent,
                     "silent_min": (now - seen).total_seconds() / 60 if seen is not None else math.nan})
    return pd.DataFrame(rows, columns=STATUS_COLUMNS)


def lead_time(devices: list[Device]) -> pd.Timedelta:
    """How far before a day its readings are needed (a gap limit of the slowest device)."""
    return pd.Timedelta(seconds=DEFAULT_PARAMS.gap_intervals * max((d.interval_s for d in devices), default=60))


@dataclass
class EquipmentDay:
    """One enterprise's bracelets on one park-local day (to now when it is today), with the week before it."""

    enterprise: str
    start: pd.Timestamp
    end: pd.Timestamp
    has_readings: bool  # any reading on this day
    timeline: pd.DataFrame  # TIMELINE_COLUMNS
    by_day: pd.DataFrame  # day, device, Utilisation fields (the 7 days ending on this day)
    by_shift: pd.DataFrame  # shift_start, shift_end, device, Utilisation fields
    energy: pd.DataFrame  # device, estimated_kwh, factor, reconciled_kwh, coverage
    metered_kwh: float  # the enterprise's grid electricity over the same time
    metered_coverage: float
    reconciliation: Reconciliation | None  # None without metered electricity


def equipment_day(enterprise: str, devices: list[Device], points: pd.DataFrame, metered: pd.DataFrame,
                  start: pd.Timestamp, end: pd.Timestamp,
                  calendar: ShiftCalendar = DEFAULT_CALENDAR) -> EquipmentDay:
    """States, utilisation by day (the 7 days ending on this one) and by shift, estimated energy and its
    reconciliation with the meter over [start, end).

    points: current readings from `lead_time` before the week's first day to `end`; metered: the enterprise's grid
    electricity over [start, end) (value, measured, expected rows, as the store aggregates it)."""
    week = start - pd.DateOffset(days=6)
    lead = lead_time(devices)
    on_day = points[points["ts"] >= start - lead]
    timeline, by_day, by_shift, energy = [], [], [], {}
    for d in devices:
        r = _readings(points, d.id)
        day_r = _readings(on_day, d.id)
        timeline.append(states(day_r, d, start, end).assign(device=d.id))
        for offset in range(7):
            a = week + pd.DateOffset(days=offset)
            b = min(a + pd.DateOffset(days=1), end)
            span = r[(r["ts"] >= a - lead) & (r["ts"] < b)]  # the day's readings (and a gap limit before it)
            by_day.append({"day": a, **utilisation(span, d, a, b, calendar).__dict__})
        for a, b in calendar.planned(start, end):
            by_shift.append({"shift_start": a, "shift_end": b, **utilisation(day_r, d, a, b, calendar).__dict__})
        u = utilisation(day_r, d, start, end, calendar)
        energy[d.id] = (u.energy_kwh, u.coverage)
    metered_kwh = float(metered["value"].sum(min_count=1))
    exp = float(metered["expected"].sum())
    metered_cov = min(float(metered["measured"].sum()) / exp, 1.0) if exp > 0 else math.nan
    est = {k: v[0] for k, v in energy.items()}
    rec = reconcile(est, metered_kwh) if math.isfinite(metered_kwh) else None
    energy_frame = pd.DataFrame({
        "device": list(est), "estimated_kwh": list(est.values()),
        "factor": [rec.factors[k] if rec else math.nan for k in est],
        "reconciled_kwh": [rec.reconciled_kwh[k] if rec else math.nan for k in est],
        "coverage": [v[1] for v in energy.values()]})
    return EquipmentDay(
        enterprise=enterprise, start=start, end=end, has_readings=bool(len(on_day[on_day["ts"] >= start])),
        timeline=(pd.concat(timeline, ignore_index=True)[TIMELINE_COLUMNS] if timeline
                  else pd.DataFrame(columns=TIMELINE_COLUMNS)),
        by_day=pd.DataFrame(by_day), by_shift=pd.DataFrame(by_shift), energy=energy_frame, metered_kwh=metered_kwh,
        metered_coverage=metered_cov, reconciliation=rec)


def recent_days(now, tz, n: int = 14) -> list[str]:
    """The last `n` park-local dates, newest first, as ISO strings."""
    today = pd.Timestamp(now).tz_convert(tz).floor("D")
    return [(today - pd.DateOffset(days=i)).date().isoformat() for i in range(n)]


OFF_SHIFT_COLUMNS = ["device", "start", "end", "seconds"]


def off_shift_runs(points: pd.DataFrame, devices: list[Device], start: pd.Timestamp, end: pd.Timestamp,
                   calendar: ShiftCalendar = DEFAULT_CALENDAR, min_seconds: float = 15 * 60) -> pd.DataFrame:
    """Runs of `running` outside the planned shifts within [start, end), per device, of at least `min_seconds`
    (a machine left running over the night or a Sunday).  Unknown time is never counted as running.

    points: current readings (ts, series, value) from `lead_time` before `start` to `end`."""
    planned = calendar.planned(start, end)
    rows = []
    for d in devices:
        runs = states(_readings(points, d.id), d, start, end)
        for a, b in zip(runs.loc[runs["state"] == RUNNING, "start"],
                        runs.loc[runs["state"] == RUNNING, "end"], strict=True):
            for lo, hi in _outside(a, b, planned):
                if (hi - lo).total_seconds() >= min_seconds:
                    rows.append({"device": d.id, "start": lo, "end": hi, "seconds": (hi - lo).total_seconds()})
    return pd.DataFrame(rows, columns=OFF_SHIFT_COLUMNS)


def _outside(a: pd.Timestamp, b: pd.Timestamp, planned: list[tuple[pd.Timestamp, pd.Timestamp]]
             ) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """The parts of [a, b) outside the sorted, disjoint `planned` intervals."""
    out, cursor = [], a
    for lo, hi in planned:
        if hi <= cursor or lo >= b:
            continue
        if lo > cursor:
            out.append((cursor, lo))
        cursor = max(cursor, hi)
    if cursor < b:
        out.append((cursor, b))
    return out


def utilisation_by_day(devices: list[Device], points: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp,
                       calendar: ShiftCalendar = DEFAULT_CALENDAR) -> pd.DataFrame:
    """Utilisation per device per park-local day over [start, end) (start and end at park-local midnights): day,
    device and the Utilisation fields, the input of carbon.risk.capacity_scale and shutdown_signals.

    points: current readings from `lead_time(devices)` before `start` to `end`.  A day without readings is all
    unknown (coverage 0), never all off."""
    lead = lead_time(devices)
    rows = []
    for d in devices:
        r = _readings(points, d.id)
        day = pd.Timestamp(start)
        while day < end:
            nxt = min(day + pd.DateOffset(days=1), pd.Timestamp(end))
            span = r[(r["ts"] >= day - lead) & (r["ts"] < nxt)]
            rows.append({"day": day, **utilisation(span, d, day, nxt, calendar).__dict__})
            day = nxt
    return pd.DataFrame(rows)
