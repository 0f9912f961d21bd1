"""Quota burn-down: worked examples, the correlation assumption, and ordering properties."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forecasting.quota import Z80, burn_down, simulate_paths


def _days(start: str, n: int) -> pd.DatetimeIndex:
    return pd.date_range(start, periods=n, freq="D")


def _fc(start: str, p50, width=0.0) -> pd.DataFrame:
    p50 = np.asarray(p50, dtype=float)
    return pd.DataFrame({"p50": p50, "lo80": p50 - width, "hi80": p50 + width}, index=_days(start, len(p50)))


def test_worked_example_exact_forecast():
    # 10 days of 1 t, then 5 days forecast at 2 t with no uncertainty: year end 20 t.
    ytd = pd.Series(1.0, index=_days("2026-12-17", 10))
    fc = _fc("2026-12-27", [2.0] * 5)
    b = burn_down(ytd, fc, allocation_t=15.0)
    assert b.ytd_t == 10 and b.year_end_p50_t == pytest.approx(20) and b.year_end_p97_5_t == pytest.approx(20)
    # cumulative 12, 14, 16: the allowance runs out on the third forecast day
    assert b.runs_out_p50 == dt.date(2026, 12, 29) == b.runs_out_p90
    assert b.heading_for_deficit
    ok = burn_down(ytd, fc, allocation_t=25.0)
    assert ok.runs_out_p50 is None and not ok.heading_for_deficit
    spent = burn_down(ytd, fc, allocation_t=5.0)
    assert spent.runs_out_p50 == dt.date(2026, 12, 21)  # already in the year-to-date data


def test_independent_days_sum_like_sqrt_n_and_correlated_days_spread_wider():
    n, sigma = 100, 1.0
    fc = _fc("2026-09-23", [10.0] * n, width=Z80 * sigma)
    ytd = pd.Series(5.0, index=_days("2026-09-13", 10))
    indep = burn_down(ytd, fc, 1e9, rho=0.0, paths=20000)
    assert indep.year_end_p90_t - indep.year_end_p50_t == pytest.approx(Z80 * sigma * np.sqrt(n), rel=0.05)
    corr = burn_down(ytd, fc, 1e9, rho=0.8, paths=20000)
    # AR(1) variance of a sum: n * (1 + rho) / (1 - rho) approximately -> 3x the sd for rho 0.8
    assert (corr.year_end_p90_t - corr.year_end_p50_t) > 2.5 * (indep.year_end_p90_t - indep.year_end_p50_t)
    # never as wide as adding the daily p90s (perfect correlation) unless rho -> 1
    assert corr.year_end_p90_t - corr.year_end_p50_t < Z80 * sigma * n
    assert "rho = 0.80" in corr.assumption


def test_p90_runs_out_no_later_than_p50():
    fc = _fc("2026-07-01", np.full(184, 10.0), width=4.0)
    ytd = pd.Series(10.0, index=_days("2026-01-01", 181))
    b = burn_down(ytd, fc, allocation_t=3500.0, rho=0.5)
    assert b.runs_out_p50 is not None and b.runs_out_p90 is not None
    assert b.runs_out_p90 <= b.runs_out_p50
    assert b.runs_out_p50 == dt.date(2026, 12, 16)  # 3500 / 10 = 350 days: day 350 of 2026 is 16 December


def test_forecast_must_follow_the_year_to_date():
    ytd = pd.Series(1.0, index=_days("2026-12-01", 5))
    with pytest.raises(ValueError, match="day after"):
        burn_down(ytd, _fc("2026-12-10", [1.0]), 10.0)
    with pytest.raises(ValueError, match="missing days"):
        burn_down(pd.Series([1.0, np.nan], index=_days("2026-12-01", 2)), _fc("2026-12-03", [1.0]), 10.0)


@settings(max_examples=30, deadline=None)
@given(level=st.floats(0, 100), width=st.floats(0, 50), rho=st.floats(-0.9, 0.95), n=st.integers(1, 60),
       ytd=st.floats(0, 1e4))
def test_year_end_quantiles_are_ordered_and_never_below_the_year_to_date(level, width, rho, n, ytd):
    fc = _fc("2026-11-01", np.full(n, level), width=width)
    b = burn_down(pd.Series([ytd], index=_days("2026-10-31", 1)), fc, 1e5, rho=rho, paths=500)
    q = [b.year_end_p2_5_t, b.year_end_p10_t, b.year_end_p50_t, b.year_end_p90_t, b.year_end_p97_5_t]
    assert q == sorted(q) and q[0] >= ytd - 1e-9
    paths = simulate_paths(fc, rho, 50)
    assert paths.shape == (50, n) and (paths >= 0).all()


def test_burn_down_from_a_daily_forecast_result_takes_rho_from_its_backtest():
    from forecasting.forecast import forecast_series

    idx = pd.date_range("2026-01-01", periods=240, freq="D", tz="Asia/Shanghai")
    rng = np.random.default_rng(4)
    daily = pd.Series(10 + 3 * (idx.day_of_week < 5) + rng.normal(0, 0.5, len(idx)), index=idx)
    result = forecast_series(daily, 365 - 240, origins=2)
    assert result.index[-1].startswith("2026-12-31")
    ytd = pd.Series(daily.to_numpy(), index=idx.tz_localize(None))
    from forecasting.quota import burn_down_from_forecast

    b = burn_down_from_forecast(ytd, result, allocation_t=4000.0)
    acf = result.backtest.score(result.model).residual_acf1
    assert b.rho == pytest.approx(min(max(acf, 0.0), 0.95))
    assert b.year_end_p10_t < b.year_end_p50_t < b.year_end_p90_t
    assert b.ytd_t == pytest.approx(daily.sum())
    assert b.heading_for_deficit == (b.year_end_p50_t > 4000.0)


@settings(max_examples=40, deadline=None)
@given(ytd=st.lists(st.floats(0, 50), min_size=0, max_size=20), p50=st.lists(st.floats(-5, 50), min_size=1,
                                                                              max_size=40),
       width=st.floats(0, 30), rho=st.floats(-0.9, 0.95))
def test_the_fan_is_monotone_ordered_and_starts_at_the_actual_year_to_date(ytd, p50, width, rho):
    """Each quantile's cumulative path never decreases, the quantiles never cross, the first projected day lies at
    or above the actual year to date, and the last day's quantiles are the year-end figures."""
    ytd_s = pd.Series(ytd, index=_days("2026-12-01", len(ytd)), dtype=float)
    start = (pd.Timestamp("2026-12-01") + pd.Timedelta(days=len(ytd))).strftime("%Y-%m-%d")
    b = burn_down(ytd_s, _fc(start, p50, width), allocation_t=100.0, rho=rho, paths=300)
    fan = b.fan
    assert fan["day"][0] == start and len(fan["day"]) == len(p50)
    actual = float(sum(ytd))
    assert b.ytd_t == pytest.approx(actual)
    names = ["p2_5", "p10", "p50", "p90", "p97_5"]
    for name in names:
        path = np.asarray(fan[name])
        assert (np.diff(path) >= -1e-9).all() and path[0] >= actual - 1e-9
    for lo, hi in zip(names, names[1:], strict=False):
        assert (np.asarray(fan[lo]) <= np.asarray(fan[hi]) + 1e-9).all()
    assert fan["p50"][-1] == pytest.approx(b.year_end_p50_t) and fan["p90"][-1] == pytest.approx(b.year_end_p90_t)
