"""Scheduled jobs: what runs in `parkcarbon jobs`, when, and what each run did (docs/jobs.md).

Jobs are declared by provider modules (JOB_PROVIDERS, each with `scheduled_jobs(settings) -> list[JobSpec]`) and
scheduled by APScheduler 3 with cron triggers in the park's local time.  The schedule lives in the metadata
database (APScheduler's SQLAlchemyJobStore table `apscheduler_jobs`), so a restart knows which runs it missed and
catches each job up once (coalesced).  One process at a time is the leader (a lease row in `jobs_leader`); every run
is claimed in the run log `job_runs` under a unique (job, scheduled_for, attempt) key first, so two processes can
never both run the same due run.  A job function `run(ctx: JobContext) -> str` produces the period that was due at
`ctx.scheduled_for`, not the one of the wall clock.

Which process runs them: `parkcarbon jobs` (park/jobs_cli.py) on InfluxDB; on the embedded store (one DuckDB file,
one process) the portal process itself, in a thread (JobsHost), sharing its store under the same lease.
"""

from __future__ import annotations

import importlib
import logging
import os
import socket
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import STATE_PAUSED
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import (
    Engine,
    Float,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    Unicode,
    UniqueConstraint,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Mapped, mapped_column

from park.metadata import Base, UTCDateTime
from park.settings import Settings, SettingsError, register_section

if TYPE_CHECKING:
    from park.model import Park
    from park.store import TimeSeriesStore

log = logging.getLogger(__name__)

# Modules that declare scheduled jobs; each exposes `scheduled_jobs(settings) -> list[JobSpec]`.
JOB_PROVIDERS: tuple[str, ...] = ("forecasting.jobs", "portal.reports.schedule")

CRON_FIELDS = ("year", "month", "day", "week", "day_of_week", "hour", "minute", "second")
OUTCOMES = ("success", "data_quality", "error")
RUNNING = "running"  # the outcome of a run that has been claimed and has not finished (or whose process died)
INTERRUPTED = "interrupted"  # the summary of a run whose process died or lost the lease: it is run again
TRIGGERS = ("schedule", "manual")
JOBS_SETTINGS = {
    "lease_seconds": "seconds a leader's lease lasts without renewal (a standby takes over after it); default 60",
    "heartbeat_seconds": "seconds between lease renewals and standby attempts; default 10, under lease_seconds / 2",
    "providers": "extra provider modules (list of names) besides park.jobs.JOB_PROVIDERS",
    "disabled": "job ids (list) that are not scheduled",
    "cron": "per-job cron fields over the job's own, e.g. [jobs.cron.\"reports.monthly\"] day = 5",
}


@dataclass(frozen=True)
class JobSpec:
    """A scheduled job: `func` is "module:function" taking a JobContext; `cron` holds APScheduler CronTrigger
    fields (month, day, day_of_week, hour, minute, ...) read in the park's local time."""

    id: str
    func: str
    cron: dict
    description: str = ""


class DataQualityFailure(Exception):
    """Raised by a job whose input fails a data-quality rule: the run is logged as `data_quality` with `details`
    (which enterprises, which rule), not as a crash."""

    def __init__(self, summary: str, details: str | Iterable[str] = ""):
        super().__init__(summary)
        self.summary = summary
        self.details = details if isinstance(details, str) else "\n".join(details)


class JobsError(RuntimeError):
    """A job that cannot be scheduled or run as declared (unknown id, bad func reference, duplicate id)."""


class LeaseLost(RuntimeError):
    """This process is no longer the jobs leader: it must not run or advance anything."""


def utcnow() -> datetime:
    return datetime.now(UTC)


class JobContext:
    """What a job function gets: the settings, the metadata engine, the park and the store (both loaded on first
    use), `scheduled_for` (aware UTC: the time the run was due; derive the period from it) and `now` (aware UTC)."""

    def __init__(self, settings: Settings, engine: Engine, scheduled_for: datetime, now: datetime, *,
                 job_id: str = "", park: Park | None = None, store: TimeSeriesStore | None = None):
        if scheduled_for.tzinfo is None or now.tzinfo is None:
            raise ValueError("JobContext times must be timezone-aware")
        self.settings = settings
        self.engine = engine
        self.scheduled_for = scheduled_for.astimezone(UTC)
        self.now = now.astimezone(UTC)
        self.job_id = job_id
        self._park = park
        self._store = store
        self._own_store = False

    @property
    def timezone(self) -> ZoneInfo:
        return ZoneInfo(self.settings.timezone)

    @property
    def local_scheduled_for(self) -> datetime:
        """`scheduled_for` in the park's local time (a report due 2026-11-03 06:00 local is for October)."""
        return self.scheduled_for.astimezone(self.timezone)

    @property
    def park(self) -> Park:
        if self._park is None:
            from park.metadata import load_park

            self._park = load_park(self.engine)
        return self._park

    @property
    def store(self) -> TimeSeriesStore:
        if self._store is None:
            from park.store import open_store

            self._store = open_store(self.settings, self.park.catalog())
            self._own_store = True
        return self._store

    def close(self) -> None:
        """Close the store if this context opened it."""
        if self._own_store and self._store is not None:
            self._store.close()
            self._store = None
            self._own_store = False


# --- tables (made by park/migrations/versions/0006_jobs.py) ------------------------------------------------------


class SchedulerJobRow(Base):
    """APScheduler's SQLAlchemyJobStore table, declared here so the migration owns it (its columns, exactly)."""

    __tablename__ = "apscheduler_jobs"

    id: Mapped[str] = mapped_column(Unicode(191), primary_key=True)
    next_run_time: Mapped[float | None] = mapped_column(Float(25), index=True)
    job_state: Mapped[bytes] = mapped_column(LargeBinary)


class JobsLeader(Base):
    """The jobs leader's lease: one row per lock name, held by `holder` until `expires_at` unless renewed."""

    __tablename__ = "jobs_leader"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(255))
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    acquired_at: Mapped[datetime] = mapped_column(UTCDateTime)
    renewed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class JobRun(Base):
    """One run of a job: claimed (outcome `running`) before it starts, finished with its outcome and summary."""

    __tablename__ = "job_runs"
    __table_args__ = (
        UniqueConstraint("job_id", "scheduled_for", "attempt", name="uq_job_runs_job_scheduled_attempt"),
        Index("ix_job_runs_started", "started"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(String(128))
    scheduled_for: Mapped[datetime] = mapped_column(UTCDateTime)
    attempt: Mapped[int] = mapped_column(Integer)
    trigger: Mapped[str] = mapped_column(String(16))
    started: Mapped[datetime] = mapped_column(UTCDateTime)
    finished: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    outcome: Mapped[str] = mapped_column(String(16))
    summary: Mapped[str] = mapped_column(Text, default="")
    detail: Mapped[str] = mapped_column(Text, default="")
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    holder: Mapped[str] = mapped_column(String(255))


@dataclass(frozen=True)
class RunRecord:
    """A row of the job run log (times aware UTC)."""

    id: int
    job_id: str
    scheduled_for: datetime
    attempt: int
    trigger: str
    started: datetime
    finished: datetime | None
    outcome: str
    summary: str
    detail: str
    host: str
    pid: int


def job_runs(engine: Engine, job_id: str | None = None, limit: int = 100, *,
             scheduled_for: datetime | None = None) -> list[RunRecord]:
    """The job run log, newest first: every run's outcome (success, data_quality, error, or running)."""
    t = JobRun.__table__
    query = select(t).order_by(t.c.started.desc(), t.c.id.desc()).limit(limit)
    if job_id is not None:
        query = query.where(t.c.job_id == job_id)
    if scheduled_for is not None:
        query = query.where(t.c.scheduled_for == scheduled_for.astimezone(UTC))
    with engine.connect() as connection:
        rows = connection.execute(query).mappings().all()
    return [RunRecord(**{k: row[k] for k in RunRecord.__dataclass_fields__}) for row in rows]


# --- settings ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class JobsConfig:
    """The [jobs] settings, checked (jobs_config)."""

    lease_seconds: float = 60.0
    heartbeat_seconds: float = 10.0
    providers: tuple[str, ...] = JOB_PROVIDERS
    disabled: frozenset[str] = frozenset()
    cron: dict[str, dict[str, Any]] = field(default_factory=dict)


def _number(value: Any, where: str, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise SettingsError(f"{where}: [jobs] {key} = {value!r} is not a positive number of seconds")
    return float(value)


def _names(value: Any, where: str, key: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise SettingsError(f"{where}: [jobs] {key} = {value!r} is not a list of names")
    return tuple(value)


def jobs_config(settings: Settings) -> JobsConfig:
    """The [jobs] section checked: SettingsError naming the file, the key and what is allowed."""
    return validate_jobs(settings.jobs or {}, settings.source, settings.timezone)


def validate_jobs(table: dict, where: str, timezone: str = "Asia/Shanghai") -> JobsConfig:
    """The [jobs] table of the settings file `where` checked (registered with park.settings, so every command
    checks it before doing anything): SettingsError naming the file, the key and what is allowed."""
    raw = dict(table)
    unknown = sorted(set(raw) - set(JOBS_SETTINGS))
    if unknown:
        raise SettingsError(f"{where}: unknown key(s) in [jobs]: {', '.join(unknown)}; allowed: "
                            f"{', '.join(JOBS_SETTINGS)}")
    lease = _number(raw.get("lease_seconds", 60), where, "lease_seconds")
    heartbeat = _number(raw.get("heartbeat_seconds", min(10.0, lease / 3)), where, "heartbeat_seconds")
    if heartbeat > lease / 2:
        raise SettingsError(f"{where}: [jobs] heartbeat_seconds = {heartbeat:g} must be at most half of "
                            f"lease_seconds = {lease:g}, or the lease can expire between two renewals")
    providers = JOB_PROVIDERS + tuple(p for p in _names(raw.get("providers", []), where, "providers")
                                      if p not in JOB_PROVIDERS)
    disabled = frozenset(_names(raw.get("disabled", []), where, "disabled"))
    cron_raw = raw.get("cron", {})
    if not isinstance(cron_raw, dict):
        raise SettingsError(f"{where}: [jobs] cron must be a table of job ids, e.g. [jobs.cron.\"reports.monthly\"]")
    cron: dict[str, dict[str, Any]] = {}
    for job_id, fields in cron_raw.items():
        if not isinstance(fields, dict):
            raise SettingsError(f"{where}: [jobs.cron.\"{job_id}\"] must be a table of cron fields "
                                f"({', '.join(CRON_FIELDS)})")
        bad = sorted(set(fields) - set(CRON_FIELDS))
        if bad:
            raise SettingsError(f"{where}: unknown key(s) in [jobs.cron.\"{job_id}\"]: {', '.join(bad)}; allowed: "
                                f"{', '.join(CRON_FIELDS)}")
        for key, value in fields.items():  # one by one, to name the field a bad value is in
            try:
                make_trigger({key: value}, timezone)
            except ValueError as exc:
                raise SettingsError(f"{where}: [jobs.cron.\"{job_id}\"] {key} = {value!r}: {exc}") from None
        cron[job_id] = dict(fields)
    return JobsConfig(lease, heartbeat, providers, disabled, cron)


register_section("jobs", validate_jobs)


# --- job declarations --------------------------------------------------------------------------------------------


def make_trigger(cron: dict[str, Any], timezone: str) -> CronTrigger:
    """The CronTrigger of `cron` fields in the park's local time (ValueError for a field it does not accept)."""
    bad = sorted(set(cron) - set(CRON_FIELDS))
    if bad:
        raise ValueError(f"unknown cron field(s) {', '.join(bad)}; allowed: {', '.join(CRON_FIELDS)}")
    return CronTrigger(**cron, timezone=ZoneInfo(timezone))


def resolve_func(ref: str) -> Callable[[JobContext], str]:
    """The function "module:function" names (JobsError when it cannot be imported)."""
    module_name, sep, name = ref.partition(":")
    if not sep or not module_name or not name:
        raise JobsError(f"job function {ref!r} is not of the form 'module:function'")
    try:
        target: Any = importlib.import_module(module_name)
        for part in name.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as exc:
        raise JobsError(f"job function {ref!r} cannot be imported: {exc}") from exc
    if not callable(target):
        raise JobsError(f"job function {ref!r} is not callable")
    return target


def _missing_module(exc: ModuleNotFoundError, module_name: str) -> bool:
    """Whether the provider module itself (or a package above it) does not exist, not a module it imports."""
    return exc.name is not None and (module_name == exc.name or module_name.startswith(exc.name + "."))


def job_specs(settings: Settings, config: JobsConfig | None = None) -> list[JobSpec]:
    """Every provider's JobSpecs with the [jobs] settings applied (cron overrides merged, disabled ones left out).

    A provider module that does not exist is skipped with a log line; a provider that fails otherwise, two jobs
    with one id, a bad func reference or cron field is a JobsError naming the job and its provider.
    """
    config = config or jobs_config(settings)
    specs: dict[str, JobSpec] = {}
    for module_name in config.providers:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if _missing_module(exc, module_name):
                log.info("job provider %s does not exist (yet): skipped", module_name)
                continue
            raise
        provide = getattr(module, "scheduled_jobs", None)
        if provide is None:
            raise JobsError(f"job provider {module_name} has no scheduled_jobs(settings) function")
        for spec in provide(settings):
            if not isinstance(spec, JobSpec):
                raise JobsError(f"job provider {module_name} returned {spec!r}, not a park.jobs.JobSpec")
            if spec.id in specs:
                raise JobsError(f"job id {spec.id!r} is declared twice (again by {module_name})")
            if spec.id in config.disabled:
                log.info("job %s is disabled in [jobs] disabled: not scheduled", spec.id)
                continue
            cron = {**spec.cron, **config.cron.get(spec.id, {})}
            try:
                make_trigger(cron, settings.timezone)
            except ValueError as exc:
                raise JobsError(f"job {spec.id} (from {module_name}): cron {cron}: {exc}") from None
            module_part, sep, name = spec.func.partition(":")
            if not sep or not module_part or not name:
                raise JobsError(f"job {spec.id} (from {module_name}): func {spec.func!r} is not 'module:function'")
            specs[spec.id] = JobSpec(spec.id, spec.func, cron, spec.description)
    for job_id in sorted(set(config.cron) - set(specs) - config.disabled):
        log.warning("[jobs.cron.%s] names no scheduled job: ignored", job_id)
    return list(specs.values())


# --- runs --------------------------------------------------------------------------------------------------------

SUMMARY_MAX = 2000
DETAIL_MAX = 100_000


def _host() -> str:
    return socket.gethostname()[:255]


def claim_run(engine: Engine, job_id: str, scheduled_for: datetime, *, trigger: str, holder: str, now: datetime,
              lease: Lease | None = None) -> int | None:
    """Record that this process starts the run (job_id, scheduled_for); its row id, or None when it must not run.

    A scheduled run is not run again once a scheduled attempt finished (whatever its outcome, unless it was marked
    interrupted: its process died or lost the lease, and it is run again as the next attempt); a scheduled attempt
    left `running` by a process that died or lost the lease is, when this process holds the lease, marked an
    interrupted error and run again as the next attempt.  A manual run always gets the next attempt.  Two
    processes claiming the same attempt at once meet the unique constraint: one wins; the other gets None for a
    scheduled run (it has been claimed), and tries the following attempt for a manual one.  With `lease`,
    LeaseLost unless it is still held.
    """
    for _ in range(5):
        claimed = _claim_once(engine, job_id, scheduled_for, trigger=trigger, holder=holder, now=now, lease=lease)
        if claimed is not None or trigger != "manual":
            return claimed
    raise JobsError(f"job {job_id} due {scheduled_for.isoformat()}: could not claim a manual attempt (five "
                    "concurrent claims won by others)")


def _claim_once(engine: Engine, job_id: str, scheduled_for: datetime, *, trigger: str, holder: str, now: datetime,
                lease: Lease | None) -> int | None:
    t = JobRun.__table__
    scheduled_for = scheduled_for.astimezone(UTC)
    try:
        with engine.begin() as connection:
            if lease is not None and not lease.held(connection, now):
                raise LeaseLost(f"{holder} no longer holds the jobs lease")
            rows = connection.execute(
                select(t.c.id, t.c.attempt, t.c.trigger, t.c.outcome, t.c.holder, t.c.summary)
                .where(t.c.job_id == job_id, t.c.scheduled_for == scheduled_for)).all()
            if trigger == "schedule":
                if any(r.trigger == "schedule" and r.outcome != RUNNING
                       and not (r.outcome == "error" and r.summary == INTERRUPTED) for r in rows):
                    log.info("job %s due %s has already run: not run again", job_id, scheduled_for.isoformat())
                    return None
                for r in rows:
                    if r.trigger == "schedule" and r.outcome == RUNNING:
                        if r.holder == holder or lease is None:
                            return None  # this process runs it; or, not being the leader, we cannot tell it died
                        connection.execute(update(t).where(t.c.id == r.id).values(
                            outcome="error", finished=now, summary=INTERRUPTED,
                            detail=f"the run was interrupted: {r.holder} stopped or lost the jobs lease before it "
                                   f"finished; run again by {holder} as attempt {max(x.attempt for x in rows) + 1}"))
            attempt = max((r.attempt for r in rows), default=0) + 1
            result = connection.execute(insert(t).values(
                job_id=job_id, scheduled_for=scheduled_for, attempt=attempt, trigger=trigger, started=now,
                finished=None, outcome=RUNNING, summary="", detail="", host=_host(), pid=os.getpid(),
                holder=holder))
            return int(result.inserted_primary_key[0])
    except IntegrityError:
        log.info("job %s due %s was claimed by another process at the same moment: not run here", job_id,
                 scheduled_for.isoformat())
        return None


def mark_interrupted(engine: Engine, holder: str, now: datetime) -> int:
    """Mark the scheduled runs other processes left `running` as interrupted errors (a new leader does this: no
    other process runs scheduled jobs now); how many.  A run still finishing elsewhere overwrites it with its
    own outcome."""
    t = JobRun.__table__
    with engine.begin() as connection:
        marked = connection.execute(update(t).where(
            t.c.outcome == RUNNING, t.c.trigger == "schedule", t.c.holder != holder,
        ).values(outcome="error", summary=INTERRUPTED, finished=now,
                 detail=f"the run was interrupted: its process stopped or lost the jobs lease before it finished "
                        f"(noticed by {holder}, the next leader)")).rowcount
    if marked:
        log.warning("jobs: %d scheduled run(s) left unfinished by a previous leader marked interrupted", marked)
    return marked


def _finish(engine: Engine, run_id: int, outcome: str, summary: str, detail: str, finished: datetime) -> None:
    """Record the run's outcome, trying again for a while if the database is busy (SQLite) or unreachable: a run
    that happened must not stay `running` in the log."""
    t = JobRun.__table__
    for wait_s in (1, 2, 4, 8, None):
        try:
            with engine.begin() as connection:
                connection.execute(update(t).where(t.c.id == run_id).values(
                    outcome=outcome, summary=summary[:SUMMARY_MAX], detail=detail[:DETAIL_MAX], finished=finished))
            return
        except OperationalError as exc:
            if wait_s is None:
                raise
            log.warning("job run %d: recording its outcome failed (%s); trying again in %d s", run_id, exc.orig,
                        wait_s)
            time.sleep(wait_s)


def execute_run(settings: Settings, engine: Engine, spec: JobSpec, scheduled_for: datetime, *,
                trigger: str = "schedule", holder: str | None = None, clock: Callable[[], datetime] = utcnow,
                lease: Lease | None = None, store: TimeSeriesStore | None = None,
                park: Park | None = None) -> RunRecord | None:
    """Claim, run and log one run of `spec` due at `scheduled_for`; its log record, or None if it was not run
    (already run, or claimed by another process).  The job's exception becomes the outcome, never escapes:
    DataQualityFailure -> data_quality with its details, anything else -> error with the traceback.

    `store` (and `park`): an already-open store the job uses instead of opening its own (the process holding the
    embedded store hosts the jobs: JobsHost); it is not closed after the run."""
    if trigger not in TRIGGERS:
        raise ValueError(f"trigger {trigger!r} is not one of {TRIGGERS}")
    holder = holder or process_holder()
    started = clock()
    run_id = claim_run(engine, spec.id, scheduled_for, trigger=trigger, holder=holder, now=started, lease=lease)
    if run_id is None:
        return None
    log.info("job %s: running (due %s, %s)", spec.id, scheduled_for.astimezone(ZoneInfo(settings.timezone))
             .isoformat(), trigger)
    context = JobContext(settings, engine, scheduled_for, started, job_id=spec.id, park=park, store=store)
    try:
        result = resolve_func(spec.func)(context)
        outcome, summary, detail = "success", "" if result is None else str(result), ""
    except DataQualityFailure as exc:
        outcome, summary, detail = "data_quality", exc.summary, exc.details
    except Exception as exc:
        outcome, detail = "error", traceback.format_exc()
        summary = f"{type(exc).__name__}: {exc}".splitlines()[0] if str(exc) else type(exc).__name__
    finally:
        try:
            context.close()
        except Exception:  # a store that fails to close must not lose the run's outcome
            log.exception("job %s: closing the store failed", spec.id)
    _finish(engine, run_id, outcome, summary, detail, clock())
    level = logging.INFO if outcome == "success" else logging.WARNING
    log.log(level, "job %s: %s: %s", spec.id, outcome, summary)
    return next(r for r in job_runs(engine, spec.id, limit=1_000, scheduled_for=scheduled_for) if r.id == run_id)


def last_fire_time(trigger: CronTrigger, now: datetime) -> datetime | None:
    """The latest time at or before `now` at which `trigger` fired (None if none in the last four years)."""
    for span in (timedelta(hours=1), timedelta(days=1), timedelta(days=32), timedelta(days=367),
                 timedelta(days=1462)):
        fire = trigger.get_next_fire_time(None, now - span)
        if fire is None or fire > now:
            continue
        last = fire
        while fire is not None and fire <= now:
            last = fire
            fire = trigger.get_next_fire_time(fire, fire + timedelta(microseconds=1))
        return last
    return None


# --- the leader lease --------------------------------------------------------------------------------------------


def process_holder() -> str:
    """A holder id unique to this process: host:pid:random."""
    return f"{_host()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Lease:
    """The jobs leader lease: a row in `jobs_leader` taken with one conditional UPDATE (free, expired or ours) or,
    when there is no row, one INSERT (the primary key makes a second INSERT fail): atomic on SQLite and on
    PostgreSQL, which re-checks the WHERE of concurrent UPDATEs on the row's newest version."""

    def __init__(self, engine: Engine, holder: str | None = None, *, name: str = "jobs", seconds: float = 60.0,
                 clock: Callable[[], datetime] = utcnow):
        self.engine, self.name, self.seconds, self.clock = engine, name, seconds, clock
        self.holder = holder or process_holder()
        self.expires_at: datetime | None = None  # our own view: until when we may act as leader

    def acquire(self) -> bool:
        """Take the lease if it is free, expired or ours (renewing it); whether we hold it now."""
        t = JobsLeader.__table__
        now = self.clock()
        expires = now + timedelta(seconds=self.seconds)
        values = {"holder": self.holder, "host": _host(), "pid": os.getpid(), "renewed_at": now,
                  "expires_at": expires}
        try:
            with self.engine.begin() as connection:
                taken = connection.execute(update(t).where(
                    t.c.name == self.name, t.c.holder != self.holder, t.c.expires_at <= now,
                ).values(**values, acquired_at=now)).rowcount
                if not taken:
                    taken = connection.execute(update(t).where(
                        t.c.name == self.name, t.c.holder == self.holder).values(**values)).rowcount
            if not taken:
                with self.engine.begin() as connection:
                    connection.execute(insert(t).values(name=self.name, acquired_at=now, **values))
        except IntegrityError:
            return False
        except OperationalError as exc:  # e.g. SQLite busy: keep what we had until it runs out
            log.warning("jobs lease: the metadata database did not answer (%s)", exc.orig)
            return self.expires_at is not None and now < self.expires_at
        self.expires_at = expires
        return True

    def renew(self) -> bool:
        """Extend the lease we hold; False once it is lost (taken by another, or expired unrenewed)."""
        t = JobsLeader.__table__
        now = self.clock()
        expires = now + timedelta(seconds=self.seconds)
        try:
            with self.engine.begin() as connection:
                renewed = connection.execute(update(t).where(
                    t.c.name == self.name, t.c.holder == self.holder, t.c.expires_at > now,
                ).values(renewed_at=now, expires_at=expires)).rowcount
        except OperationalError as exc:
            log.warning("jobs lease: renewal failed (%s)", exc.orig)
            return self.expires_at is not None and now < self.expires_at
        if renewed:
            self.expires_at = expires
            return True
        self.expires_at = None
        return False

    def held(self, connection: Any, now: datetime) -> bool:
        """Whether we hold the lease at `now`, read in the caller's transaction."""
        t = JobsLeader.__table__
        return connection.execute(select(t.c.name).where(
            t.c.name == self.name, t.c.holder == self.holder, t.c.expires_at > now)).first() is not None

    def release(self) -> None:
        """Give the lease up (a standby takes over at its next attempt)."""
        t = JobsLeader.__table__
        with self.engine.begin() as connection:
            connection.execute(update(t).where(t.c.name == self.name, t.c.holder == self.holder)
                               .values(expires_at=self.clock() - timedelta(microseconds=1)))
        self.expires_at = None


def current_leader(engine: Engine, name: str = "jobs") -> dict[str, Any] | None:
    """The lease row (holder, host, pid, acquired_at, renewed_at, expires_at), None if never taken."""
    t = JobsLeader.__table__
    with engine.connect() as connection:
        row = connection.execute(select(t).where(t.c.name == name)).mappings().first()
    return dict(row) if row else None


# --- the scheduler -----------------------------------------------------------------------------------------------


def scheduled_run(job_id: str) -> None:
    """The function stored with every job in the job store (a stable reference: providers may move their
    functions); ParkScheduler runs the job's current JobSpec instead of calling it."""
    raise JobsError(f"job {job_id} runs through park.jobs.ParkScheduler, not by calling the stored function")


class ParkScheduler(BackgroundScheduler):
    """APScheduler's BackgroundScheduler with an injectable clock, running each due run through `run(job_id,
    scheduled_for)` in the scheduler thread BEFORE the job store advances the job's next run time.

    `tick` is one pass of APScheduler 3.11's BaseScheduler._process_jobs (due jobs from the job store,
    Job._get_run_times, coalescing to the last run time, misfire grace, trigger.get_next_fire_time from the last
    run time, update_job) with `now` taken from the clock.  Running before advancing means a process that dies
    mid-run leaves the run due: the next leader finds it `running` in the log and runs it again (claim_run).
    """

    def __init__(self, run: Callable[[str, datetime], Any], *, clock: Callable[[], datetime] = utcnow,
                 **options: Any):
        super().__init__(**options)
        self._run_due = run
        self._clock = clock
        self.busy = threading.Lock()  # held during a tick: shutdown waits for the run in progress
        self.first: list[tuple[str, datetime]] = []  # (job id, due time) run once at the first tick (run_first)

    def now(self) -> datetime:
        return self._clock().astimezone(self.timezone)

    def _process_jobs(self) -> float | None:
        if self.state == STATE_PAUSED:
            return None
        try:
            return self.tick()
        except Exception:  # the metadata database failing must not end the scheduler thread: try again later
            log.exception("jobs: processing due jobs failed; retrying in %s s", self.jobstore_retry_interval)
            return self.jobstore_retry_interval

    def tick(self) -> float | None:
        """Run what is due now; seconds until the next due run (None when nothing is scheduled)."""
        with self.busy:
            while self.first:  # runs asked for once at start (JobsHost first_runs), in this thread, one at a time
                job_id, due = self.first.pop(0)
                try:
                    self._run_due(job_id, due)
                except LeaseLost as exc:
                    log.warning("%s: stopping", exc)
                    self.state = STATE_PAUSED
                    return None
                except Exception:  # not claimed or not logged: logged here, the schedule goes on
                    log.exception("job %s due %s could not be run", job_id, due)
            now = self.now()
            next_wakeup: datetime | None = None
            with self._jobstores_lock:
                for alias, jobstore in self._jobstores.items():
                    try:
                        due_jobs = jobstore.get_due_jobs(now)
                    except Exception as exc:
                        log.warning("error getting due jobs from job store %r: %s", alias, exc)
                        retry = now + timedelta(seconds=self.jobstore_retry_interval)
                        next_wakeup = retry if next_wakeup is None else min(next_wakeup, retry)
                        continue
                    for job in due_jobs:
                        run_times = job._get_run_times(now)
                        run_times = run_times[-1:] if run_times and job.coalesce else run_times
                        for run_time in run_times:
                            late = (now - run_time).total_seconds()
                            if job.misfire_grace_time is not None and late > job.misfire_grace_time:
                                log.warning("job %s due %s missed by %.0f s: skipped", job.id, run_time, late)
                                continue
                            try:
                                self._run_due(job.id, run_time)
                            except LeaseLost as exc:
                                log.warning("%s: stopping without advancing the schedule", exc)
                                self.state = STATE_PAUSED
                                return None
                            except Exception:  # not claimed or not logged (database down): keep it due
                                log.exception("job %s due %s could not be run; retrying in %s s", job.id,
                                              run_time, self.jobstore_retry_interval)
                                return self.jobstore_retry_interval
                        following = job.trigger.get_next_fire_time(run_times[-1], now) if run_times else None
                        if following is not None:
                            job._modify(next_run_time=following)
                            jobstore.update_job(job)
                        else:
                            jobstore.remove_job(job.id)
                    store_next = jobstore.get_next_run_time()
                    if store_next is not None and (next_wakeup is None or store_next < next_wakeup):
                        next_wakeup = store_next.astimezone(self.timezone)
            if next_wakeup is None:
                return None
            return min(max(next_wakeup.timestamp() - self.now().timestamp(), 0.0), threading.TIMEOUT_MAX)


def make_scheduler(settings: Settings, engine: Engine, run: Callable[[str, datetime], Any], *,
                   clock: Callable[[], datetime] = utcnow) -> ParkScheduler:
    """A ParkScheduler on the metadata database's job store, in the park's time zone."""
    return ParkScheduler(
        run, clock=clock, timezone=ZoneInfo(settings.timezone),
        jobstores={"default": SQLAlchemyJobStore(engine=engine)},
        job_defaults={"coalesce": True, "misfire_grace_time": None, "max_instances": 1})


def sync_jobs(scheduler: ParkScheduler, specs: Iterable[JobSpec], timezone: str) -> None:
    """Put `specs` in the started scheduler's job store: a job whose trigger is unchanged keeps its next run time
    (so a run missed while down is still due); a new job or a changed trigger runs next from now; a job no
    provider declares any more is removed."""
    now = scheduler.now()
    existing = {job.id: job for job in scheduler.get_jobs()}
    for spec in specs:
        trigger = make_trigger(spec.cron, timezone)
        old = existing.pop(spec.id, None)
        if old is not None and repr(old.trigger) == repr(trigger) and old.next_run_time is not None:
            next_run = old.next_run_time
        else:
            next_run = trigger.get_next_fire_time(None, now)
            if old is not None:
                log.info("job %s: schedule changed from %s to %s: next run %s", spec.id, old.trigger, trigger,
                         next_run)
        scheduler.add_job(scheduled_run, trigger, args=(spec.id,), id=spec.id, name=spec.description or spec.id,
                          replace_existing=True, next_run_time=next_run, coalesce=True, misfire_grace_time=None,
                          max_instances=1)
    for job_id in existing:
        log.info("job %s is no longer declared by any provider: removed from the schedule", job_id)
        scheduler.remove_job(job_id)


def serve_jobs(settings: Settings, engine: Engine, stop: threading.Event, *, config: JobsConfig | None = None,
               clock: Callable[[], datetime] = utcnow, store: TimeSeriesStore | None = None,
               park: Park | None = None, first_runs: Iterable[str] = (), lease: Lease | None = None) -> int:
    """Run as the jobs leader, or wait as standby until the lease is free, until `stop` is set; then finish the
    run in progress and release the lease.  Returns the exit status.

    `store`/`park`: this process's open store, given to every run (JobsHost).  `first_runs`: job ids run once as
    soon as this process leads, for their latest due time (as scheduled runs: a due time already run is not run
    again), before the schedule's own due runs."""
    config = config or jobs_config(settings)
    specs = {spec.id: spec for spec in job_specs(settings, config)}
    first = [job_id for job_id in first_runs if job_id in specs]
    for job_id in sorted(set(first_runs) - set(first)):
        log.info("jobs: %s is not scheduled (disabled or not declared): not run at start", job_id)
    lease = lease or Lease(engine, seconds=config.lease_seconds, clock=clock)
    log.info("jobs: %d job(s) from %s; holder %s", len(specs), ", ".join(config.providers), lease.holder)
    standby_logged = False
    while not stop.is_set():
        if not lease.acquire():
            if not standby_logged:
                leader = current_leader(engine) or {}
                log.info("jobs: standby; %s is the leader (lease until %s)", leader.get("holder"),
                         leader.get("expires_at"))
                standby_logged = True
            stop.wait(config.heartbeat_seconds)
            continue
        standby_logged = False
        log.info("jobs: leader (%s)", lease.holder)
        _lead(settings, engine, specs, lease, stop, config, clock, store=store, park=park, first=first)
    log.info("jobs: stopped")
    return 0


def _lead(settings: Settings, engine: Engine, specs: dict[str, JobSpec], lease: Lease, stop: threading.Event,
          config: JobsConfig, clock: Callable[[], datetime], *, store: TimeSeriesStore | None = None,
          park: Park | None = None, first: Iterable[str] = ()) -> None:
    def run(job_id: str, scheduled_for: datetime) -> None:
        spec = specs.get(job_id)
        if spec is None:
            log.warning("job %s is in the job store but no provider declares it: not run", job_id)
            return
        execute_run(settings, engine, spec, scheduled_for, trigger="schedule", holder=lease.holder, clock=clock,
                    lease=lease, store=store, park=park)

    mark_interrupted(engine, lease.holder, clock())
    scheduler = make_scheduler(settings, engine, run, clock=clock)
    scheduler.start(paused=True)
    try:
        sync_jobs(scheduler, specs.values(), settings.timezone)
        now = clock()
        for job_id in first:
            due = last_fire_time(make_trigger(specs[job_id].cron, settings.timezone), now)
            if due is not None:
                scheduler.first.append((job_id, due))
        scheduler.resume()
        while not stop.wait(config.heartbeat_seconds):
            if not lease.renew():
                log.warning("jobs: lost the lease (not renewed in time, or taken over): standing by")
                break
    finally:
        scheduler.pause()
        while not scheduler.busy.acquire(timeout=config.heartbeat_seconds):
            lease.renew()  # a run is in progress: keep the lease while it finishes
        scheduler.busy.release()
        scheduler.shutdown(wait=False)
        if stop.is_set():
            lease.release()
            log.info("jobs: lease released")


class JobsHost:
    """The scheduled jobs in a background thread of a process that holds the time-series store: on the embedded
    store (one DuckDB file, one process) the portal process (`parkcarbon serve`'s one worker, `parkcarbon demo`)
    runs them itself, as `parkcarbon jobs` would: the same leader lease (a `parkcarbon jobs` on the same metadata
    database stays standby), the same run log, each run given this process's store instead of opening its own.

    The embedded store is shared safely: each thread reads through its own DuckDB cursor and writes go through the
    store's write lock (park.store.embedded).  Nothing a job raises leaves the thread (it is the run's outcome), and
    a failure of the scheduler itself is logged, never raised into the portal.  `stop()` (also at interpreter exit)
    lets the run in progress finish and releases the lease.
    """

    def __init__(self, settings: Settings, engine: Engine, store: TimeSeriesStore, park: Park | None = None, *,
                 first_runs: Iterable[str] = (), clock: Callable[[], datetime] = utcnow, role: str = "portal"):
        self.settings, self.engine, self.store, self.park = settings, engine, store, park
        self.first_runs, self.clock, self.role = tuple(first_runs), clock, role
        self.config = jobs_config(settings)
        self.lease = Lease(engine, seconds=self.config.lease_seconds, clock=clock)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="parkcarbon-jobs", daemon=True)
        self.failed: BaseException | None = None

    @property
    def holder(self) -> str:
        return self.lease.holder

    def start(self) -> JobsHost:
        import atexit

        if logging.getLogger("park.jobs").level == logging.NOTSET:
            logging.getLogger("park.jobs").setLevel(logging.INFO)  # the run lines belong in the portal's log
        log.info("jobs: the scheduled jobs run in this %s process (pid %d, holder %s) on its %s store, as the "
                 "jobs leader when no other process holds the lease (docs/jobs.md)", self.role, os.getpid(),
                 self.holder, getattr(self.store, "backend", "time-series"))
        atexit.register(self._at_exit)
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            serve_jobs(self.settings, self.engine, self._stop, config=self.config, clock=self.clock,
                       store=self.store, park=self.park, first_runs=self.first_runs, lease=self.lease)
        except Exception as exc:  # the portal goes on without its jobs; the reason is in its log
            self.failed = exc
            log.exception("jobs: the scheduler in this %s process stopped; no scheduled job runs here until it "
                          "restarts", self.role)

    def alive(self) -> bool:
        return self._thread.is_alive()

    def _at_exit(self) -> None:  # a run in progress gets as long as the lease lasts, then the process goes
        self.stop(timeout=self.config.lease_seconds)

    def stop(self, timeout: float | None = None) -> None:
        """Stop scheduling, let the run in progress finish (up to `timeout` seconds), release the lease."""
        import atexit

        atexit.unregister(self._at_exit)
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)


def register_jobs(sub: Any) -> Any:
    """Add the `jobs` sub-command (park/jobs_cli.py) to the parkcarbon sub-parsers."""
    from park.jobs_cli import register

    return register(sub)
