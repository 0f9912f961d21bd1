"""Candidate forecasting models behind one small interface: `fit(series)` then `predict(horizon)`.

A series is a pandas Series on a regular DatetimeIndex (hourly, 15-minute or daily) without gaps (the caller
fills gaps for fitting, see `forecasting.series`). `predict` returns a frame indexed by the next `horizon`
timestamps with the columns p50, lo80, hi80, lo95, hi95 (the median and the 80 % and 95 % central intervals).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from forecasting.calendar import calendar_features

COLUMNS = ["p50", "lo80", "hi80", "lo95", "hi95"]
QUANTILES = (0.025, 0.1, 0.5, 0.9, 0.975)  # lo95, lo80, p50, hi80, hi95


def steps_per_day(index: pd.DatetimeIndex) -> int:
    """Timestamps per day of a regular index (24 hourly, 96 at 15 minutes, 1 daily)."""
    step = _step(index)
    day = pd.Timedelta(days=1)
    if step >= day:
        return 1
    if day % step:
        raise ValueError(f"the series' interval {step} does not divide a day")
    return int(day // step)


def _step(index: pd.DatetimeIndex) -> pd.Timedelta:
    if index.freq is not None:
        return pd.Timedelta(index.freq)
    if len(index) < 2:
        raise ValueError("a series needs at least two timestamps to have an interval")
    return pd.Timedelta(index[1] - index[0])


def seasons(index: pd.DatetimeIndex) -> tuple[int, int]:
    """(daily season, weekly season) in steps: (24, 168) hourly, (1, 7) daily."""
    spd = steps_per_day(index)
    return spd, 7 * spd


def mase_season(index: pd.DatetimeIndex) -> int:
    """The season of the MASE scale: one day for intra-day series, one week for daily series."""
    spd = steps_per_day(index)
    return spd if spd > 1 else 7


def future_index(index: pd.DatetimeIndex, horizon: int) -> pd.DatetimeIndex:
    step = _step(index)
    return pd.date_range(index[-1] + step, periods=horizon, freq=step, tz=index.tz)


def _frame(index: pd.DatetimeIndex, p50: np.ndarray, q: dict[float, np.ndarray]) -> pd.DataFrame:
    """Forecast frame. The median is kept as given; the intervals are widened where needed so that
    lo95 <= lo80 <= p50 <= hi80 <= hi95 (crossing quantile estimates, or a biased model whose errors all lie on
    one side: its interval then reaches from the point forecast to where the errors say)."""
    lo80 = np.minimum(q[0.1], p50)
    hi80 = np.maximum(q[0.9], p50)
    lo95 = np.minimum(q[0.025], lo80)
    hi95 = np.maximum(q[0.975], hi80)
    return pd.DataFrame({"p50": p50, "lo80": lo80, "hi80": hi80, "lo95": lo95, "hi95": hi95}, index=index)


def _residual_quantiles(errors: np.ndarray) -> dict[float, float]:
    errors = errors[np.isfinite(errors)]
    if len(errors) == 0:
        return {q: 0.0 for q in QUANTILES if q != 0.5}
    qs = [q for q in QUANTILES if q != 0.5]
    return dict(zip(qs, (float(v) for v in np.quantile(errors, qs)), strict=True))  # one sort for all four


class Model:
    """Base: `name`, `fit`, `predict`. `baseline` marks the models a fallback may use."""

    name = "model"
    baseline = False

    def fit(self, y: pd.Series) -> Model:  # pragma: no cover - interface
        raise NotImplementedError

    def predict(self, horizon: int) -> pd.DataFrame:  # pragma: no cover - interface
        raise NotImplementedError


class SeasonalNaive(Model):
    """y(t + h) = y(t + h - k m), k = ceil(h / m) seasons back. Intervals: empirical quantiles of the same
    k-season differences over the last `window_seasons` weeks of the training data (no normality assumed)."""

    baseline = True

    def __init__(self, season: str = "day", window_days: int = 56) -> None:
        if season not in ("day", "week"):
            raise ValueError("season is 'day' or 'week'")
        self.season, self.window_days = season, window_days
        self.name = f"seasonal_naive_{'daily' if season == 'day' else 'weekly'}"

    def fit(self, y: pd.Series) -> SeasonalNaive:
        daily, weekly = seasons(y.index)
        self.m = daily if self.season == "day" else weekly
        if len(y) < self.m:
            raise ValueError(f"{self.name}: needs at least one season ({self.m} points), has {len(y)}")
        self.y = y.to_numpy(dtype=float)
        self.index = y.index
        self._window = self.window_days * steps_per_day(y.index)
        self._q: dict[int, dict[float, float]] = {}
        return self

    def _quantiles(self, k: int) -> dict[float, float]:
        if k not in self._q:
            lag = k * self.m
            y = self.y[-(self._window + lag):]
            self._q[k] = _residual_quantiles(y[lag:] - y[:-lag]) if len(y) > lag else _residual_quantiles(
                np.array([]))
        return self._q[k]

    def predict(self, horizon: int) -> pd.DataFrame:
        n, m = len(self.y), self.m
        h = np.arange(1, horizon + 1)
        k = np.ceil(h / m).astype(int)
        src = n - 1 + h - k * m  # >= n - m >= 0
        p50 = self.y[src]
        q = {qq: np.empty(horizon) for qq in QUANTILES if qq != 0.5}
        for kk in np.unique(k):
            rq = self._quantiles(int(kk))
            for qq in q:
                q[qq][k == kk] = p50[k == kk] + rq[qq]
        return _frame(future_index(self.index, horizon), p50, q)


class SimilarDay(Model):
    """The median of the last `days` days of the same class at the same time of day. Class: a day off (statutory
    holiday or non-working weekend) or the weekday of a working day; a make-up working day (调休) falls back to
    the working days. Intervals: empirical quantiles of this rule's day-ahead errors over the last 4 weeks."""

    name = "similar_day"
    baseline = True

    def __init__(self, days: int = 4, calibration_days: int = 28) -> None:
        self.days, self.calibration_days = days, calibration_days

    @staticmethod
    def _classes(index: pd.DatetimeIndex) -> np.ndarray:
        cal = calendar_features(index)
        key = np.where(cal["day_off"] == 1, 7, cal["weekday"])
        return np.where((cal["makeup_workday"] == 1), 8, key)

    def fit(self, y: pd.Series) -> SimilarDay:
        self.index = y.index
        self.spd = steps_per_day(y.index)
        if len(y) < 7 * self.spd:
            raise ValueError(f"{self.name}: needs at least a week of data, has {len(y)} points")
        self.y = y.to_numpy(dtype=float)
        self.cls = self._classes(y.index)
        # day-ahead errors of the rule itself over the last calibration days
        n = len(self.y)
        start = max(n - self.calibration_days * self.spd, 7 * self.spd)
        targets = np.arange(start, n)
        if len(targets):
            pred = self._rule(targets, self.cls[targets], history_end=np.maximum(targets - self.spd + 1, 0))
            self._rq = _residual_quantiles(self.y[targets] - pred)
        else:
            self._rq = _residual_quantiles(np.array([]))
        return self

    def _rule(self, targets: np.ndarray, classes: np.ndarray, history_end: np.ndarray | int) -> np.ndarray:
        """For each target position (may lie beyond the data), the median of the last `days` values at the same
        slot of the day on earlier days of its class, using only positions < history_end."""
        spd, out = self.spd, np.empty(len(targets))
        ends = np.broadcast_to(history_end, targets.shape)
        for i, (t, c, end) in enumerate(zip(targets, classes, ends, strict=True)):
            # candidate positions: same slot, whole days back, before the history end
            k_min = (t - end) // spd + 1  # the fewest whole days back that land before the history end
            cand = np.arange(t - k_min * spd, -1, -spd)
            same = cand[self.cls[cand] == c][: self.days]
            if len(same) < self.days:  # class too rare (a make-up day, a new holiday): any day of the same kind
                kind = self.cls[cand] == 7 if c == 7 else self.cls[cand] != 7
                same = cand[kind][: self.days]
            if len(same) == 0:
                same = cand[: self.days]
            out[i] = np.median(self.y[same]) if len(same) else np.nan
        return out

    def predict(self, horizon: int) -> pd.DataFrame:
        idx = future_index(self.index, horizon)
        n = len(self.y)
        targets = np.arange(n, n + horizon)
        p50 = self._rule(targets, self._classes(idx), history_end=n)
        q = {qq: p50 + v for qq, v in self._rq.items()}
        return _frame(idx, p50, q)


class ExponentialSmoothing(Model):
    """statsmodels ETS(A,N,A): additive error, no trend, additive daily season (weekly for daily data), fitted on
    the last `window_days` days; its analytic prediction intervals. No calendar regressors (the calendar enters
    through similar-day and gradient boosting).  `initialization="heuristic"` takes the initial level and season
    from the first seasons instead of estimating them with the smoothing parameters (two parameters to optimise
    instead of m + 3: about five times cheaper; the nightly job's daily series use it)."""

    name = "ets"

    def __init__(self, window_days: int = 28, daily_window_days: int = 730,
                 initialization: str = "estimated") -> None:
        self.window_days, self.daily_window_days = window_days, daily_window_days
        self.initialization = initialization

    def fit(self, y: pd.Series) -> ExponentialSmoothing:
        from statsmodels.tsa.exponential_smoothing.ets import ETSModel

        spd = steps_per_day(y.index)
        m = spd if spd > 1 else 7
        window = self.window_days * spd if spd > 1 else self.daily_window_days
        y = y.iloc[-window:]
        if len(y) < 3 * m:
            raise ValueError(f"{self.name}: needs at least three seasons ({3 * m} points), has {len(y)}")
        self.index = y.index
        values = y.to_numpy(dtype=float)
        with warnings.catch_warnings(), threadpool_limits(1):  # BLAS threads only contend on tiny problems
            warnings.simplefilter("ignore")
            model = ETSModel(pd.Series(values), error="add", trend=None, seasonal="add", seasonal_periods=m,
                             initialization_method=self.initialization)
            self.res = model.fit(disp=False, maxiter=200)
        return self

    def predict(self, horizon: int) -> pd.DataFrame:
        n = len(self.index)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pred = self.res.get_prediction(start=n, end=n + horizon - 1)
            f80 = pred.summary_frame(alpha=0.2)
            f95 = pred.summary_frame(alpha=0.05)
        p50 = f80["mean"].to_numpy()
        q = {0.1: f80["pi_lower"].to_numpy(), 0.9: f80["pi_upper"].to_numpy(),
             0.025: f95["pi_lower"].to_numpy(), 0.975: f95["pi_upper"].to_numpy()}
        return _frame(future_index(self.index, horizon), p50, q)


class GradientBoosting(Model):
    """scikit-learn HistGradientBoostingRegressor with quantile loss, one model per quantile (2.5, 10, 50, 90,
    97.5 %), on calendar features and lags. Direct strategy: every lag is at least the horizon rounded up to
    whole days, so one model serves every step and never needs a value after the forecast origin. The median
    is fitted on all the data; the interval quantiles on all but the last 4 weeks (at most a quarter of the
    data), and those weeks calibrate the intervals
    (conformalized quantile regression: each interval is widened, or narrowed, by the quantile of how far the
    held-out actuals fell outside it)."""

    name = "gradient_boosting"

    def __init__(self, horizon: int = 24, window_days: int = 365, max_iter: int = 50,
                 calibration_days: int = 28) -> None:
        self.horizon, self.window_days, self.max_iter = horizon, window_days, max_iter
        self.calibration_days = calibration_days

    def _lags(self, spd: int, n: int) -> list[int]:
        unit = spd if spd > 1 else 1
        first = math.ceil(self.horizon / unit) * unit
        week = 7 * spd
        lags = [first, first + unit, max(first, week), max(first, week) + week]
        return sorted({lag for lag in lags if lag <= n // 3})

    def _features(self, values: np.ndarray, index: pd.DatetimeIndex, lags: list[int], spd: int) -> pd.DataFrame:
        cal = calendar_features(index)
        x = cal.drop(columns=["calendar_known"]).astype(float)
        s = pd.Series(values)
        for lag in lags:
            x[f"lag_{lag}"] = s.shift(lag).to_numpy()
        if lags:
            # the level over the week before the earliest lag
            x["level"] = s.shift(lags[0]).rolling(7 * spd, min_periods=1).mean().to_numpy()
        return x

    def fit(self, y: pd.Series) -> GradientBoosting:
        from sklearn.ensemble import HistGradientBoostingRegressor

        spd = steps_per_day(y.index)
        y = y.iloc[-(self.window_days * spd):]
        if len(y) < 14 * spd:
            raise ValueError(f"{self.name}: needs at least two weeks of data, has {len(y)} points")
        self.index, self.spd = y.index, spd
        self.values = y.to_numpy(dtype=float)
        self.lags = self._lags(spd, len(y))
        x = self._features(self.values, y.index, self.lags, spd)
        start = self.lags[-1] if self.lags else 0
        x, target = x.iloc[start:], self.values[start:]
        self.columns = list(x.columns)
        # split conformal (CQR): fit on all but the last `calibration_days`, widen each interval by the
        # conformity quantile of the held-out days, since in-sample quantile fits are too narrow
        cal_n = min(self.calibration_days * spd, len(x) // 4)
        xa = x.to_numpy()
        self.models: dict[float, Callable] = {}
        for q in QUANTILES:  # one thread each: the backtest and the nightly job parallelise across series
            reg = HistGradientBoostingRegressor(loss="quantile", quantile=q, max_iter=self.max_iter,
                                                learning_rate=0.1, max_leaf_nodes=31, early_stopping=False,
                                                random_state=0)
            rows = slice(None) if q == 0.5 else slice(None, -cal_n)  # the median learns from the latest weeks
            with threadpool_limits(1):
                self.models[q] = reg.fit(xa[rows], target[rows])
        self.widen = {}
        with threadpool_limits(1):
            held = {q: m.predict(xa[-cal_n:]) for q, m in self.models.items() if q != 0.5}
        truth = target[-cal_n:]
        for lo, hi, level in ((0.1, 0.9, 0.8), (0.025, 0.975, 0.95)):
            score = np.maximum(held[lo] - truth, truth - held[hi])
            rank = min(math.ceil((cal_n + 1) * level) / cal_n, 1.0)
            self.widen[level] = float(np.quantile(score, rank))
        return self

    def predict(self, horizon: int) -> pd.DataFrame:
        if horizon > self.horizon:
            raise ValueError(f"{self.name} was fitted for a horizon of {self.horizon} steps, asked for {horizon}")
        idx = future_index(self.index, horizon)
        values = np.concatenate([self.values, np.full(horizon, np.nan)])
        full = self.index.append(idx)
        x = self._features(values, full, self.lags, self.spd).iloc[-horizon:]
        with threadpool_limits(1):
            out = {q: m.predict(x[self.columns].to_numpy()) for q, m in self.models.items()}
        for lo, hi, level in ((0.1, 0.9, 0.8), (0.025, 0.975, 0.95)):
            out[lo], out[hi] = out[lo] - self.widen[level], out[hi] + self.widen[level]
        return _frame(idx, out[0.5], out)


class LastValue(Model):
    """The last value carried forward: the fallback of last resort for a series shorter than a day. Intervals:
    empirical quantiles of its one-step changes scaled by sqrt(steps ahead) (a random walk); width 0 with
    fewer than three points, and the result says it is a fallback."""

    name = "last_value"
    baseline = True

    def fit(self, y: pd.Series) -> LastValue:
        if len(y) < 2:
            raise ValueError(f"{self.name}: needs at least two points to know the interval")
        self.index, self.last = y.index, float(y.iloc[-1])
        self._rq = _residual_quantiles(np.diff(y.to_numpy(dtype=float)))
        return self

    def predict(self, horizon: int) -> pd.DataFrame:
        p50 = np.full(horizon, self.last)
        root = np.sqrt(np.arange(1, horizon + 1))
        return _frame(future_index(self.index, horizon), p50, {q: p50 + v * root for q, v in self._rq.items()})


def candidates(horizon: int) -> list[Model]:
    """The candidate models, baselines first (the backtest prefers the earlier model on a tie)."""
    return [SeasonalNaive("day"), SeasonalNaive("week"), SimilarDay(), ExponentialSmoothing(),
            GradientBoosting(horizon=horizon)]


def baselines() -> list[Model]:
    return [SeasonalNaive("day"), SeasonalNaive("week"), SimilarDay(), LastValue()]
