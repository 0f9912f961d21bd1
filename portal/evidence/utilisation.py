"""Utilisation per bracelet and park-local day over a whole period, fast enough for a year of one-minute readings.

collectors.bracelet.utilisation runs the state machine once per call, so a year of days costs a year of calls
(seconds per device).  Here the wing's state machine (collectors.bracelet.states) runs once over the period and its
runs are cut at the park-local midnights; planned time comes from the same shift calendar.  The figures are the
wing's definitions (tests/evidence/test_utilisation.py holds them against `utilisation` day by day):
hours per state, planned hours, running in shift, utilisation = running in shift / planned (NaN when nothing was
planned), coverage = known hours / elapsed hours.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

COLUMNS = ["date", "device", "name", "running_h", "idle_h", "off_h", "unknown_h", "planned_h", "running_in_shift_h",
           "utilisation", "coverage"]
_NS = 1_000_000_000


def _ns(t) -> int:
    return pd.Timestamp(t).as_unit("ns").value


def _per_day(starts: np.ndarray, ends: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Seconds of the disjoint intervals [starts, ends) (ns) falling in each [edges[i], edges[i+1])."""
    out = np.zeros(len(edges) - 1)
    if not len(starts):
        return out
    # covered time before each edge: the sum of each interval's part before it
    covered = np.array([np.clip(np.minimum(ends, e) - starts, 0, None).sum() for e in edges], dtype=float)
    return np.diff(covered) / _NS


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
                      calendar=None) -> pd.DataFrame:
    """COLUMNS, one row per device and park-local day in [start, end) (start a local midnight; the last day ends
    at `end`).  points: the devices' current readings (series, ts, value) from a gap limit before `start`."""
    from collectors.bracelet import DEFAULT_CALENDAR, IDLE, OFF, RUNNING, UNKNOWN, states

    calendar = calendar or DEFAULT_CALENDAR
    days = pd.date_range(start, end, freq="D", inclusive="left")
    edges = np.array([_ns(d) for d in days] + [_ns(end)], dtype=np.int64)
    elapsed_h = np.diff(edges) / _NS / 3600
    planned = [(_ns(a), _ns(b)) for a, b in calendar.planned(start, end)]
    p0 = np.array([a for a, _ in planned], dtype=np.int64)
    p1 = np.array([b for _, b in planned], dtype=np.int64)
    planned_h = _per_day(p0, p1, edges) / 3600
    by_series = dict(tuple(points.groupby("series"))) if len(points) else {}
    empty = pd.DataFrame({"ts": pd.Series([], dtype="datetime64[ns, UTC]"), "value": pd.Series([], dtype=float)})
    frames = []
    for d in devices:
        runs = states(by_series.get(d.id, empty), d, start, end)
        s = runs["start"].map(_ns).to_numpy(dtype=np.int64) if len(runs) else np.zeros(0, np.int64)
        e = runs["end"].map(_ns).to_numpy(dtype=np.int64) if len(runs) else np.zeros(0, np.int64)
        hours = {st: _per_day(s[(runs["state"] == st).to_numpy()], e[(runs["state"] == st).to_numpy()], edges) / 3600
                 for st in (RUNNING, IDLE, OFF, UNKNOWN)}
        run = (runs["state"] == RUNNING).to_numpy()
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
