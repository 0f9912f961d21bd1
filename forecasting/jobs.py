"""The nightly forecasting job: train, choose and forecast every enterprise's and the park's series, project the
quota burn-down, find anomalies, and cache it all in the metadata database for the pages (forecasting.cache).

It runs in the scheduled-jobs process (park/jobs.py, `parkcarbon jobs`), never in a web request.  Data are read
through the same access layer the pages use (portal.access.DataAccess, as a park-wide system user), so the job
forecasts exactly the figures the pages show: the carbon pipeline's daily accounts and the store's hourly
electricity.  The period is derived from the run's `scheduled_for` (history up to that local day's midnight), not
from the wall clock, so a late or repeated run produces the same forecasts.

Series (docs/forecasting.md, "Nightly job"):
* per enterprise and for the park, daily to 31 December: energy (tce), emissions Scope 1 + 2 location-based and
  market-based (t CO2e); per enterprise with a quota plan or allowances: emissions on the plan's basis, with the
  burn-down (year-end p50/p90, run-out dates) against its allowances;
* the park's hourly grid electricity (kWh) for the next day (per enterprise too with `enterprise_hourly`).
A day or hour whose data coverage is below the park's threshold is a gap (not a low value) for the models.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from datetime import datetime

import pandas as pd

from forecasting import cache
from forecasting.forecast import ForecastResult, forecast_series
from forecasting.quota import burn_down_from_forecast
from forecasting.series import SeriesError

log = logging.getLogger(__name__)

JOB_ID = "forecast.nightly"
DAILY_QUANTITIES = {"energy_tce": "tce", "total_location_t_co2e": "t CO2e", "total_market_t_co2e": "t CO2e"}
QUOTA = "quota_t_co2e"
HOURLY = "electricity_kwh"
DEFAULTS = {"hour": 2, "minute": 30, "history_days": 400, "hourly_history_days": 56, "day_ahead_hours": 24,
            "backtest_days": 28, "origins": 6, "daily_origins": 3, "workers": 2, "enterprise_hourly": False,
            "anomaly_days": 3}


class ForecastSettingsError(ValueError):
    """A [forecast] setting that cannot be used; the message names the file, the key and what is allowed."""


@dataclass(frozen=True)
class ForecastSettings:
    hour: int = 2  # park-local time of the nightly run
    minute: int = 30
    history_days: int = 400  # daily history read for training
    hourly_history_days: int = 56  # hourly history read for the day-ahead forecasts
    day_ahead_hours: int = 24
    backtest_days: int = 28  # a daily forecast to the year end is chosen by how it forecasts this many days
    origins: int = 6  # backtest origins of the hourly day-ahead series
    daily_origins: int = 3  # backtest origins of the daily series to the year end (month-ahead each)
    workers: int = 2  # processes training series in parallel
    enterprise_hourly: bool = False  # also each enterprise's hourly day-ahead (about 10 s per enterprise)
    anomaly_days: int = 3  # the days examined for anomalies each night


def forecast_settings(settings) -> ForecastSettings:
    """The [forecast] section, validated: an unknown key or a bad value names the settings file and the key."""
    section = dict(getattr(settings, "forecast", {}) or {})
    where = getattr(settings, "source", "settings")
    unknown = sorted(set(section) - set(DEFAULTS))
    if unknown:
        raise ForecastSettingsError(f"{where}: unknown key(s) {', '.join(f'forecast.{k}' for k in unknown)} in "
                                    f"[forecast]; allowed: {', '.join(DEFAULTS)}")
    limits = {"hour": (0, 23), "minute": (0, 59), "history_days": (28, 3660), "hourly_history_days": (14, 730),
              "day_ahead_hours": (1, 168), "backtest_days": (1, 366), "origins": (1, 52), "daily_origins": (1, 52),
              "workers": (1, 64),
              "anomaly_days": (1, 62)}
    values = {}
    for key, default in DEFAULTS.items():
        value = section.get(key, default)
        if isinstance(default, bool):
            if not isinstance(value, bool):
                raise ForecastSettingsError(f"{where}: forecast.{key} must be true or false, got {value!r}")
        else:
            lo, hi = limits[key]
            if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
                raise ForecastSettingsError(f"{where}: forecast.{key} must be an integer from {lo} to {hi}, "
                                            f"got {value!r}")
        values[key] = value
    return ForecastSettings(**values)


def scheduled_jobs(settings) -> list:
    """The jobs this module provides to park/jobs.py: the nightly forecast at [forecast] hour:minute."""
    cfg = forecast_settings(settings)
    try:
        from park.jobs import JobSpec
    except ImportError:  # the jobs process is not there yet: the same fields, for tests and callers
        JobSpec = _JobSpec  # noqa: N806
    return [JobSpec(id=JOB_ID, func="forecasting.jobs:run", cron={"hour": cfg.hour, "minute": cfg.minute},
                    description="train, choose and forecast energy and emissions per enterprise and for the park; "
                                "quota burn-down; anomalies (docs/forecasting.md)")]


@dataclass(frozen=True)
class _JobSpec:
    id: str
    func: str
    cron: dict
    description: str


@dataclass
class Task:
    """One series to forecast."""

    subject: str  # enterprise id or cache.PARK
    quantity: str
    unit: str
    y: pd.Series
    horizon: int
    backtest_horizon: int | None = None
    pooled: dict | None = None  # daily series: the pooled model's forecasts by origin (forecasting.pooled)
    ytd: pd.Series | None = None  # quota series: the year-to-date daily emissions
    allocation_t: float | None = None  # quota series: allowances + usable CCER
    notes: list[str] = field(default_factory=list)


@dataclass
class Outcome:
    task: Task
    result: ForecastResult | None
    burn_down: dict | None
    error: str | None
    seconds: float


def system_user(park_id: str):
    """The park-wide reader the job reads as (never a login)."""
    from portal.auth import Role, User

    return User(username="job:forecast", park_id=park_id, role=Role.ADMIN, enterprise_id=None,
                display_name="nightly forecast job")


def origin_of(scheduled_for: datetime, tz) -> pd.Timestamp:
    """The forecast origin: local midnight of the day the run was due (history strictly before it)."""
    return pd.Timestamp(scheduled_for).tz_convert(tz).floor("D")


def _covered(values: pd.Series, coverage: pd.Series, threshold: float) -> tuple[pd.Series, list[str]]:
    """The values with the poorly covered ones as gaps, and notes.  A value is a gap when its coverage is below
    `threshold` times the series' usual (median) coverage: a day a meter missed is a gap, not a low day.  A series
    usually covered below the threshold (a meter that never reported) keeps its values, with a note saying the
    forecast is of the measured part."""
    usual = float(coverage.median()) if coverage.notna().any() else 0.0
    notes = []
    if usual < threshold:
        notes.append(f"the history is usually covered {usual:.0%} (below the park's threshold {threshold:.0%}): "
                     "the forecast is of what the meters measure, not of the whole consumption")
    gaps = int((values.notna() & (coverage < threshold * usual)).sum())
    if gaps:
        notes.append(f"{gaps} period(s) covered less than {threshold:.0%} of the usual coverage are gaps for the "
                     "models (not low values)")
    return values.where(coverage >= threshold * usual), notes


def _daily(frame: pd.DataFrame, column: str, days: pd.DatetimeIndex, threshold: float
           ) -> tuple[pd.Series, list[str]]:
    """A daily series on `days` from accounts totals (period_start, column, coverage); see `_covered`."""
    f = frame.set_index("period_start").reindex(days)
    values, notes = _covered(f[column].astype(float), f["coverage"].astype(float), threshold)
    return values, notes


def build_tasks(access, user, origin: pd.Timestamp, cfg: ForecastSettings) -> tuple[list[Task], list[str]]:
    """Read every series through the access layer and make the forecasting tasks; notes say what was skipped."""
    from carbon.errors import InputError
    from carbon.quota import DEFAULT_QUOTA_BASIS, quota_basis_policy

    park = access.park
    tz = park.tz
    threshold = float(getattr(park, "coverage_threshold", 0.9))
    year_end = pd.Timestamp(origin.year + 1, 1, 1, tz=tz)
    horizon = int((year_end - origin) / pd.Timedelta(days=1))
    bt_h = min(cfg.backtest_days, horizon)
    start = origin - pd.Timedelta(days=cfg.history_days)
    start = start.tz_convert(tz).floor("D")
    days = pd.date_range(start, origin, freq="D", inclusive="left")
    tasks: list[Task] = []
    notes: list[str] = []
    try:
        acc = access.accounts(user, start, origin, "day")
    except InputError as exc:
        notes.append(f"daily accounts unavailable ({exc}): no daily forecasts")
        acc = None
    if acc is not None:
        ent = acc.totals_at("enterprise")
        parkwide = acc.totals_at("park")
        for e in park.enterprises:
            mine = ent[ent["enterprise"] == e.id]
            for q, unit in DAILY_QUANTITIES.items():
                y, y_notes = _daily(mine, q, days, threshold)
                tasks.append(Task(e.id, q, unit, y, horizon, bt_h, notes=y_notes))
        for q, unit in DAILY_QUANTITIES.items():
            y, y_notes = _daily(parkwide, q, days, threshold)
            tasks.append(Task(cache.PARK, q, unit, y, horizon, bt_h, notes=y_notes))
    # quota burn-down: emissions on each plan's basis, against allowances + usable CCER
    positions = access.quota_positions(user, origin.year, origin, 0.0)
    in_scheme = positions[positions["has_plan"].fillna(False).astype(bool) | (positions["allowances_t"] > 0)]
    year_start = pd.Timestamp(origin.year, 1, 1, tz=tz)
    bases = in_scheme["basis"].fillna(DEFAULT_QUOTA_BASIS) if "basis" in in_scheme else pd.Series(
        DEFAULT_QUOTA_BASIS, index=in_scheme.index)
    for basis in sorted(set(bases)):
        column = quota_basis_policy(basis)[1]
        try:
            qacc = access.accounts(user, start, origin, "day", quota_basis=basis).totals_at("enterprise")
        except InputError as exc:
            notes.append(f"daily accounts on basis {basis} unavailable ({exc}): no burn-down")
            continue
        for row in in_scheme[bases == basis].itertuples():
            mine = qacc[qacc["enterprise"] == row.enterprise]
            y, task_notes = _daily(mine, column, days, threshold)
            # the year to date as measured (like the quota position's metered figure): every day's emissions,
            # however covered; a day without any data adds nothing and is counted in a note
            ytd = mine.set_index("period_start")[column].reindex(days).astype(float)
            ytd = ytd[ytd.index >= year_start]
            if ytd.isna().any():
                task_notes.append(f"{int(ytd.isna().sum())} year-to-date day(s) without any data add nothing to the "
                                  "year to date (as in the quota position): the projection may be low")
                ytd = ytd.fillna(0.0)
            allocation = float(row.allowances_t + (row.ccer_usable_t if pd.notna(row.ccer_usable_t) else 0.0))
            tasks.append(Task(row.enterprise, QUOTA, "t CO2e", y, horizon, bt_h, ytd=ytd, allocation_t=allocation,
                              notes=task_notes))
    # hourly grid electricity, day-ahead
    h_start = origin - pd.Timedelta(days=cfg.hourly_history_days)
    by = ["enterprise"] if cfg.enterprise_hourly else []
    hourly = access.aggregate(user, "energy", h_start, origin, "hour", by=by, where={"carrier": "electricity"})
    if cfg.enterprise_hourly:
        groups = [(cache.PARK, hourly.groupby("start", as_index=False).agg(
            value=("value", "sum"), measured=("measured", "sum"), expected=("expected", "sum")))]
        groups += [(e, g) for e, g in hourly.groupby("enterprise")]
    else:
        groups = [(cache.PARK, hourly)]
    for subject, g in groups:
        g = g.sort_values("start")
        index = pd.DatetimeIndex(g["start"]).tz_convert(tz)
        cov = pd.Series((g["measured"] / g["expected"].where(g["expected"] > 0)).to_numpy(dtype=float), index=index)
        y, hour_notes = _covered(pd.Series(g["value"].to_numpy(dtype=float), index=index), cov, threshold)
        tasks.append(Task(subject, HOURLY, "kWh", y, cfg.day_ahead_hours, notes=hour_notes))
    return tasks, notes


def daily_candidates(pooled: dict | None):
    """The candidates of a daily series to the year end: the baselines, ETS (heuristic initialisation) and, instead
    of the per-series gradient-boosting models, the pooled model's forecasts (`pooled`, by origin; left out when
    there are none)."""
    from forecasting.models import ExponentialSmoothing, SeasonalNaive, SimilarDay
    from forecasting.pooled import NAME, Precomputed

    def make(_horizon: int) -> list:
        models = [SeasonalNaive("day"), SeasonalNaive("week"), SimilarDay(),
                  ExponentialSmoothing(initialization="heuristic")]
        return models + ([Precomputed(NAME, pooled)] if pooled else [])

    return make


def run_task(task: Task, origins: int) -> Outcome:
    """Forecast one series (in a worker process); bad input gives a named fallback or an error text, never an
    exception out of the job.  A task with `pooled` forecasts uses them as its gradient-boosting candidate."""
    t0 = time.perf_counter()
    try:
        y = task.y
        if y.notna().sum() == 0:
            raise SeriesError("the series has no values (no data, or no day covered enough)")
        y = y.loc[y.first_valid_index():]  # history starts with the first known value
        kw = {"models": daily_candidates(task.pooled)} if task.pooled is not None else {}
        result = forecast_series(y, task.horizon, origins=origins, backtest_horizon=task.backtest_horizon, **kw)
        if task.notes:
            result.notes = [*result.notes, *task.notes]
        if len(result.index) and pd.Timestamp(result.index[0]) != y.index[-1] + (y.index[1] - y.index[0]):
            raise SeriesError("the forecast does not follow the history")
        bd = None
        if task.ytd is not None and task.allocation_t is not None:
            bd = _burn_down(task, result)
        return Outcome(task, result, bd, None, time.perf_counter() - t0)
    except Exception as exc:  # one series' failure never stops the night's other series
        return Outcome(task, None, None, f"{type(exc).__name__}: {exc}", time.perf_counter() - t0)


def _burn_down(task: Task, result: ForecastResult) -> dict:
    """The burn-down of a quota series; the forecast covers the days after the last history day, which for a run
    at midnight is the year-to-date's last day + 1."""
    out = burn_down_from_forecast(task.ytd, result, task.allocation_t).to_dict()
    out["ytd_daily"] = {pd.Timestamp(d).date().isoformat(): float(v) for d, v in task.ytd.items()}
    return out


def _is_daily(task: Task) -> bool:
    return task.backtest_horizon is not None and len(task.y) > 1 and task.y.index[1] - task.y.index[0] == pd.Timedelta(
        days=1)


def pool_cutoffs(end: pd.Timestamp, backtest_horizon: int, origins: int) -> list[pd.Timestamp]:
    """The origins (first forecast day) the pooled model is trained at for daily series whose history ends the day
    before `end`: the backtest's origins (forecasting.backtest.origin_positions, counted back from the end) and
    `end` itself for the forecast."""
    return [end - pd.Timedelta(days=backtest_horizon * (i + 1)) for i in range(origins)] + [end]


def add_pooled(tasks: list[Task], cfg: ForecastSettings, parallel=None) -> float:
    """Train the pooled gradient-boosting model (forecasting.pooled) once per origin on all daily series of one
    quantity with the same history end and horizon, and give each task its forecasts.  Returns the seconds."""
    from forecasting.pooled import pooled_forecasts

    t0 = time.perf_counter()
    groups: dict[tuple, list[Task]] = {}
    for t in tasks:
        if _is_daily(t) and t.y.notna().any():
            groups.setdefault((t.quantity, t.y.index[-1], t.horizon, t.backtest_horizon), []).append(t)
    jobs = []
    for (_q, last, horizon, bt_h), members in groups.items():
        series = {str(i): t.y for i, t in enumerate(members)}
        for cutoff in pool_cutoffs(last + pd.Timedelta(days=1), bt_h, cfg.daily_origins):
            jobs.append((members, cutoff, series, horizon))
    if parallel is not None and len(jobs) > 1:
        from joblib import delayed

        frames = parallel(delayed(pooled_forecasts)(s, h, c) for _m, c, s, h in jobs)
    else:
        frames = [pooled_forecasts(s, h, c) for _m, c, s, h in jobs]
    for (members, cutoff, _s, _h), out in zip(jobs, frames, strict=True):
        for i, t in enumerate(members):
            if t.pooled is None:
                t.pooled = {}
            if str(i) in out:
                t.pooled[cutoff] = out[str(i)]
    return time.perf_counter() - t0


def _run_batch(batch: list[Task], cfg: ForecastSettings) -> list[Outcome]:
    return [run_task(t, cfg.daily_origins if _is_daily(t) else cfg.origins) for t in batch]


def run_tasks(tasks: list[Task], cfg: ForecastSettings, pooled: bool = True) -> list[Outcome]:
    """Every task, on `cfg.workers` processes (joblib, loky) in batches of several series; in this process when
    one worker is asked.  First the pooled model for the daily series (one fit per origin, `pooled=False`: the
    per-series gradient boosting instead)."""
    if cfg.workers <= 1 or len(tasks) < 2:
        if pooled:
            add_pooled(tasks, cfg)
        return _run_batch(tasks, cfg)
    from joblib import Parallel, delayed

    with Parallel(n_jobs=cfg.workers, backend="loky") as parallel:
        if pooled:
            add_pooled(tasks, cfg, parallel)
        # the costly non-daily series (hourly day-ahead, per-series candidates) first, so no worker ends on them
        order = sorted(range(len(tasks)), key=lambda i: _is_daily(tasks[i]))  # stable: otherwise as given
        size = max(1, math.ceil(len(tasks) / (16 * cfg.workers)))
        batches = [[tasks[i] for i in order[j:j + size]] for j in range(0, len(order), size)]
        done = [o for out in parallel(delayed(_run_batch)(b, cfg) for b in batches) for o in out]
        outcomes: list[Outcome] = [None] * len(tasks)  # type: ignore[list-item]
        for i, o in zip(order, done, strict=True):
            outcomes[i] = o
        return outcomes


def run(ctx) -> str:
    """The nightly job (park/jobs.py JobContext `ctx`: settings, engine, store, park, scheduled_for, now):
    forecasts and burn-downs into the cache, anomalies found; a one-line summary."""
    from portal.access import DataAccess

    cfg = forecast_settings(ctx.settings)
    park = ctx.park
    origin = origin_of(ctx.scheduled_for, park.tz)
    access = DataAccess(ctx.store, park, ctx.engine, now=lambda: origin)
    user = system_user(park.id)
    t0 = time.perf_counter()
    tasks, notes = build_tasks(access, user, origin, cfg)
    outcomes = run_tasks(tasks, cfg)
    saved = fallbacks = failed = 0
    for o in outcomes:
        if o.result is None:
            failed += 1
            log.warning("forecast of %s %s failed: %s", o.task.subject, o.task.quantity, o.error)
            continue
        o.result.trained_at = pd.Timestamp(ctx.now).tz_convert("UTC").isoformat(timespec="seconds")
        cache.save_forecast(ctx.engine, park.id, o.task.subject, o.task.quantity, o.task.unit, o.result, origin,
                            o.burn_down)
        saved += 1
        fallbacks += o.result.fallback is not None
    anomaly_text = ""
    try:
        from forecasting.anomalies import detect_park

        since = origin - pd.Timedelta(days=cfg.anomaly_days)
        found = detect_park(access, user, since, origin, now=ctx.now)
        cache.save_anomalies(ctx.engine, park.id, found, since)
        anomaly_text = f"; {len(found)} anomaly warning(s) since {since:%Y-%m-%d}"
    except ImportError:
        pass
    deficit = sum(1 for o in outcomes if o.burn_down and o.burn_down["heading_for_deficit"])
    summary = (f"forecasts from {origin:%Y-%m-%d %H:%M %Z}: {saved} series cached ({fallbacks} on a named baseline "
               f"fallback, {failed} failed), {deficit} enterprise(s) heading for a quota deficit{anomaly_text}; "
               f"{time.perf_counter() - t0:.1f} s")
    if notes:
        summary += "; " + "; ".join(notes)
    return summary
