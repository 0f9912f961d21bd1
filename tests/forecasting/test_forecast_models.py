"""Candidate models: interface, worked examples, and properties (periodic series, interval coverage, leakage)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forecasting.backtest import backtest, forecast_at
from forecasting.models import (
    COLUMNS,
    ExponentialSmoothing,
    GradientBoosting,
    LastValue,
    SeasonalNaive,
    SimilarDay,
)

FAST = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def hourly(values, start="2026-03-02") -> pd.Series:
    idx = pd.date_range(start, periods=len(values), freq="h", tz="Asia/Shanghai")
    return pd.Series(np.asarray(values, dtype=float), index=idx)


@FAST
@given(pattern=st.lists(st.floats(0, 1e4, allow_nan=False), min_size=24, max_size=24),
       days=st.integers(3, 20), horizon=st.integers(1, 72))
def test_seasonal_naive_on_a_periodic_series_has_zero_error(pattern, days, horizon):
    y = hourly(np.tile(pattern, days + 4))
    train, future = y.iloc[: 24 * days], y.iloc[24 * days: 24 * days + horizon]
    f = SeasonalNaive("day").fit(train).predict(horizon)
    np.testing.assert_array_equal(f["p50"].to_numpy(), future.to_numpy())
    np.testing.assert_array_equal(f["lo95"].to_numpy(), f["hi95"].to_numpy())  # no error seen, no width
    assert list(f.columns) == COLUMNS and f.index.equals(future.index)


@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 2**31 - 1))
def test_seasonal_naive_intervals_cover_near_nominal_on_iid_noise(seed):
    rng = np.random.default_rng(seed)
    n = 24 * 7 * 20
    signal = 100 + 30 * np.sin(2 * np.pi * np.arange(n) / 24)
    y = hourly(signal + rng.normal(0, 5, n))
    bt = backtest(y, 24, origins=40, models=lambda h: [SeasonalNaive("day")])
    s = bt.score("seasonal_naive_daily")
    assert s.points == 960
    assert abs(s.coverage_80 - 0.80) < 0.07, s.coverage_80
    assert abs(s.coverage_95 - 0.95) < 0.04, s.coverage_95


def _profile(n_days: int, seed: int = 0, start="2026-01-05") -> pd.Series:
    """Working days 10-20 kWh by hour, days off 2 kWh, plus a little noise (Chinese calendar)."""
    from forecasting.calendar import calendar_features

    idx = pd.date_range(start, periods=24 * n_days, freq="h", tz="Asia/Shanghai")
    cal = calendar_features(idx)
    base = np.where(cal["day_off"] == 1, 2.0, 10 + 10 * ((cal["hour"] >= 8) & (cal["hour"] < 20)))
    return pd.Series(base + np.random.default_rng(seed).normal(0, 0.1, len(idx)), index=idx)


def test_similar_day_uses_working_days_for_a_make_up_saturday_and_days_off_for_the_festival():
    y = _profile(40)  # 5 Jan .. 13 Feb 2026
    f = SimilarDay().fit(y).predict(48)  # Sat 14 Feb (make-up working day), Sun 15 Feb (Spring Festival)
    sat, sun = f["p50"].iloc[:24].to_numpy(), f["p50"].iloc[24:].to_numpy()
    assert np.allclose(sat[10], 20, atol=0.5) and np.allclose(sat[2], 10, atol=0.5)
    assert np.allclose(sun, 2, atol=0.5)
    # seasonal naive (weekly) would have copied last Saturday's day off
    weekly = SeasonalNaive("week").fit(y).predict(48)
    assert weekly["p50"].iloc[10] < 5


@pytest.mark.parametrize("model", [SeasonalNaive("day"), SeasonalNaive("week"), SimilarDay(), LastValue(),
                                   ExponentialSmoothing(), GradientBoosting(horizon=24)], ids=lambda m: m.name)
def test_forecast_at_an_origin_never_sees_data_after_it(model):
    y = _profile(35, seed=1)
    origin = 24 * 30 + 5
    before = forecast_at(y, origin, 24, model)
    perturbed = y.copy()
    perturbed.iloc[origin:] = perturbed.iloc[origin:] * 7 + 1000
    after = forecast_at(perturbed, origin, 24, model)
    pd.testing.assert_frame_equal(before, after)
    assert (before["lo95"] <= before["lo80"]).all() and (before["lo80"] <= before["p50"]).all()
    assert (before["p50"] <= before["hi80"]).all() and (before["hi80"] <= before["hi95"]).all()


@settings(max_examples=10, deadline=None)
@given(origin_day=st.integers(15, 27), hour=st.integers(0, 23), factor=st.floats(-5, 5))
def test_leakage_property_for_the_fast_models(origin_day, hour, factor):
    y = _profile(30, seed=2)
    origin = 24 * origin_day + hour
    for model in (SeasonalNaive("day"), SeasonalNaive("week"), SimilarDay()):
        a = forecast_at(y, origin, 24, model)
        z = y.copy()
        z.iloc[origin:] = factor * z.iloc[origin:].to_numpy()[::-1]
        pd.testing.assert_frame_equal(a, forecast_at(z, origin, 24, model))


def test_gradient_boosting_learns_the_calendar_and_refuses_a_longer_horizon():
    y = _profile(60, seed=3)
    gb = GradientBoosting(horizon=24).fit(y.iloc[:-24])
    f = gb.predict(24)
    assert np.abs(f["p50"].to_numpy() - y.iloc[-24:].to_numpy()).mean() < 1.0
    with pytest.raises(ValueError, match="horizon"):
        gb.predict(25)


def test_models_refuse_too_short_series_with_a_message():
    with pytest.raises(ValueError, match="at least"):
        SimilarDay().fit(hourly(np.ones(30)))
    with pytest.raises(ValueError, match="at least"):
        GradientBoosting().fit(hourly(np.ones(100)))
