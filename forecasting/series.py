"""Series checks and the gap filling used for fitting (never for scoring).

A gap is a missing value (NaN) on the regular grid. Models need a complete history, so for FITTING a gap is
filled with the value one week earlier, else one day earlier, else by linear interpolation; the backtest never
scores a forecast against a filled value, and the result says how many points were filled.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from forecasting.models import steps_per_day


class SeriesError(ValueError):
    """A series no model can be fitted on (too short, no values); the message says what to give instead."""


def regular(y: pd.Series) -> pd.Series:
    """The series on its regular grid (missing timestamps become NaN), float, with `freq` set."""
    if not isinstance(y.index, pd.DatetimeIndex):
        raise SeriesError("the series needs a time index")
    if not y.index.is_monotonic_increasing or y.index.has_duplicates:
        raise SeriesError("the series' timestamps must strictly increase")
    if len(y) < 2:
        raise SeriesError(f"the series has {len(y)} point(s); a forecast needs at least two weeks of data")
    step = pd.Series(y.index).diff().dropna().min()
    grid = pd.date_range(y.index[0], y.index[-1], freq=step)
    out = y.astype(float).reindex(grid)
    out.index.freq = step
    return out


def fill_for_fit(y: pd.Series) -> pd.Series:
    """Gaps filled for fitting: a week back, else a day back, else linear interpolation, else the median."""
    if not y.isna().any():
        return y
    spd = steps_per_day(y.index)
    out = y.copy()
    for lag in (7 * spd, spd):
        if out.isna().any():
            out = out.fillna(out.shift(lag))
    if out.isna().any():
        out = out.interpolate(limit_direction="both")
    return out.fillna(float(np.nanmedian(y)) if y.notna().any() else 0.0)


def problems(y: pd.Series) -> list[str]:
    """Sentences on what makes this series hard to forecast (empty when none): all zero, constant, long gaps,
    a level change in the last quarter (a new line, a replaced meter)."""
    out: list[str] = []
    values = y.to_numpy(dtype=float)
    known = values[np.isfinite(values)]
    spd = steps_per_day(y.index)
    if len(known) == 0:
        return ["the series has no values"]
    if np.all(known == 0):
        out.append("the series is all zero")
    elif np.all(known == known[0]):
        out.append("the series is constant")
    missing = ~np.isfinite(values)
    if missing.any():
        runs = np.diff(np.flatnonzero(np.diff(np.concatenate([[0], missing.astype(int), [0]]))))[::2]
        longest = int(runs.max()) if len(runs) else 0
        out.append(f"{int(missing.sum())} missing point(s) filled for fitting (longest gap {longest} steps); "
                   "they are not scored")
        if longest > 7 * spd:
            out.append(f"a gap longer than a week ({longest} steps)")
    n = len(known)
    if n >= 8 * 7 * spd:
        recent, before = known[-n // 4:], known[: -n // 4]
        med_r, med_b = float(np.median(recent)), float(np.median(before))
        spread = float(np.median(np.abs(before - med_b))) or float(np.std(before)) or 1.0
        if abs(med_r - med_b) > 3 * spread and abs(med_r - med_b) > 0.25 * max(abs(med_b), 1e-9):
            out.append(f"the level changed in the last quarter of the series (median {med_b:.4g} -> {med_r:.4g}): "
                       "a new production line or a replaced meter? Older history may mislead the models")
    return out


def level_change(y: pd.Series) -> int | None:
    """The position where the level changed in the last half of the series (a new production line, a replaced
    meter), or None: a point that splits the known values into two medians further apart than
    three median absolute deviations of the earlier part and a quarter of its level, and, of those, the one that
    leaves both parts least spread around their medians.  The data after it must span two weeks (a change
    in the last two weeks cannot be told from a bad week yet: `problems` still names it)."""
    values = y.to_numpy(dtype=float)
    n, spd = len(values), steps_per_day(y.index)
    if np.isfinite(values).sum() < 8 * 7 * spd:
        return None
    best, best_cost = None, np.inf
    for p in range(n - n // 2, n - 14 * spd + 1, max(1, n // 2 // 400)):  # at most ~400 candidate splits
        before, after = values[:p], values[p:]
        before, after = before[np.isfinite(before)], after[np.isfinite(after)]
        if len(after) < 7 * spd or len(before) == 0:
            continue
        med_b, med_a = float(np.median(before)), float(np.median(after))
        spread = float(np.median(np.abs(before - med_b))) or float(np.std(before)) or 1.0
        gap = abs(med_a - med_b)
        # the split that leaves the two parts least spread around their own medians (a change point)
        cost = float(np.abs(before - med_b).sum() + np.abs(after - med_a).sum())
        if gap > 3 * spread and gap > 0.25 * max(abs(med_b), 1e-9) and cost < best_cost:
            best, best_cost = p, cost
    return best
