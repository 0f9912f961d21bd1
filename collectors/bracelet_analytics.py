"""Bracelet analytics of one enterprise's devices: status (last seen, latest current, state, silent) and one day's
state timeline, utilisation by day and by shift, estimated energy reconciled with the metered electricity.

Pure: readings come in as frames (ts, series, value: current in A), figures go out.  The method and its parameters
are collectors.bracelet's (docs/bracelets.md); the portal's scope reads the readings and renders the result.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from collectors.bracelet import (
    DEFAULT_CALENDAR,
    DEFAULT_PARAMS,
    IDLE,
    OFF,
    RUNNING,
    SQRT3,
    UNKNOWN,
    Reconciliation,
    ShiftCalendar,
    StateParams,
    _ns,
    _samples,
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
    timeline, by_shift, energy = [], [], {}
    # each of the 7 days from its own readings (and a gap limit before it), all in one pass per device
    by_day = utilisation_by_day(devices, points, week, end, calendar)
    shifts = calendar.planned(start, end)
    whole, by_shifts = _Windows([(start, end)], calendar), _Windows(shifts, calendar)
    for d in devices:
        day_r = _readings(on_day, d.id)
        if array_form_applies(d) and by_shifts.disjoint:  # the same figures from one pass per window set
            ts, current, _, _ = _samples(day_r, d, DEFAULT_PARAMS)
            w, rs, re_, rc, _ = window_runs(ts, current, [0], [len(ts)], whole.t0, whole.t1, d)
            timeline.append(_runs_frame(rs, re_, rc, start).assign(device=d.id))
            n = np.full(len(shifts), len(ts))
            by_shift += [{"shift_start": a, "shift_end": b, **u} for (a, b), u in zip(
                shifts, _window_figures(d, ts, current, np.zeros(len(shifts), int), n, by_shifts, DEFAULT_PARAMS),
                strict=True)]
            u = _window_figures(d, ts, current, np.array([0]), np.array([len(ts)]), whole, DEFAULT_PARAMS)[0]
            energy[d.id] = (u["energy_kwh"], u["coverage"])
            continue
        timeline.append(states(day_r, d, start, end).assign(device=d.id))
        for a, b in shifts:
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
        by_day=by_day, by_shift=pd.DataFrame(by_shift), energy=energy_frame, metered_kwh=metered_kwh,
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


# ---- the state machine over many windows at once (arrays) -------------------------------------------------------
# collectors.bracelet.states is a Python loop over every reading.  Below is the same state machine as array
# operations, run over many windows of one device's sorted samples in one pass: each window is what a call of
# `states` on that window's readings alone would see (its first reading restarts, its last one stands for one
# interval, minimum dwell merges within it), so the runs are those of `states` to the nanosecond (property test:
# tests/collectors/test_bracelet_days.py).  portal/evidence/utilisation.py has a one-window twin of it.
_NS = 1_000_000_000
STATE_NAMES = (OFF, IDLE, RUNNING, UNKNOWN)  # state codes of the arrays: 0-2 are collectors.bracelet.LEVELS
_UNKNOWN = 3


def levels(current: np.ndarray, restart: np.ndarray, idle_in: float, run_in: float, hysteresis: float) -> np.ndarray:
    """collectors.bracelet._classify without the loop (needs run_in > idle_in).  A reading after a gap (`restart`),
    at or above the run threshold or below idle's exit threshold sets the level whatever came before; within a
    stretch of other readings, from off the level becomes idle at the first reading reaching idle's threshold,
    from running it becomes idle at the first reading below running's exit threshold, and idle stays idle."""
    leave1, leave2 = idle_in * (1 - hysteresis), run_in * (1 - hysteresis)
    entered = np.where(current >= run_in, 2, np.where(current >= idle_in, 1, 0))
    fixed = restart | (current >= run_in) | (current < leave1)
    group = np.cumsum(fixed) - 1  # the first reading always restarts
    first = np.flatnonzero(fixed)
    base = np.where(restart, entered, np.where(current >= run_in, 2, 0))[first][group]

    def reached(trigger: np.ndarray) -> np.ndarray:  # a trigger at or before each reading, within its stretch
        c = np.cumsum(trigger & ~fixed)
        before = c[first] - (trigger & ~fixed)[first]
        return c - before[group] > 0

    level = np.where(base == 0, np.where(reached(entered >= 1), 1, 0),
                     np.where(base == 2, np.where(reached(current < leave2), 1, 2), 1))
    return np.where(fixed, base, level)


def array_form_applies(device: Device, params: StateParams = DEFAULT_PARAMS) -> bool:
    """Whether `window_runs` may stand for `states`: thresholds in order and a gap limit of at least one interval
    (otherwise a reading's held time could overlap the next reading; `states` handles that case itself)."""
    return device.run_current_a > device.idle_current_a and params.gap_intervals >= 1


def window_runs(ts: np.ndarray, current: np.ndarray, lo: np.ndarray, hi: np.ndarray, t0: np.ndarray,
                t1: np.ndarray, device: Device, params: StateParams = DEFAULT_PARAMS
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
    """`states(readings[lo[k]:hi[k]], device, t0[k], t1[k])` for every window k at once.

    ts, current: one device's samples as collectors.bracelet._samples sorts and de-duplicates them (UTC ns, A);
    window k holds the samples ts[lo[k]:hi[k]] and covers [t0[k], t1[k]) (t1 > t0).  Returns the runs' window,
    start, end (UTC ns, clipped to the window) and state code (STATE_NAMES), in window and time order, and the
    windows' samples (keys ts, current, hold_end, window) for the energy estimate."""
    lo, hi = np.asarray(lo, dtype=np.int64), np.asarray(hi, dtype=np.int64)
    t0, t1 = np.asarray(t0, dtype=np.int64), np.asarray(t1, dtype=np.int64)
    n = len(lo)
    if not n:
        none = np.zeros(0, dtype=np.int64)
        return none, none, none, none, {}
    counts = np.maximum(hi - lo, 0)
    offset = np.cumsum(counts) - counts
    total = int(counts.sum())
    seg = np.repeat(np.arange(n), counts)
    idx = np.arange(total) - offset[seg] + lo[seg]
    t, amps = ts[idx], current[idx]
    interval = int(device.interval_s * _NS)
    limit = params.gap_intervals * interval
    nonempty = counts > 0
    last = (offset + counts - 1)[nonempty]
    first = offset[nonempty]
    gap_after = np.ones(total, dtype=bool)
    gap_after[:-1] = np.diff(t) > limit
    gap_after[last] = True  # a window's last reading stands for one interval
    hold_end = np.where(gap_after, t + interval, np.append(t[1:], 0))
    restart = np.append(True, gap_after[:-1]) if total else np.zeros(0, dtype=bool)
    code = (levels(amps, restart, device.idle_current_a, device.run_current_a, params.hysteresis) if total
            else np.zeros(0, dtype=np.int64))
    # pieces: each reading's held time, unknown after a gap up to the next reading, before a window's first
    # reading, after its last held time, and a window without readings
    g = np.flatnonzero(gap_after)
    g = g[np.isin(g, last, invert=True)]
    ws, wn = np.flatnonzero(nonempty), np.flatnonzero(~nonempty)
    head = t0[ws] < t[first]
    tail = hold_end[last] < t1[ws]
    s = np.concatenate([t, hold_end[g], t0[ws][head], hold_end[last][tail], t0[wn]])
    e = np.concatenate([hold_end, t[g + 1], t[first][head], t1[ws][tail], t1[wn]])
    c = np.concatenate([code, np.full(len(g) + int(head.sum()) + int(tail.sum()) + len(wn), _UNKNOWN)])
    w = np.concatenate([seg, seg[g], ws[head], ws[tail], wn])
    order = np.lexsort((s, w))
    s, e, c, w = s[order], e[order], c[order], w[order]
    # contiguous pieces of one state are one run (collectors.bracelet._add)
    new = np.ones(len(s), dtype=bool)
    new[1:] = (c[1:] != c[:-1]) | (w[1:] != w[:-1])
    at = np.flatnonzero(new)
    rs, re_, rc, rw = s[at], e[np.append(at[1:], len(s)) - 1], c[at], w[at]
    # minimum dwell (collectors.bracelet._merge_short): within a chain of known runs (a window's start and unknown
    # runs break chains) a run is kept when it is the chain's first, or long enough and of another state than the
    # chain's previous long-enough run; every other known run joins the run before it
    m = len(rs)
    first_of_w = np.ones(m, dtype=bool)
    first_of_w[1:] = rw[1:] != rw[:-1]
    known = rc != _UNKNOWN
    prev_unknown = np.ones(m, dtype=bool)
    prev_unknown[1:] = ~known[:-1]
    chain_first = known & (first_of_w | prev_unknown)
    candidate = known & (chain_first | ~(re_ - rs < params.min_dwell_s * _NS))
    ci = np.flatnonzero(candidate)
    differs = np.ones(len(ci), dtype=bool)
    differs[1:] = rc[ci[1:]] != rc[ci[:-1]]
    keep = ~known | chain_first
    keep[ci[differs]] = True
    k = np.flatnonzero(keep)
    ks, kw, kc = rs[k], rw[k], rc[k]
    w_end = np.zeros(n, dtype=np.int64)
    last_run = np.flatnonzero(np.append(rw[1:] != rw[:-1], True))
    w_end[rw[last_run]] = re_[last_run]  # the end of each window's last run
    nxt_same = np.append(kw[1:] == kw[:-1], False)
    ke = np.where(nxt_same, np.append(ks[1:], 0), w_end[kw])
    inside = (ke > t0[kw]) & (ks < t1[kw])
    ks, ke, kc, kw = ks[inside], ke[inside], kc[inside], kw[inside]
    ks, ke = np.maximum(ks, t0[kw]), np.minimum(ke, t1[kw])
    return kw, ks, ke, kc, {"ts": t, "current": amps, "hold_end": hold_end, "window": seg, "offset": offset,
                            "counts": counts}


def _runs_frame(s: np.ndarray, e: np.ndarray, code: np.ndarray, start) -> pd.DataFrame:
    """Runs as collectors.bracelet.states gives them (times in `start`'s time zone)."""
    tz = pd.Timestamp(start).tz
    return pd.DataFrame({"start": pd.to_datetime(s.tolist(), unit="ns", utc=True).tz_convert(tz),
                         "end": pd.to_datetime(e.tolist(), unit="ns", utc=True).tz_convert(tz),
                         "state": [STATE_NAMES[i] for i in code.tolist()], "seconds": ((e - s) / _NS).tolist()})


def _day_bounds(start, end) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    days, day = [], pd.Timestamp(start)
    while day < end:
        nxt = min(day + pd.DateOffset(days=1), pd.Timestamp(end))
        days.append((day, nxt))
        day = nxt
    return days


def utilisation_by_day(devices: list[Device], points: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp,
                       calendar: ShiftCalendar = DEFAULT_CALENDAR, params: StateParams = DEFAULT_PARAMS
                       ) -> pd.DataFrame:
    """Utilisation per device per park-local day over [start, end) (start and end at park-local midnights): day,
    device and the Utilisation fields, the input of carbon.risk.capacity_scale and shutdown_signals.

    points: current readings from `lead_time(devices)` before `start` to `end`.  A day without readings is all
    unknown (coverage 0), never all off.  Each day is `collectors.bracelet.utilisation` of that day's readings
    (and a gap limit before it) alone, exactly (tests/collectors/test_bracelet_days.py), computed for all the days
    of a device in one pass over its samples (`window_runs`) instead of a pass per day."""
    days = _day_bounds(start, end)
    if not days:
        return pd.DataFrame()
    lead = lead_time(devices).value
    windows = _Windows(days, calendar)
    by_series = dict(tuple(points.groupby("series"))) if len(points) else {}
    rows = []
    for d in devices:
        r = by_series.get(d.id, points.iloc[:0])[["ts", "value"]]
        if not (array_form_applies(d, params) and windows.disjoint):
            rows += _device_days_loop(r, d, days, lead, calendar, params)
            continue
        ts, current, _, _ = _samples(r, d, params)
        lo = np.searchsorted(ts, windows.t0 - lead, side="left")
        hi = np.searchsorted(ts, windows.t1, side="left")
        rows += [{"day": a, **u} for (a, _), u in zip(days, _window_figures(d, ts, current, lo, hi, windows, params),
                                                      strict=True)]
    return pd.DataFrame(rows)


class _Windows:
    """Periods to compute utilisation over, in time order, with the calendar's planned time within each."""

    def __init__(self, bounds: list[tuple[pd.Timestamp, pd.Timestamp]], calendar: ShiftCalendar):
        self.t0 = np.array([_ns(a) for a, _ in bounds], dtype=np.int64)
        self.t1 = np.array([_ns(b) for _, b in bounds], dtype=np.int64)
        self.elapsed_h = [(b - a).total_seconds() / 3600 for a, b in bounds]
        shifts = [calendar.planned(a, b) for a, b in bounds]
        self.planned_h = [sum((b - a).total_seconds() for a, b in p) / 3600 for p in shifts]
        self.p0 = np.array([_ns(a) for p in shifts for a, _ in p], dtype=np.int64)
        self.p1 = np.array([_ns(b) for p in shifts for _, b in p], dtype=np.int64)
        # the array form's cut of running runs by planned time needs both in time order without overlaps
        self.disjoint = bool((self.t0[1:] >= self.t1[:-1]).all() and (self.p0[1:] >= self.p1[:-1]).all()
                             and (self.p1 > self.p0).all())


def _window_figures(d: Device, ts: np.ndarray, current: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                    windows: _Windows, params: StateParams) -> list[dict]:
    """`utilisation(readings[lo[k]:hi[k]], d, window k)` as a dict for every window k, from one pass."""
    t0, t1 = windows.t0, windows.t1
    if not len(t0):
        return []
    w, s, e, c, smp = window_runs(ts, current, lo, hi, t0, t1, d, params)
    # hours per state: the same float seconds summed per window and state the way utilisation's groupby does
    sums = pd.DataFrame({"key": w * 4 + c, "seconds": (e - s) / _NS}).groupby("key")["seconds"].sum().div(3600)
    hours = dict(zip(sums.index.tolist(), sums.tolist(), strict=True))
    # running in shift: running runs cut by the window's planned time, in time order (utilisation's _overlap_s)
    run = c == RUNNING_CODE
    rs, re_, rw = s[run], e[run], w[run]
    p0, p1 = windows.p0, windows.p1
    j_lo = np.searchsorted(p1, rs, side="right")
    cnt = np.maximum(np.searchsorted(p0, re_, side="left") - j_lo, 0)
    i = np.repeat(np.arange(len(rs)), cnt)
    j = j_lo[i] + np.arange(int(cnt.sum())) - np.repeat(np.cumsum(cnt) - cnt, cnt)
    lo_i, hi_i = np.maximum(rs[i], p0[j]), np.minimum(re_[i], p1[j])
    pos = hi_i > lo_i
    in_shift = np.bincount(rw[i][pos], weights=(hi_i[pos] - lo_i[pos]) / _NS, minlength=len(t0))
    # energy: each window's readings held for their time within it (estimated_energy_kwh, its own np.sum)
    win = smp["window"]
    held = (np.clip(smp["hold_end"], t0[win], t1[win]) - np.clip(smp["ts"], t0[win], t1[win])) / _NS
    amp_s = smp["current"] * held
    out = []
    for k in range(len(t0)):
        running_h = hours.get(k * 4 + RUNNING_CODE, 0.0)
        unknown_h = hours.get(k * 4 + _UNKNOWN, 0.0)
        in_h = float(in_shift[k]) / 3600
        o, n = int(smp["offset"][k]), int(smp["counts"][k])
        amp_hours = float(np.sum(amp_s[o:o + n])) / 3600
        planned_h, elapsed_h = windows.planned_h[k], windows.elapsed_h[k]
        out.append({"device": d.id, "running_h": running_h, "idle_h": hours.get(k * 4 + 1, 0.0),
                    "off_h": hours.get(k * 4, 0.0), "unknown_h": unknown_h, "planned_h": planned_h,
                    "running_in_shift_h": in_h, "overtime_h": running_h - in_h,
                    "utilisation": in_h / planned_h if planned_h > 0 else math.nan,
                    "running_share": running_h / elapsed_h, "coverage": (elapsed_h - unknown_h) / elapsed_h,
                    "energy_kwh": SQRT3 * d.rated_voltage_v * d.power_factor * amp_hours / 1000})
    return out


RUNNING_CODE = STATE_NAMES.index(RUNNING)


def _device_days_loop(r: pd.DataFrame, d: Device, days, lead: int, calendar, params) -> list[dict]:
    """One device's days the per-day way: `utilisation` of each day's readings (and a gap limit before it)."""
    out = []
    for a, b in days:
        span = r[(r["ts"] >= a - pd.Timedelta(lead, unit="ns")) & (r["ts"] < b)]
        out.append({"day": a, **utilisation(span, d, a, b, calendar, params).__dict__})
    return out


def utilisation_by_day_per_day(devices: list[Device], points: pd.DataFrame, start: pd.Timestamp,
                               end: pd.Timestamp, calendar: ShiftCalendar = DEFAULT_CALENDAR,
                               params: StateParams = DEFAULT_PARAMS) -> pd.DataFrame:
    """`utilisation_by_day` computed a pass per device and day (`utilisation` of each day alone): the
    definition the one-pass computation is held equal to (tests) and measured against (docs/bracelets.md)."""
    days = _day_bounds(start, end)
    lead = lead_time(devices).value
    rows = []
    for d in devices:
        rows += _device_days_loop(_readings(points, d.id), d, days, lead, calendar, params)
    return pd.DataFrame(rows)


def equipment_period(enterprise: str, devices: list[Device], points: pd.DataFrame, metered: pd.DataFrame,
                     start: pd.Timestamp, end: pd.Timestamp,
                     calendar: ShiftCalendar = DEFAULT_CALENDAR) -> EquipmentDay:
    """One enterprise's bracelets over park-local [start, end): utilisation per day of the period
    (`utilisation_by_day`, one pass over each device's readings) and each device's estimated energy over the
    period (the sum of its days': the estimate integrates the known time only, so it adds up) reconciled with the
    metered electricity.  No state timeline or shifts (those are the day's).

    points: current readings from `lead_time(devices)` before `start` to `end`; metered: the enterprise's grid
    electricity over [start, end) (value, measured, expected rows, as the store aggregates it)."""
    by_day = utilisation_by_day(devices, points, start, end, calendar)
    elapsed_h = (end - start).total_seconds() / 3600
    per = by_day.groupby("device", sort=False)[["energy_kwh", "unknown_h"]].sum() if len(by_day) else None
    est = {d.id: float(per.loc[d.id, "energy_kwh"]) if per is not None else 0.0 for d in devices}
    cov = {d.id: (elapsed_h - float(per.loc[d.id, "unknown_h"])) / elapsed_h if per is not None else 0.0
           for d in devices}
    metered_kwh = float(metered["value"].sum(min_count=1))
    exp = float(metered["expected"].sum())
    rec = reconcile(est, metered_kwh) if math.isfinite(metered_kwh) else None
    energy = pd.DataFrame({"device": list(est), "estimated_kwh": list(est.values()),
                           "factor": [rec.factors[k] if rec else math.nan for k in est],
                           "reconciled_kwh": [rec.reconciled_kwh[k] if rec else math.nan for k in est],
                           "coverage": [cov[k] for k in est]})
    return EquipmentDay(
        enterprise=enterprise, start=start, end=end,
        has_readings=bool(len(by_day) and (by_day["coverage"] > 0).any()),
        timeline=pd.DataFrame(columns=TIMELINE_COLUMNS), by_day=by_day, by_shift=pd.DataFrame(),
        energy=energy, metered_kwh=metered_kwh,
        metered_coverage=min(float(metered["measured"].sum()) / exp, 1.0) if exp > 0 else math.nan,
        reconciliation=rec)
