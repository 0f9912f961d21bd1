"""Scheduled jobs (park/jobs.py, docs/jobs.md): when they fire, catch-up after downtime, one leader, the run log.

The scheduler is APScheduler's (ParkScheduler: its job store in the metadata database, its cron triggers, its
coalescing) driven by a controlled clock: the test advances the clock to the scheduler's next wake-up, exactly as
the real scheduler thread sleeps until then.  Two real `parkcarbon jobs` processes share one metadata database
(a SQLite file, and a real PostgreSQL) to show that only one runs jobs and that the standby takes over.
"""

from __future__ import annotations

import itertools
import logging
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlalchemy import Engine

from park.jobs import (
    JOB_PROVIDERS,
    DataQualityFailure,
    JobContext,
    JobSpec,
    Lease,
    claim_run,
    current_leader,
    execute_run,
    job_runs,
    job_specs,
    jobs_config,
    last_fire_time,
    make_scheduler,
    make_trigger,
    sync_jobs,
)
from park.metadata import create_engine_from_url
from park.settings import Settings, SettingsError
from tests.support.postgres import postgres_server

ROOT = Path(__file__).resolve().parents[1]
SHANGHAI = ZoneInfo("Asia/Shanghai")
RUNS_FILE_ENV = "PARKCARBON_TEST_JOBS_FILE"


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)


# --- job functions and a provider used by these tests (also by the `parkcarbon jobs` subprocesses) ---------------


def monthly_report(ctx: JobContext) -> str:
    """The period a monthly report due at scheduled_for produces: the month before, in park local time."""
    due = ctx.local_scheduled_for
    month = due.replace(day=1) - timedelta(days=1)
    return f"month {month:%Y-%m}"


def quarterly_report(ctx: JobContext) -> str:
    due = ctx.local_scheduled_for
    end = due.replace(day=1) - timedelta(days=1)
    return f"quarter {end.year}Q{(end.month - 1) // 3 + 1}"


def annual_report(ctx: JobContext) -> str:
    return f"year {ctx.local_scheduled_for.year - 1}"


def stamp(ctx: JobContext) -> str:
    return f"due {ctx.local_scheduled_for:%Y-%m-%d %H:%M}"


def failing_quality(ctx: JobContext) -> str:
    raise DataQualityFailure("2 enterprises below 90 % completeness", ["E001 88.0 %", "E007 41.5 %"])


def crashing(ctx: JobContext) -> str:
    raise ZeroDivisionError("no readings")


def count_run(ctx: JobContext) -> str:
    """Append (job, scheduled_for, pid) to the file the test reads: every execution, whatever the log says."""
    with open(os.environ[RUNS_FILE_ENV], "a", encoding="utf-8") as out:
        out.write(f"{ctx.job_id} {ctx.scheduled_for.isoformat()} {os.getpid()}\n")
    time.sleep(0.2)
    return "counted"


def scheduled_jobs(settings: Settings) -> list[JobSpec]:
    """The provider the subprocess tests name in [jobs] providers: one job every second."""
    return [JobSpec("test.every_second", "tests.test_jobs:count_run", {"second": "*"}, "counts its runs")]


# --- fixtures ----------------------------------------------------------------------------------------------------


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = create_engine_from_url(f"sqlite:///{tmp_path / 'parkcarbon.db'}")
    yield engine
    engine.dispose()


@pytest.fixture
def settings(tmp_path: Path, engine: Engine) -> Settings:
    return Settings(data_dir=tmp_path, metadata_url=str(engine.url))


class Clock:
    """The controlled clock: aware UTC, moved by the test."""

    def __init__(self, start: datetime):
        self.now = start.astimezone(UTC)

    def __call__(self) -> datetime:
        return self.now


class Harness:
    """A ParkScheduler on the test database, ticked by hand on a controlled clock; restart() is a new process."""

    def __init__(self, settings: Settings, engine: Engine, specs: list[JobSpec], start: datetime):
        self.settings, self.engine, self.specs = settings, engine, {s.id: s for s in specs}
        self.clock = Clock(start)
        self.lease = Lease(engine, "test-process", seconds=100 * 366 * 86400, clock=self.clock)  # the leader
        assert self.lease.acquire()
        self.scheduler = None
        self.restart()

    def restart(self, specs: list[JobSpec] | None = None) -> None:
        self.close()
        if specs is not None:
            self.specs = {s.id: s for s in specs}

        def run(job_id: str, scheduled_for: datetime) -> None:
            execute_run(self.settings, self.engine, self.specs[job_id], scheduled_for, holder="test-process",
                        clock=self.clock, lease=self.lease)

        self.scheduler = make_scheduler(self.settings, self.engine, run, clock=self.clock)
        self.scheduler.start(paused=True)  # the thread idles; the test ticks
        sync_jobs(self.scheduler, self.specs.values(), self.settings.timezone)

    def run_until(self, end: datetime) -> None:
        """Run as the scheduler thread does: process due jobs, sleep until the next wake-up, again."""
        while True:
            wait = self.scheduler.tick()
            if wait is None or self.clock.now + timedelta(seconds=wait) > end:
                self.clock.now = end.astimezone(UTC)
                self.scheduler.tick()
                return
            self.clock.now += timedelta(seconds=wait)

    def close(self) -> None:
        from apscheduler.schedulers.base import STATE_STOPPED

        if self.scheduler is not None and self.scheduler.state != STATE_STOPPED:
            self.scheduler.shutdown(wait=False)


def runs(engine: Engine, job_id: str) -> list[tuple[datetime, datetime, str, str]]:
    """(scheduled_for local, started local, outcome, summary) of every run, oldest first."""
    return [(r.scheduled_for.astimezone(SHANGHAI), r.started.astimezone(SHANGHAI), r.outcome, r.summary)
            for r in reversed(job_runs(engine, job_id, limit=10_000))]


# --- when jobs fire ----------------------------------------------------------------------------------------------


def test_a_monthly_report_fires_on_day_1_local_time_for_the_month_before(settings: Settings, engine: Engine) -> None:
    spec = JobSpec("reports.monthly", "tests.test_jobs:monthly_report", {"day": 1, "hour": 6, "minute": 0})
    h = Harness(settings, engine, [spec], local(2027, 12, 15))
    h.run_until(local(2028, 4, 15))
    got = runs(engine, spec.id)
    # 06:00 in Shanghai is 22:00 UTC the day before: the UTC date is still the previous month
    assert [(s, o, m) for s, _, o, m in got] == [
        (local(2028, 1, 1, 6), "success", "month 2027-12"),
        (local(2028, 2, 1, 6), "success", "month 2028-01"),
        (local(2028, 3, 1, 6), "success", "month 2028-02"),
        (local(2028, 4, 1, 6), "success", "month 2028-03"),
    ]
    assert all(started == scheduled for scheduled, started, _, _ in got)  # on time, not late
    assert got[0][0].astimezone(UTC) == datetime(2027, 12, 31, 22, tzinfo=UTC)
    h.close()


def test_a_month_end_job_fires_on_the_last_day_of_each_month_including_29_february_2028(
        settings: Settings, engine: Engine) -> None:
    spec = JobSpec("month.end", "tests.test_jobs:stamp", {"day": "last", "hour": 23, "minute": 30})
    h = Harness(settings, engine, [spec], local(2028, 1, 15))
    h.run_until(local(2028, 5, 1))
    assert [s for s, _, _, _ in runs(engine, spec.id)] == [
        local(2028, 1, 31, 23, 30), local(2028, 2, 29, 23, 30), local(2028, 3, 31, 23, 30), local(2028, 4, 30, 23, 30)]
    h.close()


def test_a_job_on_day_31_skips_the_short_months(settings: Settings, engine: Engine) -> None:
    spec = JobSpec("day31", "tests.test_jobs:stamp", {"day": 31, "hour": 1})
    h = Harness(settings, engine, [spec], local(2028, 1, 30))
    h.run_until(local(2028, 6, 1))
    assert [s for s, _, _, _ in runs(engine, spec.id)] == [local(2028, 1, 31, 1), local(2028, 3, 31, 1),
                                                          local(2028, 5, 31, 1)]
    h.close()


def test_quarterly_and_annual_reports_fire_after_quarter_and_year_ends(settings: Settings, engine: Engine) -> None:
    quarterly = JobSpec("reports.quarterly", "tests.test_jobs:quarterly_report",
                        {"month": "1,4,7,10", "day": 3, "hour": 6, "minute": 30})
    annual = JobSpec("reports.annual", "tests.test_jobs:annual_report", {"month": 1, "day": 15, "hour": 7})
    h = Harness(settings, engine, [quarterly, annual], local(2027, 11, 1))
    h.run_until(local(2030, 2, 1))
    assert [(s, m) for s, _, _, m in runs(engine, quarterly.id)] == [
        (local(2028, 1, 3, 6, 30), "quarter 2027Q4"), (local(2028, 4, 3, 6, 30), "quarter 2028Q1"),
        (local(2028, 7, 3, 6, 30), "quarter 2028Q2"), (local(2028, 10, 3, 6, 30), "quarter 2028Q3"),
        (local(2029, 1, 3, 6, 30), "quarter 2028Q4"), (local(2029, 4, 3, 6, 30), "quarter 2029Q1"),
        (local(2029, 7, 3, 6, 30), "quarter 2029Q2"), (local(2029, 10, 3, 6, 30), "quarter 2029Q3"),
        (local(2030, 1, 3, 6, 30), "quarter 2029Q4")]
    assert [(s, m) for s, _, _, m in runs(engine, annual.id)] == [
        (local(2028, 1, 15, 7), "year 2027"), (local(2029, 1, 15, 7), "year 2028"),
        (local(2030, 1, 15, 7), "year 2029")]
    h.close()


# --- downtime and restarts ---------------------------------------------------------------------------------------


def test_a_downtime_over_a_due_date_catches_up_once_with_the_period_that_was_due(
        settings: Settings, engine: Engine) -> None:
    spec = JobSpec("reports.monthly", "tests.test_jobs:monthly_report", {"day": 1, "hour": 6, "minute": 0})
    h = Harness(settings, engine, [spec], local(2027, 12, 20))
    h.run_until(local(2028, 1, 20))  # January's run (for December) happened; then the process stops
    h.close()
    h.clock.now = local(2028, 2, 10, 9, 15).astimezone(UTC)  # down over 1 February 06:00
    h.restart()
    h.scheduler.tick()
    h.restart()  # a second restart at the same moment runs nothing again
    h.scheduler.tick()
    h.run_until(local(2028, 3, 15))
    assert runs(engine, spec.id) == [
        (local(2028, 1, 1, 6), local(2028, 1, 1, 6), "success", "month 2027-12"),
        (local(2028, 2, 1, 6), local(2028, 2, 10, 9, 15), "success", "month 2028-01"),  # late, January's report
        (local(2028, 3, 1, 6), local(2028, 3, 1, 6), "success", "month 2028-02"),
    ]
    h.close()


def test_a_downtime_over_several_due_dates_runs_once_for_the_latest(settings: Settings, engine: Engine) -> None:
    spec = JobSpec("reports.monthly", "tests.test_jobs:monthly_report", {"day": 1, "hour": 6})
    h = Harness(settings, engine, [spec], local(2028, 1, 20))
    h.close()
    h.clock.now = local(2028, 4, 2).astimezone(UTC)  # Feb 1, Mar 1 and Apr 1 missed: coalesced into one run
    h.restart()
    h.scheduler.tick()
    assert [(s, m) for s, _, _, m in runs(engine, spec.id)] == [(local(2028, 4, 1, 6), "month 2028-03")]
    h.close()


def test_a_run_interrupted_by_a_dying_process_is_run_again_by_the_next(settings: Settings, engine: Engine) -> None:
    spec = JobSpec("reports.monthly", "tests.test_jobs:monthly_report", {"day": 1, "hour": 6})
    h = Harness(settings, engine, [spec], local(2028, 1, 20))
    h.close()
    due = local(2028, 2, 1, 6)
    # a process claimed February's run and died before finishing (its row stays `running`, the store not advanced)
    assert claim_run(engine, spec.id, due, trigger="schedule", holder="dead-host:1:x",
                     now=due.astimezone(UTC)) is not None
    h.clock.now = local(2028, 2, 1, 7).astimezone(UTC)
    h.restart()
    h.scheduler.tick()
    log = sorted(job_runs(engine, spec.id), key=lambda r: r.attempt)
    assert [(r.attempt, r.outcome, r.summary) for r in log] == [(1, "error", "interrupted"),
                                                                 (2, "success", "month 2028-01")]
    assert "dead-host:1:x" in log[0].detail and all(r.scheduled_for == due for r in log)
    h.scheduler.tick()
    assert len(job_runs(engine, spec.id)) == 2
    h.close()


def test_a_changed_schedule_replaces_the_stored_job_and_an_unchanged_one_keeps_its_due_run(
        settings: Settings, engine: Engine) -> None:
    spec = JobSpec("reports.monthly", "tests.test_jobs:monthly_report", {"day": 1, "hour": 6})
    h = Harness(settings, engine, [spec], local(2028, 1, 20))
    assert h.scheduler.get_job(spec.id).next_run_time == local(2028, 2, 1, 6)
    h.clock.now = local(2028, 1, 25).astimezone(UTC)
    h.restart([JobSpec(spec.id, spec.func, {"day": 3, "hour": 8})])
    assert h.scheduler.get_job(spec.id).next_run_time == local(2028, 2, 3, 8)
    h.restart([JobSpec("other", "tests.test_jobs:stamp", {"hour": 1})])  # a job no provider declares is removed
    assert [j.id for j in h.scheduler.get_jobs()] == ["other"]
    h.close()


def test_a_run_that_cannot_be_claimed_or_logged_stays_due(settings: Settings, engine: Engine) -> None:
    """The metadata database failing, or the lease lost, leaves the run due instead of advancing past it."""
    from apscheduler.schedulers.base import STATE_PAUSED, STATE_RUNNING
    from sqlalchemy.exc import OperationalError

    from park.jobs import LeaseLost

    calls: list[datetime] = []
    failures = [OperationalError("INSERT INTO job_runs", {}, Exception("database is locked")), LeaseLost("gone")]

    def run(job_id: str, due: datetime) -> None:
        calls.append(due)
        if failures:
            raise failures.pop(0)

    clock = Clock(local(2028, 1, 20))
    scheduler = make_scheduler(settings, engine, run, clock=clock)
    scheduler.start(paused=True)
    sync_jobs(scheduler, [JobSpec("m", "tests.test_jobs:stamp", {"day": 1, "hour": 6})], settings.timezone)
    clock.now = local(2028, 2, 1, 7).astimezone(UTC)
    assert scheduler.tick() == scheduler.jobstore_retry_interval  # database error: retry soon, still due
    assert scheduler.get_job("m").next_run_time == local(2028, 2, 1, 6)
    scheduler.state = STATE_RUNNING  # as if running, without waking its thread (the test ticks)
    assert scheduler.tick() is None and scheduler.state == STATE_PAUSED  # lease lost: stop, still due
    assert scheduler.get_job("m").next_run_time == local(2028, 2, 1, 6)
    assert scheduler.tick() > 0 and scheduler.get_job("m").next_run_time == local(2028, 3, 1, 6)
    assert calls == [local(2028, 2, 1, 6)] * 3
    scheduler.shutdown(wait=False)


@hsettings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    day=st.sampled_from([1, 3, 15, 28, 29, 30, 31, "last"]),
    hour=st.integers(0, 23),
    downtimes=st.lists(st.tuples(st.integers(0, 700), st.integers(1, 120)), max_size=4),
)
def test_every_due_run_runs_once_and_each_downtime_is_caught_up_once(
        settings: Settings, engine: Engine, day: object, hour: int, downtimes: list[tuple[int, int]]) -> None:
    """Over two years with downtimes (start day, length in days): a due time while up runs on time; the due times
    inside a downtime give one late run, for the last of them, at restart; nothing runs twice."""
    job_id = f"prop.{next(_examples)}"
    spec = JobSpec(job_id, "tests.test_jobs:stamp", {"day": day, "hour": hour})
    start, end = local(2027, 1, 1), local(2029, 1, 1)
    windows = []  # non-overlapping [down, up) intervals
    for offset, length in sorted(downtimes):
        down = start + timedelta(days=offset, hours=5, minutes=17)
        up = down + timedelta(days=length)
        if (windows and down <= windows[-1][1]) or up >= end:
            continue
        windows.append((down, up))
    h = Harness(settings, engine, [spec], start)
    for down, up in windows:
        h.run_until(down)
        h.close()
        h.clock.now = up.astimezone(UTC)
        h.restart()
    h.run_until(end)
    h.close()

    trigger = make_trigger(spec.cron, "Asia/Shanghai")
    fires, fire = [], trigger.get_next_fire_time(None, start)
    while fire <= end:  # run_until(end) includes `end`
        fires.append(fire)
        fire = trigger.get_next_fire_time(fire, fire)
    expected = []
    for f in fires:
        window = next(((d, u) for d, u in windows if d <= f < u), None)
        if window is None:
            expected.append((f, f))
        elif f == max(x for x in fires if window[0] <= x < window[1]):
            expected.append((f, window[1]))
    assert [(s, started) for s, started, _, _ in runs(engine, job_id)] == expected


_examples = itertools.count()


# --- outcomes and the run log ------------------------------------------------------------------------------------


def test_outcomes_success_data_quality_and_error_are_logged_with_details(settings: Settings, engine: Engine) -> None:
    due = local(2028, 3, 1, 6)
    clock = Clock(local(2028, 3, 1, 6, 0, 5))
    ok = execute_run(settings, engine, JobSpec("a", "tests.test_jobs:monthly_report", {}), due, clock=clock)
    dq = execute_run(settings, engine, JobSpec("b", "tests.test_jobs:failing_quality", {}), due, clock=clock)
    err = execute_run(settings, engine, JobSpec("c", "tests.test_jobs:crashing", {}), due, clock=clock)
    bad = execute_run(settings, engine, JobSpec("d", "tests.test_jobs:no_such_function", {}), due, clock=clock)
    assert (ok.outcome, ok.summary, ok.detail) == ("success", "month 2028-02", "")
    assert (dq.outcome, dq.summary, dq.detail) == ("data_quality", "2 enterprises below 90 % completeness",
                                                   "E001 88.0 %\nE007 41.5 %")
    assert (err.outcome, err.summary) == ("error", "ZeroDivisionError: no readings")
    assert "Traceback" in err.detail and "in crashing" in err.detail
    assert bad.outcome == "error" and "no_such_function" in bad.summary
    for record in (ok, dq, err, bad):
        assert record.scheduled_for == due and record.started == clock.now and record.finished == clock.now
        assert record.pid == os.getpid() and record.host and record.trigger == "schedule" and record.attempt == 1
    assert [r.job_id for r in job_runs(engine)] == ["d", "c", "b", "a"]  # newest first
    assert [r.job_id for r in job_runs(engine, "b")] == ["b"]


def test_a_due_run_is_claimed_once_however_often_it_is_asked(settings: Settings, engine: Engine) -> None:
    spec = JobSpec("a", "tests.test_jobs:stamp", {})
    due, clock = local(2028, 3, 1, 6), Clock(local(2028, 3, 1, 6))
    assert execute_run(settings, engine, spec, due, holder="p1", clock=clock).outcome == "success"
    assert execute_run(settings, engine, spec, due, holder="p2", clock=clock) is None
    assert claim_run(engine, "b", due, trigger="schedule", holder="p1", now=clock.now) is not None
    assert claim_run(engine, "b", due, trigger="schedule", holder="p1", now=clock.now) is None  # running here
    manual = execute_run(settings, engine, spec, due, trigger="manual", clock=clock)
    assert (manual.attempt, manual.trigger, manual.outcome) == (2, "manual", "success")
    assert len(job_runs(engine, "a")) == 2


def test_a_manual_claim_that_loses_a_race_takes_the_next_attempt(engine: Engine,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Another process inserts the attempt this one was about to take (the unique constraint refuses ours)."""
    import park.jobs as jobs

    due, now = local(2028, 3, 1, 6), datetime(2028, 3, 1, tzinfo=UTC)
    real, raced = jobs._claim_once, []

    def racing(engine: Engine, job_id: str, scheduled_for: datetime, **kw: object) -> int | None:
        if not raced:  # a rival claims attempt 1 at the same moment
            raced.append(real(engine, job_id, scheduled_for, **{**kw, "holder": "rival"}))
            return real(engine, job_id, scheduled_for, **kw) if kw["trigger"] != "manual" else None
        return real(engine, job_id, scheduled_for, **kw)

    monkeypatch.setattr(jobs, "_claim_once", racing)
    assert claim_run(engine, "m", due, trigger="manual", holder="me", now=now) is not None
    assert sorted((r.attempt, r.trigger) for r in job_runs(engine, "m")) == [(1, "manual"), (2, "manual")]
    raced.clear()
    assert claim_run(engine, "s", due, trigger="schedule", holder="me", now=now) is None  # the rival has it
    assert [r.attempt for r in job_runs(engine, "s")] == [1]


def test_last_fire_time_is_the_latest_scheduled_time_at_or_before_now() -> None:
    trigger = make_trigger({"day": 1, "hour": 6}, "Asia/Shanghai")
    assert last_fire_time(trigger, local(2028, 3, 15)) == local(2028, 3, 1, 6)
    assert last_fire_time(trigger, local(2028, 3, 1, 6)) == local(2028, 3, 1, 6)
    assert last_fire_time(trigger, local(2028, 3, 1, 5, 59)) == local(2028, 2, 1, 6)
    annual = make_trigger({"month": 1, "day": 15}, "Asia/Shanghai")
    assert last_fire_time(annual, local(2028, 1, 14)) == local(2027, 1, 15)


# --- settings and providers --------------------------------------------------------------------------------------


def test_jobs_settings_are_checked_with_the_file_the_key_and_what_is_allowed(tmp_path: Path) -> None:
    def with_jobs(jobs: dict) -> Settings:
        return Settings(data_dir=tmp_path, jobs=jobs, source="/etc/parkcarbon.toml")

    with pytest.raises(SettingsError, match=r"/etc/parkcarbon.toml: unknown key\(s\) in \[jobs\]: lease; "
                                            r"allowed: lease_seconds, heartbeat_seconds"):
        jobs_config(with_jobs({"lease": 5}))
    with pytest.raises(SettingsError, match=r"\[jobs.cron.\"reports.monthly\"\]: days; allowed: year, month, day"):
        jobs_config(with_jobs({"cron": {"reports.monthly": {"days": 5}}}))
    with pytest.raises(SettingsError, match=r"\[jobs.cron.\"reports.monthly\"\] day = 32: .*maximum value \(31\)"):
        jobs_config(with_jobs({"cron": {"reports.monthly": {"day": 32}}}))
    with pytest.raises(SettingsError, match="at most half of lease_seconds"):
        jobs_config(with_jobs({"lease_seconds": 10, "heartbeat_seconds": 6}))
    with pytest.raises(SettingsError, match="positive number"):
        jobs_config(with_jobs({"lease_seconds": "60"}))
    config = jobs_config(with_jobs({"lease_seconds": 30, "providers": ["tests.test_jobs"], "disabled": ["x"]}))
    assert (config.lease_seconds, config.heartbeat_seconds) == (30.0, 10.0)
    assert config.providers == (*JOB_PROVIDERS, "tests.test_jobs") and config.disabled == {"x"}


def test_every_command_refuses_a_bad_jobs_section_before_doing_anything(tmp_path: Path) -> None:
    from park.settings import load_settings

    config = tmp_path / "parkcarbon.toml"
    config.write_text('[jobs]\nlease_seconds = 60\nheartbeat = 5\n', encoding="utf-8")
    with pytest.raises(SettingsError, match=rf"{config}: unknown key\(s\) in \[jobs\]: heartbeat; allowed: "):
        load_settings(config, env={})
    config.write_text('[jobs.cron."reports.monthly"]\nhour = 25\n', encoding="utf-8")
    with pytest.raises(SettingsError, match=r'\[jobs.cron."reports.monthly"\] hour = 25'):
        load_settings(config, env={})


def test_providers_cron_overrides_disabled_jobs_and_missing_providers(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    settings = Settings(data_dir=tmp_path, jobs={
        "providers": ["tests.test_jobs", "tests.no_such_provider"],
        "cron": {"test.every_second": {"second": "*/10", "minute": "5"}}})
    with caplog.at_level(logging.INFO, logger="park.jobs"):
        specs = job_specs(settings)
    assert [(s.id, s.cron) for s in specs if s.id.startswith("test.")] == [
        ("test.every_second", {"second": "*/10", "minute": "5"})]  # merged over the job's own fields
    assert "tests.no_such_provider does not exist" in caplog.text
    disabled = Settings(data_dir=tmp_path, jobs={"providers": ["tests.test_jobs"], "disabled": ["test.every_second"]})
    assert [s.id for s in job_specs(disabled) if s.id.startswith("test.")] == []


# --- the leader lease --------------------------------------------------------------------------------------------


def lease_takeover(engine: Engine) -> None:
    clock = Clock(datetime(2028, 1, 1, tzinfo=UTC))
    a = Lease(engine, "host-a:1:a", seconds=30, clock=clock)
    b = Lease(engine, "host-b:2:b", seconds=30, clock=clock)
    assert a.acquire() and not b.acquire()
    clock.now += timedelta(seconds=20)
    assert a.renew() and not b.acquire()
    clock.now += timedelta(seconds=29)  # 49 s: a's renewal at 20 s holds until 50 s
    assert not b.acquire()
    clock.now += timedelta(seconds=2)  # a stopped renewing (it died): b takes over
    assert b.acquire() and not a.renew() and not a.acquire()
    assert current_leader(engine)["holder"] == "host-b:2:b"
    b.release()
    assert a.acquire()
    with engine.connect() as connection:
        assert a.held(connection, clock.now) and not b.held(connection, clock.now)


def test_the_lease_has_one_holder_and_passes_on_when_it_expires_sqlite(engine: Engine) -> None:
    lease_takeover(engine)


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    with postgres_server() as url:
        yield url


def fresh_postgres(url: str) -> Engine:
    """The test cluster's database emptied and upgraded to the newest schema."""
    from sqlalchemy import text

    engine = create_engine_from_url(url, create_tables=False)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()
    return create_engine_from_url(url)


def test_the_lease_has_one_holder_and_passes_on_when_it_expires_postgresql(postgres_url: str) -> None:
    engine = fresh_postgres(postgres_url)
    lease_takeover(engine)
    engine.dispose()


# --- two real `parkcarbon jobs` processes ------------------------------------------------------------------------


def write_config(tmp_path: Path, metadata_url: str, jobs: str = "") -> Path:
    """A settings file with only this file's provider's jobs scheduled (the real providers' jobs disabled)."""
    others = [s.id for s in job_specs(Settings(data_dir=tmp_path))]
    config = tmp_path / "parkcarbon.toml"
    config.write_text(f'data_dir = "{tmp_path}"\nmetadata_url = "{metadata_url}"\n\n[jobs]\n{jobs}'
                      f'providers = ["tests.test_jobs"]\ndisabled = {others!r}\n'.replace("'", '"'), encoding="utf-8")
    return config


def test_jobs_list_run_and_log_on_the_command_line(tmp_path: Path, engine: Engine, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    from portal.cli import main

    every_quarter_hour = 'cron = { "test.every_second" = { second = "0", minute = "*/15" } }\n'
    config = write_config(tmp_path, str(engine.url), every_quarter_hour)
    monkeypatch.setenv(RUNS_FILE_ENV, str(tmp_path / "executions.txt"))
    assert main(["--config", str(config), "jobs", "list"]) == 0
    listing = capsys.readouterr().out
    assert "test.every_second\n  counts its runs\n  cron (Asia/Shanghai): second=0, minute=*/15\n" in listing
    assert "next run: " in listing and "CST (not yet in the job store: computed)" in listing
    assert "last run: never" in listing and "leader: none has run yet" in listing

    assert main(["--config", str(config), "jobs", "run", "test.every_second", "--at", "2028-02-29T23:45"]) == 0
    assert capsys.readouterr().out.startswith("test.every_second due 2028-02-29 23:45:00 CST (attempt 1): success")
    assert main(["--config", str(config), "jobs", "run", "test.every_second", "--at", "2028-02-29T15:45:00+00:00"]) == 0
    assert "(attempt 2)" in capsys.readouterr().out  # the same due time again: a new attempt, both logged
    assert executions(tmp_path / "executions.txt") == [
        ("test.every_second", "2028-02-29T15:45:00+00:00", os.getpid())] * 2
    assert [(r.trigger, r.attempt) for r in job_runs(engine, "test.every_second")] == [("manual", 2), ("manual", 1)]

    assert main(["--config", str(config), "jobs", "run", "test.every_second"]) == 0  # its latest due time
    latest = job_runs(engine, "test.every_second", limit=1)[0].scheduled_for.astimezone(SHANGHAI)
    assert latest.second == 0 and latest.minute % 15 == 0 and datetime.now(UTC) - latest < timedelta(minutes=15)
    capsys.readouterr()
    assert main(["--config", str(config), "jobs", "log", "--job", "test.every_second"]) == 0
    assert capsys.readouterr().out.count("test.every_second  due ") == 3

    assert main(["--config", str(config), "jobs", "run", "no.such.job"]) == 2
    assert "no job 'no.such.job'; jobs: test.every_second" in capsys.readouterr().err
    assert main(["--config", str(config), "jobs", "run", "test.every_second", "--at", "29/02/2028"]) == 2
    assert "is not an ISO time" in capsys.readouterr().err


def start_jobs(config: Path, runs_file: Path) -> subprocess.Popen:
    env = {**os.environ, RUNS_FILE_ENV: str(runs_file), "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "portal.cli", "--config", str(config), "jobs"], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def executions(runs_file: Path) -> list[tuple[str, str, int]]:
    if not runs_file.exists():
        return []
    return [(job, due, int(pid)) for job, due, pid in (line.split() for line in runs_file.read_text().splitlines())]


def two_processes_one_leader(tmp_path: Path, metadata_url: str) -> None:
    engine = create_engine_from_url(metadata_url)  # upgraded, as `parkcarbon init` does
    config = write_config(tmp_path, metadata_url, "lease_seconds = 4\nheartbeat_seconds = 0.5\n")
    runs_file = tmp_path / "executions.txt"
    first = start_jobs(config, runs_file)
    second = None
    try:
        wait_for(lambda: (current_leader(engine) or {}).get("pid") == first.pid, 60, "the first process to lead")
        second = start_jobs(config, runs_file)
        wait_for(lambda: len(executions(runs_file)) >= 6, 60, "six runs")
        time.sleep(2)  # the second process is up (standby) by now: it must not run anything
        assert second.poll() is None and first.poll() is None
        before_kill = executions(runs_file)
        assert {pid for _, _, pid in before_kill} == {first.pid}
        assert (current_leader(engine) or {})["pid"] == first.pid

        killed_at = datetime.now(UTC)
        first.send_signal(signal.SIGKILL)  # the leader dies without releasing its lease
        first.wait(10)
        wait_for(lambda: any(pid == second.pid for _, _, pid in executions(runs_file)), 30, "the standby to take over")
        took_over = datetime.now(UTC)
        wait_for(lambda: sum(pid == second.pid for _, _, pid in executions(runs_file)) >= 3, 30, "three more runs")
        second.send_signal(signal.SIGTERM)
        assert second.wait(30) == 0
        second_output = second.stdout.read()
        assert "lease released" in second_output and "leader" in second_output

        done = executions(runs_file)
        counts = Counter((job, due) for job, due, _ in done)
        assert max(counts.values()) == 1, [k for k, v in counts.items() if v > 1]  # no due run executed twice
        log = job_runs(engine, "test.every_second", limit=10_000)
        print("executions", done, "log", [(r.scheduled_for.isoformat(), r.pid, r.outcome, r.summary) for r in log])
        assert sorted((r.scheduled_for.isoformat(), r.pid) for r in log) == sorted(
            (due, pid) for _, due, pid in done)  # the log holds exactly what ran
        # the leader was killed in a run or between runs: a run it left unfinished is logged as interrupted
        assert {r.summary for r in log if r.outcome != "success"} <= {"interrupted"}
        assert all(r.pid == first.pid for r in log if r.outcome != "success")  # SIGTERM let the last run finish
        by_second = [r for r in log if r.pid == second.pid]
        # the standby's first run is the catch-up of the seconds missed while nobody led: one run, due before it
        first_of_second = min(by_second, key=lambda r: r.started)
        assert first_of_second.scheduled_for < first_of_second.started
        assert killed_at - timedelta(seconds=1) <= first_of_second.scheduled_for <= took_over
        leader = current_leader(engine)
        assert leader["holder"].split(":")[1] == str(second.pid) and leader["expires_at"] <= datetime.now(UTC)
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait(10)
        engine.dispose()


def test_two_jobs_processes_on_one_sqlite_file_never_both_run_and_the_standby_takes_over(tmp_path: Path) -> None:
    two_processes_one_leader(tmp_path, f"sqlite:///{tmp_path / 'shared.db'}")


def test_two_jobs_processes_on_postgresql_never_both_run_and_the_standby_takes_over(
        tmp_path: Path, postgres_url: str) -> None:
    fresh_postgres(postgres_url).dispose()
    two_processes_one_leader(tmp_path, postgres_url)
