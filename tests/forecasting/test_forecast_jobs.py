"""The nightly forecasting job on a real store and metadata database: every enterprise's and the park's series
cached with their model, training time, MASE and coverage; the burn-down recomputed independently from the
store; bad input (all zero, never reported) named, never an exception; its schedule and settings."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from carbon.pipeline import account_park
from carbon.quota import quota_basis_policy
from forecasting.cache import load_forecast, load_forecasts
from forecasting.jobs import ForecastSettingsError, forecast_settings, scheduled_jobs
from forecasting.quota import burn_down_from_forecast
from park.settings import Settings
from tests.forecasting.conftest import ALLOWANCES, ORIGIN, TZ


def test_every_series_is_cached_with_its_model_backtest_and_age(job_run):
    engine, park = job_run.ctx.engine, job_run.park
    cached = {c.key: c for c in load_forecasts(engine, "p")}
    for e in ("E0001", "E0002", "park"):
        for q in ("energy_tce", "total_location_t_co2e", "total_market_t_co2e"):
            c = cached[f"{e}:{q}:D"]
            r = c.result
            assert c.model == r.model and c.fallback is None, (c.key, c.fallback)
            assert c.mase is not None and c.mase == r.backtest.score(r.model).mase
            assert c.coverage_80 == r.backtest.score(r.model).coverage_80
            # daily to 31 December, starting at the origin
            assert pd.Timestamp(r.index[0]) == ORIGIN and pd.Timestamp(r.index[-1]) == pd.Timestamp("2026-12-31",
                                                                                                     tz=TZ)
            assert len(r.p50) == 61 and all(lo <= p <= hi for lo, p, hi in zip(r.lo80, r.p50, r.hi80, strict=True))
            assert c.data_end == ORIGIN.tz_convert("UTC").to_pydatetime()
            assert c.age(job_run.ctx.now) >= pd.Timedelta(0)
    hourly = cached["park:electricity_kwh:h"].result
    assert len(hourly.p50) == 24 and pd.Timestamp(hourly.index[0]) == ORIGIN
    assert "series cached" in job_run.summary and "heading for a quota deficit" in job_run.summary
    assert park.id == "p"


def test_park_energy_history_is_what_the_pages_show(job_run):
    """The cached park series was trained on the carbon pipeline's daily energy: its last backtest origin's actual
    values (errors + forecast) match the accounts' daily totals."""
    c = load_forecast(job_run.ctx.engine, "p", "park:energy_tce:D")
    acc = account_park(job_run.ctx.store, job_run.ctx.engine, job_run.park, ORIGIN - pd.Timedelta(days=28), ORIGIN,
                       "day", strict=False, as_of=ORIGIN).totals_at("park")
    actual = acc.set_index("period_start")["energy_tce"]
    bt = c.result.backtest
    last_origin = pd.Timestamp(bt.origins[-1])
    # the backtest's last origin leaves exactly `horizon` days to the end of the history
    assert last_origin == ORIGIN - pd.Timedelta(days=bt.horizon)
    assert np.isfinite(actual.loc[last_origin:]).all()


def test_burn_down_recomputed_independently_from_the_store(job_run):
    ctx = job_run.ctx
    for e, allowances in ALLOWANCES.items():
        c = load_forecast(ctx.engine, "p", f"{e}:quota_t_co2e:D")
        bd = c.burn_down
        # year to date on the plan's basis, straight from the pipeline (not through the job's access layer)
        column = quota_basis_policy("ets")[1]
        acc = account_park(ctx.store, ctx.engine, job_run.park, pd.Timestamp("2026-01-01", tz=TZ), ORIGIN, "day",
                           quota_basis_policy("ets")[0], strict=False, as_of=ORIGIN).totals_at("enterprise")
        ytd = acc[acc["enterprise"] == e].set_index("period_start")[column].fillna(0.0)
        assert bd["ytd_t"] == pytest.approx(float(ytd.sum()), rel=1e-9)
        assert bd["allocation_t"] == pytest.approx(allowances)
        again = burn_down_from_forecast(ytd, c.result, allowances)
        assert bd["year_end_p50_t"] == pytest.approx(again.year_end_p50_t, rel=1e-12)
        assert bd["year_end_p90_t"] == pytest.approx(again.year_end_p90_t, rel=1e-12)
        assert bd["fan"]["p50"][-1] == pytest.approx(bd["year_end_p50_t"], rel=1e-12)
        assert bd["heading_for_deficit"] is (bd["year_end_p50_t"] > allowances)
    assert load_forecast(ctx.engine, "p", "E0001:quota_t_co2e:D").burn_down["heading_for_deficit"] is True
    assert load_forecast(ctx.engine, "p", "E0002:quota_t_co2e:D").burn_down["heading_for_deficit"] is False


def test_bad_input_is_named_never_raised(job_run):
    engine = job_run.ctx.engine
    zero = load_forecast(engine, "p", "E9:energy_tce:D")
    assert zero is not None and zero.fallback and "all zero" in zero.fallback and zero.model in zero.fallback
    assert zero.mase is None
    # the meter that never reported has no series to forecast: nothing cached, counted as failed in the summary
    assert load_forecast(engine, "p", "E8:energy_tce:D") is None
    assert "failed" in job_run.summary


def test_schedule_and_settings(tmp_path):
    spec, = scheduled_jobs(Settings(data_dir=tmp_path, forecast={"hour": 3, "minute": 5}))
    assert spec.id == "forecast.nightly" and spec.func == "forecasting.jobs:run"
    assert spec.cron == {"hour": 3, "minute": 5}
    with pytest.raises(ForecastSettingsError, match=r"forecast\.hours.*allowed: hour"):
        forecast_settings(Settings(data_dir=tmp_path, forecast={"hours": 3}))
    with pytest.raises(ForecastSettingsError, match=r"forecast\.workers must be an integer from 1"):
        forecast_settings(Settings(data_dir=tmp_path, forecast={"workers": 0}))
