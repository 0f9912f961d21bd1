"""Scheduled jobs: what runs in `parkcarbon jobs`, when, and what each run did (docs/jobs.md).

Jobs are declared by provider modules (JOB_PROVIDERS, each with `scheduled_jobs(settings) -> list[JobSpec]`) and
scheduled by APScheduler 3 with cron triggers in the park's local time.  The schedule lives in the metadata
database (APScheduler's SQLAlchemyJobStore table `apscheduler_jobs`), so a restart knows which runs it missed and
catches each job up once (coalesced).  One process at a time is the leader (a lease row in `jobs_leader`); every run
is claimed in the run log `job_runs` under a unique (job, scheduled_for, attempt) key first, so two processes can
never both run the same due run.  A job function `run(ctx: JobContext) -> str` produces the period that was due at
`ctx.scheduled_for`, not the one of the wall clock.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

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
    select,
)
from sqlalchemy.orm import Mapped, mapped_column

from park.metadata import Base, UTCDateTime
from park.settings import Settings

if TYPE_CHECKING:
    from park.model import Park
    from park.store import TimeSeriesStore

log = logging.getLogger(__name__)

# Modules that declare scheduled jobs; each exposes `scheduled_jobs(settings) -> list[JobSpec]`.
JOB_PROVIDERS: tuple[str, ...] = ("forecasting.jobs", "portal.reports.schedule")

CRON_FIELDS = ("year", "month", "day", "week", "day_of_week", "hour", "minute", "second")
OUTCOMES = ("success", "data_quality", "error")
RUNNING = "running"  # the outcome of a run that has been claimed and has not finished (or whose process died)
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
