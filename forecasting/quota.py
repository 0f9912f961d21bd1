"""Quota burn-down: where the year's emissions are heading against the allocation (pure maths, no I/O).

Inputs are on the quota plan's basis (t CO2e per day): the year-to-date daily emissions, a daily forecast to the
end of the year with its median and 80 % interval, and the allocation.

Summing daily quantiles: the p90 of a year-end total is NOT the sum of the daily p90s (that assumes every day
errs high together, perfectly correlated) nor the p90 of independent days (errors of a forecast are correlated:
a plant running hot this week runs hot next week). We simulate sample paths: each day's error is normal with the
spread of its 80 % interval, and errors follow an AR(1) process with lag-1 correlation `rho` across days
(`rho` from the backtest's errors, `Backtest` ModelScore.residual_acf1; 0 = independent, near 1 = one common
error). Daily emissions are clipped at zero. Totals and run-out dates are quantiles over the paths.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

Z80 = 1.2815515655446004  # standard normal quantile at 0.90
FAN = {0.025: "p2_5", 0.1: "p10", 0.5: "p50", 0.9: "p90", 0.975: "p97_5"}  # quantile -> name


@dataclass
class BurnDown:
    allocation_t: float
    ytd_t: float
    year_end_p10_t: float
    year_end_p50_t: float
    year_end_p90_t: float
    year_end_p2_5_t: float
    year_end_p97_5_t: float
    runs_out_p50: dt.date | None  # the day cumulative emissions reach the allocation, median path
    runs_out_p90: dt.date | None  # ... in the high (90th percentile) case: the earlier, pessimistic date
    heading_for_deficit: bool  # the median year-end projection exceeds the allocation
    rho: float
    paths: int
    assumption: str
    # the fan: per forecast day, quantiles of cumulative emissions over the paths (t CO2e); the last day's are
    # the year-end figures above
    fan: dict[str, list] | None = None  # day (ISO dates), p2_5, p10, p50, p90, p97_5

    def to_dict(self) -> dict:
        d = asdict(self)
        for k in ("runs_out_p50", "runs_out_p90"):
            d[k] = d[k].isoformat() if d[k] else None
        return d


def simulate_paths(forecast: pd.DataFrame, rho: float, paths: int = 2000, seed: int = 0) -> np.ndarray:
    """(paths, days) daily emissions: p50 + AR(1) normal errors scaled to each day's 80 % interval, clipped at 0.
    `forecast` has columns p50, lo80, hi80 (t CO2e per day)."""
    if not -1 < rho < 1:
        raise ValueError(f"rho must lie in (-1, 1), got {rho}")
    p50 = forecast["p50"].to_numpy(dtype=float)
    sigma = (forecast["hi80"].to_numpy(dtype=float) - forecast["lo80"].to_numpy(dtype=float)) / (2 * Z80)
    if (sigma < 0).any() or not np.isfinite(sigma).all() or not np.isfinite(p50).all():
        raise ValueError("the forecast's intervals must be finite with hi80 >= lo80")
    rng = np.random.default_rng(seed)
    n = len(p50)
    z = rng.standard_normal((paths, n))
    e = np.empty_like(z)
    if n:
        e[:, 0] = z[:, 0]
        scale = np.sqrt(1 - rho * rho)
        for d in range(1, n):  # stationary AR(1) with unit variance
            e[:, d] = rho * e[:, d - 1] + scale * z[:, d]
    return np.clip(p50 + sigma * e, 0.0, None)


def _first_crossing(dates: list[dt.date], cumulative: np.ndarray, allocation: float) -> dt.date | None:
    over = np.flatnonzero(cumulative >= allocation)
    return dates[int(over[0])] if len(over) else None


def burn_down(ytd: pd.Series, forecast: pd.DataFrame, allocation_t: float, rho: float = 0.5,
              paths: int = 2000, seed: int = 0) -> BurnDown:
    """Projected year-end emissions and run-out dates.

    ytd: daily t CO2e from 1 January, indexed by date; forecast: daily p50/lo80/hi80 from the day after the last
    ytd day to 31 December. The allowance "runs out" on the first day cumulative emissions reach the allocation.
    """
    if allocation_t < 0:
        raise ValueError("the allocation cannot be negative")
    ytd_days = [pd.Timestamp(d).date() for d in ytd.index]
    fc_days = [pd.Timestamp(d).date() for d in forecast.index]
    if ytd_days and fc_days and fc_days[0] != ytd_days[-1] + dt.timedelta(days=1):
        raise ValueError(f"the forecast must start the day after the year-to-date data ({ytd_days[-1]}), "
                         f"it starts {fc_days[0]}")
    if ytd.isna().any():
        raise ValueError("the year-to-date emissions have missing days; fill or flag them before projecting")
    sim = simulate_paths(forecast, rho, paths, seed)
    ytd_cum = np.cumsum(ytd.to_numpy(dtype=float))
    ytd_t = float(ytd_cum[-1]) if len(ytd_cum) else 0.0
    cum = ytd_t + np.cumsum(sim, axis=1)  # (paths, days), nondecreasing per path
    totals = cum[:, -1] if cum.shape[1] else np.full(paths, ytd_t)
    q = {p: float(np.quantile(totals, p)) for p in FAN}
    fan = {"day": [d.isoformat() for d in fc_days]}
    for p, name in FAN.items():
        fan[name] = [float(v) for v in np.quantile(cum, p, axis=0)] if cum.shape[1] else []
    # a day's p-quantile over paths of a nondecreasing cumulative is itself nondecreasing over days
    dates = ytd_days + fc_days
    med = np.concatenate([ytd_cum, np.quantile(cum, 0.5, axis=0)]) if cum.shape[1] else ytd_cum
    high = np.concatenate([ytd_cum, np.quantile(cum, 0.9, axis=0)]) if cum.shape[1] else ytd_cum
    return BurnDown(
        allocation_t=float(allocation_t), ytd_t=ytd_t, year_end_p10_t=q[0.1], year_end_p50_t=q[0.5],
        year_end_p90_t=q[0.9], year_end_p2_5_t=q[0.025], year_end_p97_5_t=q[0.975],
        runs_out_p50=_first_crossing(dates, med, allocation_t),
        runs_out_p90=_first_crossing(dates, high, allocation_t),
        heading_for_deficit=q[0.5] > allocation_t, rho=float(rho), paths=int(paths),
        assumption=(f"daily errors normal with the spread of each day's 80 % interval, AR(1) correlated across "
                    f"days with rho = {rho:.2f}; daily emissions clipped at 0; {paths} simulated paths"), fan=fan)


def burn_down_from_forecast(ytd: pd.Series, result, allocation_t: float, paths: int = 2000,
                            seed: int = 0) -> BurnDown:
    """`burn_down` for a daily `forecasting.forecast.ForecastResult`: rho is the lag-1 autocorrelation of its
    model's backtest errors (0.5 when the result has no backtest, e.g. a fallback; said in the assumption)."""
    score = None
    if result.backtest is not None and not result.fallback:
        score = result.backtest.score(result.model)
    acf = score.residual_acf1 if score is not None else None
    rho = 0.5 if acf is None else float(np.clip(acf, 0.0, 0.95))
    frame = result.frame()
    frame.index = pd.DatetimeIndex(frame.index).tz_localize(None).normalize() if frame.index.tz is None else (
        pd.DatetimeIndex(frame.index).tz_convert("Asia/Shanghai").tz_localize(None).normalize())
    out = burn_down(ytd, frame, allocation_t, rho=rho, paths=paths, seed=seed)
    if acf is None:
        out.assumption += " (rho 0.5 assumed: no backtest of this model)"
    else:
        out.assumption += f" (rho from the backtest errors of {result.model}, clipped to [0, 0.95])"
    return out
