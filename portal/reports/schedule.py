"""The reports' scheduled jobs (a park.jobs provider): each kind runs on its configured day of the month after
its period ends, at [reports] hour:minute park-local time.  A run produces every due period not yet archived
(from `ctx.scheduled_for`, never the wall clock: a run caught up after downtime produces the period it was due
for), at most [reports] catch_up of them, mails the new versions and any whose delivery failed before, and
raises park.jobs.DataQualityFailure naming the enterprises when a monitoring rule failed (the reports are
archived all the same, with the failures in them)."""

from __future__ import annotations

from park.settings import Settings
from portal.reports import KINDS
from portal.reports.archive import DATA_QUALITY, ERROR, archived_periods, run_report
from portal.reports.config import report_settings
from portal.reports.periods import GRAIN, ReportPeriod, latest_due

DESCRIPTIONS = {"monthly": "monthly park and enterprise energy and emissions report",
                "key-units": "key energy-consuming units' monitoring data of the month",
                "quarterly": "quarterly energy use and emissions summary",
                "annual": "annual energy use and emissions report"}


def cron(kind: str, settings: Settings) -> dict:
    cfg = report_settings(settings)
    base = {"day": cfg.day_of(kind), "hour": cfg.hour, "minute": cfg.minute}
    if kind == "quarterly":
        base["month"] = "1,4,7,10"
    if kind == "annual":
        base["month"] = 1
    return base


def scheduled_jobs(settings: Settings) -> list:
    from park.jobs import JobSpec

    return [JobSpec(f"reports.{kind}", f"portal.reports.schedule:run_{kind.replace('-', '_')}", cron(kind, settings),
                    DESCRIPTIONS[kind]) for kind in KINDS]


def due_periods(archived: set[str], kind: str, scheduled_for, day: int, hour: int, minute: int, tz,
                catch_up: int) -> list[ReportPeriod]:
    """The newest period due at `scheduled_for` and the earlier ones back to the newest archived one (at most
    `catch_up` in all), oldest first."""
    p = latest_due(GRAIN[kind], scheduled_for, day, hour, minute, tz)
    out = [p]
    if archived:
        for _ in range(catch_up - 1):
            p = p.shift(-1)
            if p.label in archived:
                break
            out.append(p)
    return sorted(out)


def run(ctx, kind: str) -> str:
    from park.jobs import DataQualityFailure
    from portal.reports.delivery import DeliveryError, deliver, undelivered

    cfg = report_settings(ctx.settings)
    park = ctx.park
    periods = due_periods(archived_periods(ctx.engine, park.id, kind), kind, ctx.scheduled_for, cfg.day_of(kind),
                          cfg.hour, cfg.minute, park.tz, cfg.catch_up)
    results = [run_report(ctx.settings, ctx.engine, park, ctx.store, kind, p, now=ctx.now, trigger="scheduled",
                          cfg=cfg) for p in periods]
    problems = []
    to_send = {r.version_id for r in results if r.created and r.version_id}
    to_send |= set(undelivered(ctx.engine, park.id))
    for version_id in sorted(to_send):
        try:
            deliver(ctx.settings, ctx.engine, version_id, cfg=cfg)
        except DeliveryError as exc:
            problems.append(str(exc))
    summary = "; ".join(r.summary() for r in results)
    errors = [r.summary() for r in results if r.outcome == ERROR]
    if errors or problems:
        raise RuntimeError("; ".join(errors + problems))
    failed = [f for r in results if r.outcome == DATA_QUALITY or r.failures for f in r.failures]
    if failed:
        raise DataQualityFailure(summary, failed)
    return summary


def run_monthly(ctx) -> str:
    return run(ctx, "monthly")


def run_key_units(ctx) -> str:
    return run(ctx, "key-units")


def run_quarterly(ctx) -> str:
    return run(ctx, "quarterly")


def run_annual(ctx) -> str:
    return run(ctx, "annual")
