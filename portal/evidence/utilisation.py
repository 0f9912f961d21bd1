"""Utilisation per bracelet and park-local day over a whole period, fast enough for a year of one-minute readings.

collectors.bracelet.utilisation runs the state machine once per call, so a year of days costs a year of calls
(seconds per device).  Here the wing's state machine runs once over the period and its runs are cut at the
park-local midnights; planned time comes from the same shift calendar.  The state machine itself is the wing's
(collectors.bracelet.states, a Python loop over every reading: about 1.8 s per bracelet-year) in array form
(`state_runs`: the same runs to the nanosecond, held against `states` by a property test), because a year-long
pack reads half a million one-minute readings per bracelet.  The figures are the
wing's definitions (tests/evidence/test_utilisation.py holds them against `utilisation` day by day):
hours per state, planned hours, running in shift, utilisation = running in shift / planned (NaN when nothing was
planned), coverage = known hours / elapsed hours.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from collectors.bracelet_analytics import levels

COLUMNS = ["date", "device", "name", "running_h", "idle_h", "off_h", "unknown_h", "planned_h", "running_in_shift_h",
           "utilisation", "coverage"]
_NS = 1_000_000_000
OFF, IDLE, RUNNING, UNKNOWN = 0, 1, 2, 3  # state codes of `state_runs`


def _ns(t) -> int:
    return pd.Timestamp(t).as_unit("ns").value


def _per_day(starts: np.ndarray, ends: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Seconds of the disjoint, sorted intervals [starts, ends) (ns) falling in each [edges[i], edges[i+1])."""
    out = np.zeros(len(edges) - 1)
    if not len(starts):
        return out
    # covered time before each edge (exact integer ns): the intervals ending before it whole, plus the part before
    # it of the one interval that may straddle it
    whole = np.concatenate([[0], np.cumsum(ends - starts)])
    k = np.searchsorted(ends, edges, side="right")  # intervals ending at or before the edge
    part = np.where(k < len(starts), np.clip(edges - starts[np.minimum(k, len(starts) - 1)], 0, None), 0)
    covered = (whole[k] + part).astype(float)
    return np.diff(covered) / _NS


STATE_NAMES = np.array(["off", "idle", "running", "unknown"], dtype=object)  # codes 0-2 = levels, 3 = unknown


def samples(readings: pd.DataFrame, device, params=None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """collectors.bracelet._samples of one device's readings (ts, value): sorted sample times (UTC ns), currents,
    the end of the time each stands for, whether a gap follows.  Computed once per device and passed to
    `state_runs` and indicators.monthly_estimates, which would each compute them again."""
    from collectors.bracelet import _NS, DEFAULT_PARAMS, _samples

    params = params or DEFAULT_PARAMS
    ts = readings["ts"] if len(readings) else None
    if ts is None or not isinstance(ts.dtype, pd.DatetimeTZDtype):
        return _samples(readings, device, params)
    t = ts.astype("datetime64[ns, UTC]").astype("int64").to_numpy()
    if not (np.diff(t) > 0).all():  # not in strictly increasing time order: the wing's sort and de-duplication
        return _samples(readings, device, params)
    # already what _samples' sort and de-duplication would give (series_values: one series in time order)
    current = readings["value"].astype(float).to_numpy()
    interval = int(device.interval_s * _NS)
    gap_after = np.ones(len(t), dtype=bool)
    gap_after[:-1] = np.diff(t) > params.gap_intervals * interval
    hold_end = np.where(gap_after, t + interval, np.append(t[1:], 0))
    return t, current, hold_end, gap_after


def state_runs(readings: pd.DataFrame, device, start, end, params=None, sampled=None
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """collectors.bracelet.states as arrays: run starts and ends (UTC ns) and state codes (STATE_NAMES), the same
    runs over [start, end).  `sampled`: `samples(readings, device, params)` when already computed."""
    from collectors.bracelet import DEFAULT_PARAMS, _merge_short

    params = params or DEFAULT_PARAMS
    t0, t1 = _ns(start), _ns(end)
    ts, current, hold_end, gap_after = sampled if sampled is not None else samples(readings, device, params)
    if device.run_current_a <= device.idle_current_a or not len(ts):
        return _loop_runs(readings, device, start, end, params)
    restart = np.append(True, gap_after[:-1])
    level = levels(current, restart, device.idle_current_a, device.run_current_a, params.hysteresis)
    # each reading's held time, and unknown between a reading's held time and the next reading after a gap
    gap = np.flatnonzero(gap_after[:-1])
    s = np.concatenate([ts, hold_end[gap]])
    e = np.concatenate([hold_end, ts[gap + 1]])
    code = np.concatenate([level, np.full(len(gap), 3)])
    order = np.argsort(s, kind="stable")
    s, e, code = s[order], e[order], code[order]
    if t0 < s[0]:
        s, e, code = np.append(t0, s), np.append(s[0], e), np.append(3, code)
    if e[-1] < t1:
        s, e, code = np.append(s, e[-1]), np.append(e, t1), np.append(code, 3)
    change = np.flatnonzero(np.append(True, code[1:] != code[:-1]))  # contiguous: runs of one state merge
    runs = [[a, b, c] for a, b, c in zip(s[change].tolist(), np.append(s[change[1:]], e[-1]).tolist(),
                                          STATE_NAMES[code[change]].tolist(), strict=True)]
    merged = [(max(a, t0), min(b, t1), c) for a, b, c in _merge_short(runs, params.min_dwell_s * _NS)
              if b > t0 and a < t1]
    return _arrays(merged)


def _arrays(runs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    codes = {n: i for i, n in enumerate(STATE_NAMES)}
    return (np.array([a for a, _, _ in runs], dtype=np.int64), np.array([b for _, b, _ in runs], dtype=np.int64),
            np.array([codes[c] for _, _, c in runs], dtype=np.int64))


def _loop_runs(readings, device, start, end, params):
    """The wing's own state machine (devices whose thresholds the array form does not assume, no readings)."""
    from collectors.bracelet import states

    runs = states(readings, device, start, end, params)
    return _arrays(list(zip(runs["start"].map(_ns).tolist(), runs["end"].map(_ns).tolist(), runs["state"],
                            strict=True)))


def _intersect(a: list[tuple[int, int]], b: list[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
    """The intersections of two sorted lists of disjoint intervals."""
    lo, hi, i, j = [], [], 0, 0
    while i < len(a) and j < len(b):
        s, e = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if e > s:
            lo.append(s)
            hi.append(e)
        if a[i][1] <= b[j][1]:
            i += 1
        else:
            j += 1
    return np.array(lo, dtype=np.int64), np.array(hi, dtype=np.int64)


def daily_utilisation(points: pd.DataFrame, devices: list, start: pd.Timestamp, end: pd.Timestamp,
                      calendar=None, sampled: dict | None = None) -> pd.DataFrame:
    """COLUMNS, one row per device and park-local day in [start, end) (start a local midnight; the last day ends
    at `end`).  points: the devices' current readings (series, ts, value) from a gap limit before `start`, or
    a dict of them (ts, value) by device; `sampled`: their `samples` by device, when already computed."""
    from collectors.bracelet import DEFAULT_CALENDAR

    calendar = calendar or DEFAULT_CALENDAR
    days = pd.date_range(start, end, freq="D", inclusive="left")
    edges = np.array([_ns(d) for d in days] + [_ns(end)], dtype=np.int64)
    elapsed_h = np.diff(edges) / _NS / 3600
    planned = [(_ns(a), _ns(b)) for a, b in calendar.planned(start, end)]
    p0 = np.array([a for a, _ in planned], dtype=np.int64)
    p1 = np.array([b for _, b in planned], dtype=np.int64)
    planned_h = _per_day(p0, p1, edges) / 3600
    by_series = points if isinstance(points, dict) else dict(tuple(points.groupby("series"))) if len(points) else {}
    empty = pd.DataFrame({"ts": pd.Series([], dtype="datetime64[ns, UTC]"), "value": pd.Series([], dtype=float)})
    frames = []
    for d in devices:
        s, e, code = state_runs(by_series.get(d.id, empty), d, start, end, sampled=(sampled or {}).get(d.id))
        hours = {st: _per_day(s[code == st], e[code == st], edges) / 3600 for st in (RUNNING, IDLE, OFF, UNKNOWN)}
        run = code == RUNNING
        i0, i1 = _intersect(list(zip(s[run].tolist(), e[run].tolist(), strict=True)), planned)
        in_shift = _per_day(i0, i1, edges) / 3600
        with np.errstate(invalid="ignore", divide="ignore"):
            util = np.where(planned_h > 0, in_shift / np.where(planned_h > 0, planned_h, 1), np.nan)
        frames.append(pd.DataFrame({
            "date": days.strftime("%Y-%m-%d"), "device": d.id, "name": d.name, "running_h": hours[RUNNING],
            "idle_h": hours[IDLE], "off_h": hours[OFF], "unknown_h": hours[UNKNOWN], "planned_h": planned_h,
            "running_in_shift_h": in_shift, "utilisation": util,
            "coverage": (elapsed_h - hours[UNKNOWN]) / elapsed_h}))
    return pd.concat(frames, ignore_index=True)[COLUMNS] if frames else pd.DataFrame(columns=COLUMNS)
