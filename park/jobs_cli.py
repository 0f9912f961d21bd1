"""`parkcarbon jobs`: run the scheduled jobs (leader or standby) until stopped; `jobs list`, `jobs run`, `jobs log`.

docs/jobs.md says what runs when, how the leader is chosen, how missed runs are caught up, and how to add a job.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy.exc import OperationalError

from park.jobs import (
    JobsError,
    current_leader,
    execute_run,
    job_runs,
    job_specs,
    jobs_config,
    last_fire_time,
    make_trigger,
    serve_jobs,
    utcnow,
)
from park.metadata import create_engine_from_url
from park.migrations import check_schema
from park.settings import Settings

# `parkcarbon jobs` and `jobs run` exit with this when the embedded store is held by another process (the portal,
# which runs the jobs itself on the embedded store: park.jobs.JobsHost); documented in docs/jobs.md and --help.
STORE_HELD_EXIT = 3
EXIT_STATUSES = {0: "stopped by SIGTERM or Ctrl-C (jobs run: the run succeeded)",
                 1: "jobs run: the run did not succeed (data_quality or error; details on stderr)",
                 2: "a job cannot be scheduled or run as declared, or a usage error",
                 STORE_HELD_EXIT: "the embedded store is held by another process: on the embedded store the portal "
                 "process (parkcarbon serve or demo) runs the jobs itself; nothing was run"}


def _engine(settings: Settings):
    engine = create_engine_from_url(settings.metadata_url, create_tables=False)
    check_schema(engine)
    return engine


def _local(value: datetime | None, tz: ZoneInfo) -> str:
    return "-" if value is None else value.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S %Z")


def held_store_message(settings: Settings, engine, command: str) -> str:
    """What `parkcarbon jobs` says when the embedded store is held by another process: who runs the jobs then."""
    tz = ZoneInfo(settings.timezone)
    leader = current_leader(engine)
    if leader is not None and leader["expires_at"] > utcnow():
        who = (f"the jobs leader now is {leader['holder']} (host {leader['host']}, pid {leader['pid']}; lease "
               f"until {_local(leader['expires_at'], tz)})")
    else:
        who = ("no process holds the jobs lease now: if it is `parkcarbon collect` or `parkcarbon import`, the jobs "
               "run when the portal runs again")
    return (f"parkcarbon {command}: the embedded store {settings.embedded_path} is held by another process. On the "
            "embedded store (one process at a time) the portal process, `parkcarbon serve` or `parkcarbon demo`, "
            f"runs the scheduled jobs itself; {who}. Nothing was run here (exit status {STORE_HELD_EXIT}). The run "
            "log: `parkcarbon jobs log`. To run the jobs in a process of their own, move the park to InfluxDB + "
            "PostgreSQL (docs/deploy.md).")


def _open_embedded(settings: Settings, engine, command: str):
    """On the embedded store: (park, store) opened for this process, whose jobs then share it; None (after saying
    why on stderr) when another process holds it.  ((None, None) on InfluxDB: each run opens its own client.)"""
    if settings.store_backend != "embedded":
        return None, None
    from park.metadata import ParkNotFoundError, load_park
    from park.store import StoreUnavailable, open_store

    try:
        park = load_park(engine)
    except ParkNotFoundError:  # no park imported yet: a job that needs the park or the store says so in its run
        return None, None
    try:
        return park, open_store(settings, park.catalog())
    except StoreUnavailable:
        print(held_store_message(settings, engine, command), file=sys.stderr)
        return None


def cmd_jobs(args: argparse.Namespace, settings: Settings) -> int:
    """Run until SIGTERM or SIGINT, as leader or standby; finish the run in progress and release the lease."""
    logging.getLogger("park.jobs").setLevel(logging.DEBUG if args.verbose else logging.INFO)
    try:
        config = jobs_config(settings)
        engine = _engine(settings)
        opened = _open_embedded(settings, engine, "jobs")
        if opened is None:
            return STORE_HELD_EXIT
        park, store = opened
        stop = threading.Event()

        def request_stop(signum: int, _frame: object) -> None:
            logging.getLogger("park.jobs").info("jobs: %s received: stopping", signal.Signals(signum).name)
            stop.set()

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
        try:
            return serve_jobs(settings, engine, stop, config=config, store=store, park=park)
        finally:
            if store is not None:
                store.close()
    except JobsError as exc:
        print(f"parkcarbon jobs: {exc}", file=sys.stderr)
        return 2


def cmd_jobs_list(args: argparse.Namespace, settings: Settings) -> int:
    """Every declared job with its cron, its next run (from the job store once a leader has run) and last run."""
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore

    tz = ZoneInfo(settings.timezone)
    try:
        specs = job_specs(settings)
    except JobsError as exc:
        print(f"parkcarbon jobs list: {exc}", file=sys.stderr)
        return 2
    engine = _engine(settings)
    try:
        stored = {job.id: job for job in SQLAlchemyJobStore(engine=engine).get_all_jobs()}
    except OperationalError:
        stored = {}
    now = utcnow()
    if not specs:
        print("no scheduled jobs (no provider module declares any)")
    for spec in specs:
        job = stored.get(spec.id)
        if job is not None:
            next_run, where = job.next_run_time, ""
        else:
            next_run, where = make_trigger(spec.cron, settings.timezone).get_next_fire_time(None, now), " (not yet " \
                "in the job store: computed)"
        last = job_runs(engine, spec.id, limit=1)
        last_text = f"{last[0].outcome} (due {_local(last[0].scheduled_for, tz)})" if last else "never"
        cron = ", ".join(f"{k}={v}" for k, v in spec.cron.items())
        print(f"{spec.id}\n  {spec.description}\n  cron ({settings.timezone}): {cron}\n"
              f"  next run: {_local(next_run, tz)}{where}\n  last run: {last_text}")
    leader = current_leader(engine)
    if leader is None:
        print("leader: none has run yet")
    else:
        if leader["expires_at"] > now:
            print(f"leader: {leader['holder']} (lease until {_local(leader['expires_at'], tz)})")
        else:
            print(f"leader: none now (the last, {leader['holder']}, released its lease or let it expire at "
                  f"{_local(leader['expires_at'], tz)}; the next jobs process to try takes over)")
    return 0


def _parse_at(text: str, tz: ZoneInfo) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise JobsError(f"--at {text!r} is not an ISO time such as 2026-11-03T06:00 (park local time) or "
                        "2026-11-02T22:00+00:00") from None
    return value.replace(tzinfo=tz) if value.tzinfo is None else value


def cmd_jobs_run(args: argparse.Namespace, settings: Settings) -> int:
    """One run by hand, recorded in the run log as a manual attempt; exit 0 only on success."""
    tz = ZoneInfo(settings.timezone)
    try:
        specs = {spec.id: spec for spec in job_specs(settings)}
        spec = specs.get(args.job_id)
        if spec is None:
            raise JobsError(f"no job {args.job_id!r}; jobs: {', '.join(sorted(specs)) or 'none'}")
        now = utcnow()
        if args.at:
            scheduled_for = _parse_at(args.at, tz)
        else:
            scheduled_for = last_fire_time(make_trigger(spec.cron, settings.timezone), now) or now
    except JobsError as exc:
        print(f"parkcarbon jobs run: {exc}", file=sys.stderr)
        return 2
    engine = _engine(settings)
    opened = _open_embedded(settings, engine, "jobs run")
    if opened is None:
        return STORE_HELD_EXIT
    park, store = opened
    try:
        record = execute_run(settings, engine, spec, scheduled_for, trigger="manual", store=store, park=park)
    finally:
        if store is not None:
            store.close()
    assert record is not None  # a manual run always gets its own attempt
    print(f"{spec.id} due {_local(record.scheduled_for, tz)} (attempt {record.attempt}): {record.outcome}: "
          f"{record.summary}")
    if record.outcome != "success" and record.detail:
        print(record.detail, file=sys.stderr)
    return 0 if record.outcome == "success" else 1


def cmd_jobs_log(args: argparse.Namespace, settings: Settings) -> int:
    """The run log, newest first."""
    tz = ZoneInfo(settings.timezone)
    for r in job_runs(_engine(settings), args.job, limit=args.limit):
        print(f"{_local(r.started, tz)}  {r.job_id}  due {_local(r.scheduled_for, tz)}  #{r.attempt} {r.trigger}  "
              f"{r.outcome}  {r.summary}  [{r.host} pid {r.pid}]")
    return 0


def register(sub) -> argparse.ArgumentParser:
    """Add `jobs` (run), `jobs list`, `jobs run JOB_ID [--at ISO]` and `jobs log` to the parkcarbon sub-parsers."""
    import textwrap

    jobs = sub.add_parser(
        "jobs", help="run the scheduled jobs (forecast training, reports) until stopped; jobs list / run / log",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=textwrap.fill("Run the scheduled jobs until SIGTERM: one process on a metadata database is the "
        "leader and runs them, others wait as standby and take over when its lease expires. Runs missed while no "
        "leader ran are caught up once. Times are the park's local time (settings timezone). On the embedded "
        "store the portal process (serve, demo) runs the jobs itself; this command is for InfluxDB + PostgreSQL, "
        "or the embedded store while no portal runs. See docs/jobs.md.", 100),
        epilog="exit status:\n" + "\n".join(textwrap.fill(v, 100, initial_indent=f"  {k}  ", subsequent_indent="     ")
                                             for k, v in EXIT_STATUSES.items()))
    jobs.set_defaults(func=cmd_jobs)
    jsub = jobs.add_subparsers(dest="jobs_command", metavar="ACTION")
    listing = jsub.add_parser("list", help="the jobs, their cron, next run (park local time) and last run")
    listing.set_defaults(func=cmd_jobs_list)
    run = jsub.add_parser("run", help="run one job now by hand (recorded in the run log)",
                          description="Run JOB_ID once, as if due at --at (default: its latest scheduled time "
                          "before now), and record it in the run log as a manual attempt. Exit 1 unless it succeeds.")
    run.add_argument("job_id")
    run.add_argument("--at", help="the time the run is for, ISO (park local time unless it has an offset)")
    run.set_defaults(func=cmd_jobs_run)
    logp = jsub.add_parser("log", help="the job run log, newest first")
    logp.add_argument("--job", help="only this job id")
    logp.add_argument("--limit", type=int, default=50, help="rows (default 50)")
    logp.set_defaults(func=cmd_jobs_log)
    return jobs
