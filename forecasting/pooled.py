"""One gradient-boosting quantile model POOLED across many daily series (every enterprise of a park), trained once
per forecast origin instead of five models per series and origin.

Why: the nightly job forecasts hundreds of daily series to the year end; per series, the five quantile models at
every backtest origin cost about 0.7 CPU-seconds a fit (docs/benchmarks.md, forecasting). Pooled, one origin costs
five fits on all series' rows together (about a second each), whatever the number of enterprises.

The model (`gradient_boosting_pooled`): each series is scaled by its level (the mean of its last 28 days before
the origin), so one model learns the shape of all of them.  Features per day: the calendar (weekday, weekend,
statutory holiday, make-up working day 调休, day off, month), the series' own recent profile (its scaled mean over
the last 8 weeks on the same weekday, and on days of the same class, day off or working day) and the log of its
level.  No lags: a forecast to the year end is direct, and every lag would have to be at least the horizon (up to
a year), which a year of history cannot train.  Quantile loss, one model per quantile (2.5, 10, 50, 90, 97.5 %);
the median learns from all the history, the interval quantiles from all but the last 4 weeks, which then calibrate
each series' intervals (split-conformal, CQR, in the series' own scaled units) as in `models.GradientBoosting`.

Nothing after an origin reaches the model fitted at it: the features, the level and the training rows are taken
from the history strictly before the origin.  The per-series backtest scores the pooled model exactly like every
other candidate (`Precomputed` serves its forecast at each origin).
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from forecasting.calendar import calendar_features
from forecasting.models import QUANTILES, Model, _frame, future_index
from forecasting.series import fill_for_fit

NAME = "gradient_boosting_pooled"
LEVEL_DAYS = 28
PROFILE_DAYS = 56
CALIBRATION_DAYS = 28
MIN_DAYS = 28  # a series with less history before an origin is left out of that origin (and not forecast by it)


@functools.lru_cache(maxsize=64)
def _calendar_days(first: pd.Timestamp, days: int) -> pd.DataFrame:
    index = pd.date_range(first, periods=days, freq="D")
    cal = calendar_features(index)
    out = cal[["weekday", "weekend", "holiday", "makeup_workday", "day_off"]].astype(float)
    out["month"] = index.month.to_numpy(dtype=float)
    return out


def _calendar(index: pd.DatetimeIndex) -> pd.DataFrame:
    """Calendar features of a daily index (memoised: every series of a park shares its days)."""
    return _calendar_days(index[0], len(index))


def _rows(z: np.ndarray, cal: pd.DataFrame, hist_cal: pd.DataFrame, hz: np.ndarray, level: float) -> np.ndarray:
    """Feature matrix for the days of `cal`, from the scaled recent history `hz` with calendar `hist_cal`."""
    wd_hist, off_hist = hist_cal["weekday"].to_numpy(), hist_cal["day_off"].to_numpy()
    mean = float(np.mean(hz)) if len(hz) else 1.0
    by_wd = np.array([hz[wd_hist == d].mean() if (wd_hist == d).any() else mean for d in range(7)])
    by_off = np.array([hz[off_hist == c].mean() if (off_hist == c).any() else mean for c in (0, 1)])
    wd, off = cal["weekday"].to_numpy().astype(int), cal["day_off"].to_numpy().astype(int)
    extra = np.column_stack([by_wd[wd], by_off[off], np.full(len(cal), math.log10(level))])
    return np.column_stack([cal.to_numpy(), extra])


def _prepare(y: pd.Series, cutoff: pd.Timestamp, window_days: int):
    """(scaled history, its features, level, history index) of `y` before `cutoff`, or None when too short."""
    hist = y[y.index < cutoff]
    hist = hist.loc[hist.first_valid_index():] if hist.notna().any() else hist.iloc[:0]
    if hist.notna().sum() < MIN_DAYS:
        return None
    hist = fill_for_fit(hist.iloc[-window_days:])
    values = hist.to_numpy(dtype=float)
    level = float(np.mean(values[-LEVEL_DAYS:]))
    if not np.isfinite(level) or level <= 0:
        return None
    z = values / level
    cal = _calendar(hist.index)
    recent = slice(-PROFILE_DAYS, None)
    x = _rows(z, cal, cal.iloc[recent], z[recent], level)
    return z, x, level, hist.index, cal.iloc[recent]


def pooled_forecasts(series: dict[str, pd.Series], horizon: int, cutoff: pd.Timestamp, max_iter: int = 50,
                     window_days: int = 365) -> dict[str, pd.DataFrame]:
    """Fit the pooled quantile models on every series' daily history before `cutoff` and forecast `horizon` days
    from it, per series key (series too short or without a positive level are left out)."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    prepared = {k: p for k, y in series.items() if (p := _prepare(y, cutoff, window_days)) is not None}
    if not prepared:
        return {}
    xs, zs, fit_rows = [], [], []
    for z, x, *_ in prepared.values():
        xs.append(x)
        zs.append(z)
        keep = np.ones(len(z), dtype=bool)
        keep[-min(CALIBRATION_DAYS, len(z) // 4):] = False
        fit_rows.append(keep)
    x_all, z_all, older = np.vstack(xs), np.concatenate(zs), np.concatenate(fit_rows)
    models = {}
    with threadpool_limits(1):
        for q in QUANTILES:
            reg = HistGradientBoostingRegressor(loss="quantile", quantile=q, max_iter=max_iter, learning_rate=0.1,
                                                max_leaf_nodes=31, early_stopping=False, random_state=0)
            rows = slice(None) if q == 0.5 else older
            models[q] = reg.fit(x_all[rows], z_all[rows])
        held_all = {q: m.predict(x_all[~older]) for q, m in models.items() if q != 0.5}
    # every series' future rows in one matrix: one predict per quantile model
    fidx = {k: future_index(index, horizon) for k, (_z, _x, _l, index, _c) in prepared.items()}
    fx = np.vstack([_rows(z, _calendar(fidx[k]), recent_cal, z[-PROFILE_DAYS:], level)
                    for k, (z, _x, level, _i, recent_cal) in prepared.items()])
    with threadpool_limits(1):
        pred_all = {q: m.predict(fx) for q, m in models.items()}
    out: dict[str, pd.DataFrame] = {}
    start = 0
    for i, (key, (z, _x, level, _index, _c)) in enumerate(prepared.items()):
        n_cal = int((~fit_rows[i]).sum())
        held = {q: v[start:start + n_cal] for q, v in held_all.items()}
        start += n_cal
        truth = z[-n_cal:]
        pred = {q: v[i * horizon:(i + 1) * horizon] for q, v in pred_all.items()}
        for lo, hi, lvl in ((0.1, 0.9, 0.8), (0.025, 0.975, 0.95)):
            score = np.maximum(held[lo] - truth, truth - held[hi])
            rank = min(math.ceil((n_cal + 1) * lvl) / n_cal, 1.0)
            widen = float(np.quantile(score, rank))
            pred[lo], pred[hi] = pred[lo] - widen, pred[hi] + widen
        out[key] = _frame(fidx[key], pred[0.5] * level, {q: v * level for q, v in pred.items()})
    return out


class Precomputed(Model):
    """A candidate whose forecasts were made beforehand (by the pooled model) for given origins: `fit(train)`
    looks up the forecast made at the day after `train` ends; an origin it has none for is an error (the backtest
    reports the candidate as unable to fit, like any other)."""

    baseline = False

    def __init__(self, name: str, frames: dict[pd.Timestamp, pd.DataFrame]) -> None:
        self.name, self.frames = name, frames

    def fit(self, y: pd.Series) -> Precomputed:
        cutoff = future_index(y.index, 1)[0]
        if cutoff not in self.frames:
            raise ValueError(f"{self.name}: no pooled forecast from {cutoff.isoformat()} (the series was too short "
                             f"or without a positive level there)")
        self._f = self.frames[cutoff]
        return self

    def predict(self, horizon: int) -> pd.DataFrame:
        if horizon > len(self._f):
            raise ValueError(f"{self.name} was made for {len(self._f)} steps, asked for {horizon}")
        return self._f.iloc[:horizon]
