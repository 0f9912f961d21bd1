"""The pooled gradient-boosting model (forecasting.pooled) and how the nightly job uses it: nothing after an origin
reaches it, it tells enterprises' weekly shapes apart, its intervals cover, and the per-series backtest scores it
at exactly the job's origins."""

from __future__ import annotations

import numpy as np
import pandas as pd

from forecasting.jobs import ForecastSettings, Task, add_pooled, pool_cutoffs, run_task
from forecasting.pooled import NAME, Precomputed, pooled_forecasts

TZ = "Asia/Shanghai"
END = pd.Timestamp("2026-07-01", tz=TZ)  # first forecast day


def park(n: int = 12, days: int = 365, seed: int = 0) -> dict[str, pd.Series]:
    """Half the enterprises idle at weekends (10 % of the weekday level), half running every day; levels 1-1000."""
    rng = np.random.default_rng(seed)
    idx = pd.date_range(END - pd.Timedelta(days=days), END + pd.Timedelta(days=27), freq="D")
    weekend = idx.day_of_week >= 5
    out = {}
    levels = 10 ** rng.uniform(0, 3, size=n // 2 + 1)
    for i in range(n):
        level = levels[i // 2]  # each base level once of each kind
        shape = np.where(weekend, 0.1, 1.0) if i % 2 == 0 else np.ones(len(idx))
        out[f"E{i}"] = pd.Series(level * shape * (1 + 0.1 * rng.standard_normal(len(idx))), index=idx)
    return out


def test_nothing_after_the_origin_reaches_the_forecast():
    full = park()
    cutoff = END - pd.Timedelta(days=28)
    a = pooled_forecasts(full, 28, cutoff)
    spoiled = {k: y.where(y.index < cutoff, y * 50 + 7) for k, y in full.items()}
    b = pooled_forecasts(spoiled, 28, cutoff)
    assert a.keys() == b.keys() == full.keys()
    for k in a:
        assert a[k].index[0] == cutoff
        pd.testing.assert_frame_equal(a[k], b[k])


def test_weekly_shapes_told_apart_and_intervals_cover():
    full = park()
    history = {k: y[y.index < END] for k, y in full.items()}
    f = pooled_forecasts(history, 28, END)
    inside, total = 0, 0
    for i, (k, y) in enumerate(full.items()):
        fk = f[k]
        weekend = fk.index.day_of_week >= 5
        ratio = fk["p50"][weekend].mean() / fk["p50"][~weekend].mean()
        if i % 2 == 0:
            assert ratio < 0.3, (k, ratio)  # idle at weekends: forecast low at weekends
        else:
            assert 0.85 < ratio < 1.15, (k, ratio)  # every day alike
        recent = y[y.index < END].iloc[-28:]
        level = recent[recent.index.day_of_week < 5].mean()
        assert 0.9 < fk["p50"][~weekend].mean() / level < 1.1, k  # each series at its own level
        actual = y.loc[fk.index]
        inside += int(((actual >= fk["lo80"]) & (actual <= fk["hi80"])).sum())
        total += len(actual)
        assert (fk["lo95"] <= fk["lo80"]).all() and (fk["lo80"] <= fk["p50"]).all()
        assert (fk["p50"] <= fk["hi80"]).all() and (fk["hi80"] <= fk["hi95"]).all()
    assert 0.65 <= inside / total <= 0.95, inside / total


def test_job_scores_the_pooled_model_at_every_backtest_origin():
    series = {k: y[y.index < END] for k, y in park(6).items()}
    series["short"] = series["E0"].iloc[-20:]  # too short for the pool: left out, still forecast by the others
    cfg = ForecastSettings(workers=1, daily_origins=3, backtest_days=28)
    tasks = [Task(k, "energy_kwh", "kWh", y, 184, 28) for k, y in series.items()]
    add_pooled(tasks, cfg)
    cutoffs = pool_cutoffs(END, 28, 3)
    assert set(tasks[0].pooled) == set(cutoffs) and len(cutoffs) == 4
    assert tasks[-1].pooled == {}
    for t in tasks[:-1]:
        o = run_task(t, cfg.daily_origins)
        assert o.error is None
        s = o.result.backtest.score(NAME)
        assert s.error is None and s.origins == 3 and s.points == 3 * 28
        assert [pd.Timestamp(x) for x in o.result.backtest.origins] == sorted(cutoffs[:-1])
        assert len(o.result.p50) == 184
    short = run_task(tasks[-1], cfg.daily_origins)
    assert short.result is not None and all(s.model != NAME for s in (short.result.backtest.scores
                                                                         if short.result.backtest else []))


def test_precomputed_without_a_forecast_for_the_origin_is_an_error():
    idx = pd.date_range(END - pd.Timedelta(days=30), END, freq="D", inclusive="left")
    m = Precomputed(NAME, {})
    try:
        m.fit(pd.Series(1.0, index=idx))
    except ValueError as exc:
        assert "no pooled forecast" in str(exc)
    else:  # pragma: no cover - the guard
        raise AssertionError("a missing origin must not be served")


def test_two_workers_return_every_outcome_in_task_order():
    """The job's parallel path: batches on two processes, the hourly series moved first; the outcomes come back in
    the order of the tasks, each daily one with the pooled candidate scored."""
    from forecasting.jobs import run_tasks

    series = {k: y[y.index < END] for k, y in park(4).items()}
    tasks = [Task(k, "energy_kwh", "kWh", y, 184, 28) for k, y in series.items()]
    hours = pd.date_range(END - pd.Timedelta(days=21), END, freq="h", inclusive="left")
    hourly = pd.Series(10 + np.sin(np.arange(len(hours)) * 2 * np.pi / 24), index=hours)
    hourly.index.freq = "h"
    tasks.insert(2, Task("park", "electricity_kwh", "kWh", hourly, 24))
    out = run_tasks(tasks, ForecastSettings(workers=2, daily_origins=2, origins=1, backtest_days=28))
    assert [o.task.subject for o in out] == [t.subject for t in tasks]
    assert all(o.error is None for o in out), [o.error for o in out]
    for o in out:
        names = {s.model: s for s in o.result.backtest.scores}
        if o.task.subject == "park":
            assert NAME not in names and len(o.result.p50) == 24
        else:
            assert names[NAME].error is None and names[NAME].origins == 2
