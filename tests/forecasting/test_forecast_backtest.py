"""Rolling-origin backtest metrics (worked examples), model choice, the forecast result and its fallbacks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasting.backtest import Backtest, backtest, origin_positions
from forecasting.forecast import ForecastResult, forecast_series
from forecasting.models import SeasonalNaive, SimilarDay


def hourly(values, start="2026-03-02") -> pd.Series:
    idx = pd.date_range(start, periods=len(values), freq="h", tz="Asia/Shanghai")
    return pd.Series(np.asarray(values, dtype=float), index=idx)


def test_origins_step_back_from_the_end():
    assert origin_positions(1000, 24, 3, None, 100) == [928, 952, 976]
    assert origin_positions(1000, 24, 3, 100, 800) == [876, 976]
    assert origin_positions(200, 24, 5, None, 150) == [152, 176]


def test_worked_example_mase_one_for_seasonal_naive_on_a_rising_day_pattern():
    # every day is the day before plus 1 kWh at every hour: seasonal naive (daily) misses by exactly 1 everywhere,
    # and its in-sample seasonal-naive error is 1, so MASE = 1; its intervals (built from those errors) cover
    # every actual; MAPE is the mean of 1 / actual over the scored points.
    days = 30
    pattern = np.arange(24.0) + 5
    y = hourly(np.concatenate([pattern + d for d in range(days)]))
    bt = backtest(y, 24, origins=3, models=lambda h: [SeasonalNaive("day"), SeasonalNaive("week")])
    sn = bt.score("seasonal_naive_daily")
    assert sn.mase == pytest.approx(1.0) and sn.mase_vs_reference == pytest.approx(1.0)
    assert sn.coverage_80 == 1.0 and sn.coverage_95 == 1.0
    actual = y.to_numpy()[-72:]
    assert sn.mape == pytest.approx(100 * np.mean(1 / actual))
    # weekly seasonal naive misses by 7 everywhere: MASE 7
    assert bt.score("seasonal_naive_weekly").mase == pytest.approx(7.0)
    assert bt.chosen == "seasonal_naive_daily"
    assert sn.points == 72 and len(bt.origins) == 3


def test_mape_skips_zero_actuals_and_says_so():
    rng = np.random.default_rng(0)
    v = 10 + rng.normal(0, 1, 24 * 21)
    v[-24:-12] = 0.0  # half a day of zeros in the last origin's horizon
    bt = backtest(hourly(v), 24, origins=1, models=lambda h: [SeasonalNaive("day")])
    s = bt.score("seasonal_naive_daily")
    assert s.mape_skipped == 12 and s.points == 24
    actual, pred = v[-24:], v[-48:-24]
    nz = actual != 0
    assert s.mape == pytest.approx(100 * np.mean(np.abs((actual - pred)[nz] / actual[nz])))
    assert any("MAPE skips" in n for n in bt.notes)


def test_missing_actuals_are_not_scored():
    v = np.concatenate([np.arange(24.0) + 5 + d for d in range(21)])  # seasonal naive misses by 1
    v[-5:] = np.nan
    bt = backtest(hourly(v), 24, origins=1, models=lambda h: [SeasonalNaive("day")])
    assert bt.score("seasonal_naive_daily").points == 19
    assert bt.score("seasonal_naive_daily").mase == pytest.approx(1.0)


def test_mase_is_undefined_not_zero_when_the_history_never_varies():
    bt = backtest(hourly(np.tile(np.arange(24.0), 21)), 24, origins=1, models=lambda h: [SeasonalNaive("day")])
    assert bt.score("seasonal_naive_daily").mase is None and bt.chosen is None
    assert any("MASE undefined" in n for n in bt.notes)


def test_choice_is_the_lowest_mase_and_a_failing_candidate_is_reported():
    class Broken(SeasonalNaive):
        def fit(self, y):
            raise ValueError("cannot fit")

    broken = Broken()
    broken.name = "broken"

    y = hourly(np.tile(np.arange(24.0), 21) + np.random.default_rng(1).normal(0, 0.5, 24 * 21))
    bt = backtest(y, 24, origins=2, models=lambda h: [SeasonalNaive("day"), SeasonalNaive("week"), broken])
    usable = [s for s in bt.scores if s.mase is not None]
    assert bt.chosen == min(usable, key=lambda s: s.mase).model
    broken = bt.score("broken")
    assert broken.mase is None and "cannot fit" in broken.error
    again = Backtest.from_json(bt.to_json())
    assert again == bt


def _plant(days: int, start: str) -> pd.Series:
    from forecasting.calendar import calendar_features

    idx = pd.date_range(start, periods=24 * days, freq="h", tz="Asia/Shanghai")
    cal = calendar_features(idx)
    base = np.where(cal["day_off"] == 1, 2.0, 10 + 10 * ((cal["hour"] >= 8) & (cal["hour"] < 20)))
    return pd.Series(base + np.random.default_rng(0).normal(0, 0.2, len(idx)), index=idx)


def test_forecast_result_carries_model_backtest_and_round_trips_json():
    y = _plant(35, "2026-05-11")
    r = forecast_series(y, 24, origins=2)
    assert r.fallback is None and r.backtest is not None and r.model == r.backtest.chosen
    assert r.mase == r.backtest.score(r.model).mase
    assert len(r.p50) == 24 and r.index[0] == (y.index[-1] + pd.Timedelta("1h")).isoformat()
    assert r.trained_at.endswith("+00:00")
    back = ForecastResult.from_json(r.to_json())
    assert back == r
    pd.testing.assert_frame_equal(back.frame(), r.frame())


def test_forecast_into_a_year_without_holiday_data_says_so():
    y = _plant(30, "2026-12-02")  # ends 31 Dec 2026; the horizon is January 2027
    from forecasting.calendar import LAST_YEAR

    r = forecast_series(y, 24, origins=1)
    if LAST_YEAR < 2027:
        assert any("2027" in n and "weekday only" in n for n in r.notes)


@pytest.mark.parametrize("values,reason", [
    (np.zeros(24 * 30), "all zero"),
    (np.full(24 * 30, 3.0), "constant"),
    (np.arange(30.0), "too short"),
])
def test_bad_series_fall_back_to_a_named_baseline(values, reason):
    r = forecast_series(hourly(values), 24)
    assert r.fallback is not None and reason in r.fallback and r.model in r.fallback
    assert r.model in {"seasonal_naive_daily", "seasonal_naive_weekly", "similar_day", "last_value"}
    assert r.mase is None and len(r.p50) == 24 and np.isfinite(r.p50).all()


def test_a_level_change_is_named_in_the_notes():
    v = np.tile(np.arange(24.0) + 10, 70)
    v[-24 * 15:] += 200  # a new production line in the last quarter
    r = forecast_series(hourly(v), 24, origins=1)
    assert any("level changed" in n for n in r.notes)


def test_gaps_are_filled_for_fitting_and_reported():
    v = np.tile(np.arange(24.0) + 10, 21)
    v[100:110] = np.nan
    r = forecast_series(hourly(v), 24, origins=1)
    assert any("missing point" in n for n in r.notes)
    assert np.isfinite(r.p50).all()


def test_similar_day_interval_calibration_uses_only_earlier_days():
    y = _plant(20, "2026-03-02")
    a = SimilarDay().fit(y)
    assert all(np.isfinite(v) for v in a._rq.values())


def test_a_daily_series_needs_two_weeks_of_training_not_two_months():
    idx = pd.date_range("2026-03-02", periods=40, freq="D", tz="Asia/Shanghai")
    y = pd.Series(100 + np.random.default_rng(2).normal(0, 5, 40), index=idx)
    bt = backtest(y, 7, origins=3, models=lambda h: [SeasonalNaive("day"), SeasonalNaive("week"), SimilarDay()])
    assert bt.freq == "D" and bt.season == 7 and len(bt.origins) == 3
    assert bt.origins[0] == idx[19].isoformat()


def test_a_replaced_meter_cuts_the_history_at_the_change_and_forecasts_the_new_level():
    """A meter replaced four weeks before the end reads twice as much (a new CT ratio): the models learn from the
    data after the change only, the notes say from when, and the forecast is at the new level."""
    rng = np.random.default_rng(3)
    day = np.r_[np.full(8, 5.0), np.full(10, 40.0), np.full(6, 5.0)]
    v = np.tile(day, 100) + rng.normal(0, 0.5, 2400)
    v[-24 * 28:] *= 2.0
    y = hourly(v)
    r = forecast_series(y, 24, origins=2)
    change = y.index[-24 * 28]
    cut = [n for n in r.notes if n.startswith("history before")]
    assert len(cut) == 1 and abs(pd.Timestamp(cut[0].split()[2].rstrip(":")) - change) <= pd.Timedelta(hours=24)
    assert np.mean(r.p50) == pytest.approx(2 * day.mean(), rel=0.1)
