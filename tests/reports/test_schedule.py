"""The reports' scheduled jobs: cron in park-local time from [reports], the period derived from the time a run
was due (month ends, quarter ends, a leap year), catching up missed periods once, and a run through park.jobs
that records a data-quality outcome naming the enterprise below 90 %."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest

from park.jobs import JobContext, execute_run, job_runs, job_specs, make_trigger
from park.settings import Settings, SettingsError
from portal.reports.archive import runs, versions
from portal.reports.config import report_settings, smtp_settings
from portal.reports.periods import ReportPeriod, due_at
from portal.reports.schedule import due_periods, run_monthly, scheduled_jobs
from tests.reports.support import PARK, TZ, build

LOCAL = pd.Timestamp


def _fires(settings: Settings, job_id: str, after: str, n: int) -> list[str]:
    spec = next(s for s in scheduled_jobs(settings) if s.id == job_id)
    trigger = make_trigger(spec.cron, TZ)
    out, t = [], pd.Timestamp(after, tz=TZ).to_pydatetime()
    prev = None
    for _ in range(n):
        t = trigger.get_next_fire_time(prev, t)
        out.append(pd.Timestamp(t).tz_convert(TZ).strftime("%Y-%m-%d %H:%M"))
        prev, t = t, t + pd.Timedelta(seconds=1)
    return out


def test_jobs_fire_on_the_configured_local_day_after_each_period():
    s = Settings(reports={"monthly_day": 3, "quarterly_day": 12, "annual_day": 25, "hour": 7, "minute": 30})
    assert _fires(s, "reports.monthly", "2027-12-20", 4) == ["2028-01-03 07:30", "2028-02-03 07:30",
                                                              "2028-03-03 07:30", "2028-04-03 07:30"]
    assert _fires(s, "reports.quarterly", "2027-12-20", 3) == ["2028-01-12 07:30", "2028-04-12 07:30",
                                                                "2028-07-12 07:30"]
    assert _fires(s, "reports.annual", "2027-06-01", 2) == ["2028-01-25 07:30", "2029-01-25 07:30"]
    assert {j.id for j in job_specs(s)} >= {"reports.monthly", "reports.key-units", "reports.quarterly",
                                            "reports.annual"}  # accepted by park.jobs


@pytest.mark.parametrize("kind, due, period", [
    ("monthly", "2028-03-05 06:00", "2028-02"),  # a leap February
    ("monthly", "2027-01-05 06:00", "2026-12"),  # across the year end
    ("monthly", "2026-11-05 05:59", "2026-09"),  # a minute early: October is not due yet
    ("key-units", "2026-11-05 06:00", "2026-10"),
    ("quarterly", "2027-01-10 06:00", "2026-Q4"),
    ("quarterly", "2028-04-10 06:00", "2028-Q1"),
    ("annual", "2029-01-20 06:00", "2028"),
])
def test_the_period_comes_from_the_time_the_run_was_due(kind, due, period):
    cfg = report_settings(Settings())
    scheduled_for = LOCAL(due, tz=TZ).tz_convert("UTC")
    got = due_periods(set(), kind, scheduled_for, cfg.day_of(kind), cfg.hour, cfg.minute, TZ, cfg.catch_up)
    assert [p.label for p in got] == [period]


def test_missed_periods_are_caught_up_once_back_to_the_newest_archived():
    scheduled_for = LOCAL("2026-11-05 06:00", tz=TZ)
    got = due_periods({"2026-07"}, "monthly", scheduled_for, 5, 6, 0, TZ, 12)
    assert [p.label for p in got] == ["2026-08", "2026-09", "2026-10"]
    assert len(due_periods({"2020-01"}, "monthly", scheduled_for, 5, 6, 0, TZ, 4)) == 4  # at most catch_up
    feb = ReportPeriod.parse("2028-02", "month")
    assert feb.bounds(TZ)[1] - feb.bounds(TZ)[0] == pd.Timedelta(days=29)
    assert due_at(feb, 5, 6, 0, TZ) == LOCAL("2028-03-05 06:00", tz=TZ)


def test_a_scheduled_run_archives_the_month_and_reports_the_failed_rule_by_name(tmp_path):
    settings, engine, store = build(tmp_path, {"reports": {"formats": ["csv"]}})
    settings.embedded_path = tmp_path / "ts.duckdb"
    store.close()
    spec = next(s for s in job_specs(settings) if s.id == "reports.monthly")
    due = LOCAL("2026-11-05 06:00", tz=TZ).tz_convert("UTC").to_pydatetime()
    record = execute_run(settings, engine, spec, due, clock=lambda: datetime(2026, 11, 5, 0, 1, tzinfo=UTC))
    assert record.outcome == "data_quality"
    assert "丙公司: data completeness 85.0% is below 90%" in record.detail
    assert "monthly 2026-10: version 1 (new)" in record.summary
    v = versions(engine, "p")
    assert list(zip(v["kind"], v["period"], v["version"], strict=True)) == [("monthly", "2026-10", 1)]
    assert runs(engine, "p")["trigger"].tolist() == ["scheduled"]
    assert execute_run(settings, engine, spec, due) is None  # the same due time never runs twice
    assert len(job_runs(engine, "reports.monthly")) == 1


def test_a_run_called_directly_uses_scheduled_for_not_the_wall_clock(tmp_path):
    settings, engine, store = build(tmp_path, {"reports": {"formats": ["csv"]}})
    ctx = JobContext(settings, engine, LOCAL("2026-11-05 06:00", tz=TZ).to_pydatetime(),
                     datetime(2027, 3, 1, tzinfo=UTC), park=PARK, store=store)
    from park.jobs import DataQualityFailure

    with pytest.raises(DataQualityFailure) as failure:
        run_monthly(ctx)
    assert "2026-10" in failure.value.summary and "丙公司" in failure.value.details
    assert versions(engine, "p")["period"].tolist() == ["2026-10"]
    store.close()


@pytest.mark.parametrize("section, values, message", [
    ({"reports": {"monthly_day": 31}}, None, "[reports] monthly_day = 31: must be a whole number 1-28"),
    ({"reports": {"weekly_day": 1}}, None, "unknown [reports] setting(s) weekly_day; allowed:"),
    ({"reports": {"formats": ["docx"]}}, None, "unknown format(s) docx"),
    ({"reports": {"recipients": {"monthly": ["not-an-address"]}}}, None, "'not-an-address' is not an e-mail address"),
    ({"reports": {"recipients": {"weekly": ["a@b.cn"]}}}, None, "recipients.weekly: unknown report kind"),
    ({"smtp": {"security": "tls"}}, "smtp", "[smtp] security = 'tls': allowed: starttls, ssl, none"),
    ({"smtp": {"user": "x"}}, "smtp", "unknown [smtp] setting(s) user"),
])
def test_bad_report_and_smtp_settings_name_the_key(section, values, message):
    s = Settings(**section)
    with pytest.raises(SettingsError) as err:
        smtp_settings(s, env={}) if values == "smtp" else report_settings(s)
    assert message in str(err.value)


def test_smtp_credentials_come_from_the_environment_and_ssl_defaults_to_465():
    s = Settings(smtp={"host": "mail.example", "security": "ssl", "from": "p@park.example"})
    smtp = smtp_settings(s, env={"PARKCARBON_SMTP_USERNAME": "u", "PARKCARBON_SMTP_PASSWORD": "pw"})
    assert (smtp.port, smtp.username, smtp.password) == (465, "u", "pw")
    assert "pw" not in repr(smtp)
