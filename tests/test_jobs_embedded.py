"""The scheduled jobs on the embedded store (docs/jobs.md, "Which process runs the jobs"): the DuckDB file takes one
process, so the portal process runs the jobs itself (park.jobs.JobsHost), sharing its store, under the same leader
lease as `parkcarbon jobs`.

In process: the hosted scheduler's job gets the process's own store object and reads it while other threads read
and write; a run left unfinished by a dead process is run again; a failing job or a broken provider never escapes
the jobs thread.  As an operator runs it: a real `parkcarbon serve` (gunicorn, one worker) on the embedded store runs
a job that reads the store while it answers HTTP requests; `parkcarbon jobs` on the same settings says plainly that
the portal runs the jobs (exit 3); a `parkcarbon jobs` on the same metadata database (with a store of its own) stays
standby while the portal leads and takes over when the portal stops; and `parkcarbon demo` answers its login page
at once while it trains the forecasts and archives last month's report in the background.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
import requests
from sqlalchemy import Engine

from park.jobs import (
    JobContext,
    JobsHost,
    JobSpec,
    claim_run,
    current_leader,
    job_runs,
    job_specs,
    last_fire_time,
    make_trigger,
)
from park.metadata import create_engine_from_url, import_park_file, load_park
from park.parkfile import DEMO_PARK_FILE
from park.settings import Settings
from park.store.embedded import EmbeddedStore
from tests.support.servers import free_port, stop_process

ROOT = Path(__file__).resolve().parents[1]
PARKCARBON = str(Path(sys.executable).with_name("parkcarbon"))
RUNS_FILE_ENV = "PARKCARBON_TEST_EMBEDDED_JOBS_FILE"
SHANGHAI = ZoneInfo("Asia/Shanghai")
PASSWORD = "a long enough passphrase"
# the readings the tests import: 1 March 2024, local time, meter E001-M-GAS (kWh... whatever its unit: summed)
READINGS = [("2024-03-01T00:00:00+08:00", 1.5), ("2024-03-01T00:15:00+08:00", 2.25), ("2024-03-01T00:30:00+08:00", 4.0)]
READ_FROM, READ_TO = pd.Timestamp("2024-03-01", tz=SHANGHAI), pd.Timestamp("2024-03-02", tz=SHANGHAI)
STORES_SEEN: list[int] = []  # id() of the store each in-process run got


# --- job functions and the provider named in [jobs] providers ---------------------------------------------------


def read_store(ctx: JobContext) -> str:
    """Read the store the run was given: the sum of 1 March 2024's energy readings; every execution is appended
    to the file the test names (job, due, pid, sum), whatever the log says."""
    STORES_SEEN.append(id(ctx.store))
    total = float(ctx.store.points("energy", READ_FROM, READ_TO)["value"].sum())
    path = os.environ.get(RUNS_FILE_ENV)
    if path:
        with open(path, "a", encoding="utf-8") as out:
            out.write(f"{ctx.job_id} {ctx.scheduled_for.isoformat()} {os.getpid()} {total}\n")
    time.sleep(0.2)
    return f"read {total:g} from the store"


def crashing(ctx: JobContext) -> str:
    raise ZeroDivisionError("no readings")


def scheduled_jobs(settings: Settings) -> list[JobSpec]:
    return [JobSpec("test.read_store", "tests.test_jobs_embedded:read_store", {"second": "*/2"}, "reads the store"),
            JobSpec("test.crashing", "tests.test_jobs_embedded:crashing", {"hour": 3}, "always fails")]


def broken_jobs(settings: Settings) -> list:
    return ["not a JobSpec"]


def jobs_table(lease: float = 4, heartbeat: float = 0.5, providers: str = "tests.test_jobs_embedded") -> dict:
    """[jobs] with only this file's jobs scheduled (the real providers' jobs disabled)."""
    others = [s.id for s in job_specs(Settings())]
    return {"lease_seconds": lease, "heartbeat_seconds": heartbeat, "providers": [providers], "disabled": others}


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


# --- in process --------------------------------------------------------------------------------------------------


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[tuple[Settings, Engine, EmbeddedStore]]:
    engine = create_engine_from_url(f"sqlite:///{tmp_path / 'parkcarbon.db'}")
    import_park_file(engine, DEMO_PARK_FILE, actor="test")
    park = load_park(engine)
    store = EmbeddedStore(tmp_path / "timeseries.duckdb", park.catalog(), park.timezone)
    store.write("energy", pd.DataFrame({"ts": [pd.Timestamp(t) for t, _ in READINGS], "series": "E001-M-GAS",
                                        "value": [v for _, v in READINGS]}), source="test")
    settings = Settings(data_dir=tmp_path, metadata_url=str(engine.url), jobs=jobs_table())
    yield settings, engine, store
    store.close()
    engine.dispose()


def test_the_hosted_scheduler_runs_jobs_on_the_process_store_while_other_threads_use_it(embedded) -> None:
    settings, engine, store = embedded
    park = load_park(engine)
    STORES_SEEN.clear()
    stop = threading.Event()
    errors: list[BaseException] = []

    def portal_like() -> None:  # another thread reads and writes the same store meanwhile
        t = pd.Timestamp("2024-06-01", tz=SHANGHAI)
        try:
            while not stop.is_set():
                store.write("energy", pd.DataFrame({"ts": [t], "series": "E001-M-GAS", "value": [1.0]}), source="t")
                assert store.points("energy", READ_FROM, READ_TO)["value"].sum() == 7.75
                t += pd.Timedelta("15min")
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    other = threading.Thread(target=portal_like)
    other.start()
    host = JobsHost(settings, engine, store, park, first_runs=["test.read_store"]).start()
    try:
        wait_for(lambda: sum(r.outcome == "success" for r in job_runs(engine, "test.read_store")) >= 3, 60,
                 "three runs of the hosted job")
        assert (current_leader(engine) or {})["holder"] == host.holder
    finally:
        stop.set()
        other.join(30)
        host.stop(timeout=30)
    assert not errors, errors
    runs = job_runs(engine, "test.read_store")
    assert {r.summary for r in runs if r.outcome != "running"} == {"read 7.75 from the store"}
    assert {r.outcome for r in runs} == {"success"} and {r.pid for r in runs} == {os.getpid()}
    assert set(STORES_SEEN) == {id(store)}  # the process's store, never one of its own
    leader = current_leader(engine)
    assert leader["expires_at"] <= datetime.now(UTC)  # stopped: the lease is released for a standby
    assert not host.alive()
    # the first run was the latest due time at start, the following ones on the schedule, each once
    dues = [r.scheduled_for for r in sorted(runs, key=lambda r: r.started)]
    assert len(set(dues)) == len(dues) and all(d.second % 2 == 0 for d in dues)
    store.points("energy", READ_FROM, READ_TO)  # the store is still open: the jobs did not close it


def test_a_first_run_left_unfinished_by_a_dead_process_is_run_again(embedded) -> None:
    """The portal was killed during its start-up run: the next start marks it interrupted and runs it again (the
    same due time, attempt 2) instead of counting it as done."""
    settings, engine, store = embedded
    settings.jobs = {**settings.jobs, "cron": {"test.read_store": {"second": 0, "minute": 0}}}  # hourly
    due = last_fire_time(make_trigger({"second": 0, "minute": 0}, settings.timezone), datetime.now(UTC))
    assert claim_run(engine, "test.read_store", due, trigger="schedule", holder="gone:1:x", now=due) is not None
    host = JobsHost(settings, engine, store, first_runs=["test.read_store"]).start()
    try:
        wait_for(lambda: any(r.outcome == "success" for r in job_runs(engine, "test.read_store")), 60, "the re-run")
    finally:
        host.stop(timeout=30)
    runs = sorted(job_runs(engine, "test.read_store"), key=lambda r: r.attempt)
    assert [(r.attempt, r.outcome, r.summary, r.scheduled_for) for r in runs] == [
        (1, "error", "interrupted", due), (2, "success", "read 7.75 from the store", due)]


def test_a_failing_job_is_in_the_run_log_and_a_broken_provider_never_leaves_the_jobs_thread(
        embedded, caplog: pytest.LogCaptureFixture) -> None:
    settings, engine, store = embedded
    host = JobsHost(settings, engine, store, first_runs=["test.crashing", "no.such.job"]).start()
    try:
        wait_for(lambda: job_runs(engine, "test.crashing") and job_runs(engine, "test.crashing")[0].finished, 60,
                 "the failing run")
        assert host.alive()  # the failure is the run's outcome; the scheduler goes on
    finally:
        host.stop(timeout=30)
    run = job_runs(engine, "test.crashing")[0]
    assert (run.outcome, run.summary) == ("error", "ZeroDivisionError: no readings")
    assert "Traceback" in run.detail and "no readings" in run.detail

    me_broken = type(sys)("tests.test_jobs_embedded_broken")  # a provider module whose jobs are not JobSpecs
    me_broken.scheduled_jobs = broken_jobs
    sys.modules["tests.test_jobs_embedded_broken"] = me_broken
    try:
        settings.jobs = {**jobs_table(), "providers": ["tests.test_jobs_embedded_broken"]}
        broken = JobsHost(settings, engine, store).start()
        wait_for(lambda: not broken.alive(), 30, "the broken scheduler to end")
    finally:
        del sys.modules["tests.test_jobs_embedded_broken"]
    assert "not a park.jobs.JobSpec" in str(broken.failed)
    assert "the scheduler in this portal process stopped" in caplog.text
    broken.stop()  # nothing to stop: no error either


# --- as an operator runs it -------------------------------------------------------------------------------------


def run_cli(config: Path, *args: str, stdin: str | None = None, env: dict | None = None
            ) -> subprocess.CompletedProcess:
    return subprocess.run([PARKCARBON, "--config", str(config), *args], input=stdin, capture_output=True, text=True,
                          timeout=300, check=False, env=env)


def toml_jobs(table: dict) -> str:
    def value(v: object) -> str:
        return "[" + ", ".join(f'"{x}"' for x in v) + "]" if isinstance(v, list) else str(v)

    return "[jobs]\n" + "".join(f"{k} = {value(v)}\n" for k, v in table.items())


def executions(runs_file: Path) -> list[tuple[str, str, int, float]]:
    if not runs_file.exists():
        return []
    return [(job, due, int(pid), float(total)) for job, due, pid, total in
            (line.split() for line in runs_file.read_text().splitlines())]


class Served:
    """A `parkcarbon serve` process (gunicorn, one worker) on the embedded store."""

    def __init__(self, config: Path, env: dict, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        with open(log, "wb") as out:
            self.proc = subprocess.Popen([PARKCARBON, "--config", str(config), "serve", "--port", str(self.port)],
                                         stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"serve exited {self.proc.returncode}:\n{log.read_text()}")
            try:
                if self.get("/healthz").status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.3)
        raise AssertionError(f"no healthy portal within 90 s:\n{log.read_text()}")

    def get(self, path: str, **kw) -> requests.Response:
        return requests.get(self.url + path, allow_redirects=False, timeout=60, headers={"Connection": "close"}, **kw)

    def login(self, username: str, password: str) -> dict:
        page = self.get("/login")
        token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        cookies = dict(page.cookies)
        resp = requests.post(self.url + "/login", cookies=cookies, allow_redirects=False, timeout=60,
                             data={"username": username, "password": password, "csrf": token})
        assert resp.status_code == 302, resp.text
        return {**cookies, **dict(resp.cookies)}


def test_serve_on_the_embedded_store_runs_the_jobs_and_a_jobs_process_says_so_or_stands_by(tmp_path: Path) -> None:
    state = tmp_path / "state"
    config = tmp_path / "parkcarbon.toml"
    config.write_text(f'data_dir = "{state}"\n\n[serve]\nsecure_cookies = false\naccess_log = ""\n\n'
                      + toml_jobs(jobs_table()), encoding="utf-8")
    runs_file = tmp_path / "executions.txt"
    env = {**os.environ, RUNS_FILE_ENV: str(runs_file), "PYTHONPATH": str(ROOT)}
    for args, stdin in ((("init", "--park-file", str(DEMO_PARK_FILE)), None),
                        (("user", "add", "alpha", "--role", "enterprise", "--enterprise", "E001", "--password-stdin"),
                         PASSWORD + "\n")):
        done = run_cli(config, *args, stdin=stdin, env=env)
        assert done.returncode == 0, done.stderr
    readings = tmp_path / "readings.csv"
    readings.write_text("ts,meter,value\n" + "".join(f"{t},E001-M-GAS,{v}\n" for t, v in READINGS))
    done = run_cli(config, "import", str(readings), env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    engine = create_engine_from_url(f"sqlite:///{state / 'parkcarbon.db'}", create_tables=False)
    portal = Served(config, env, tmp_path / "serve.log")
    standby = None
    try:
        worker = portal.get("/healthz").json()["pid"]
        # the portal answers requests while its worker's jobs thread reads the same store
        cookies = portal.login("alpha", PASSWORD)
        runs_before = len(executions(runs_file))
        answered = 0
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline:
            assert portal.get("/healthz").json()["checks"]["store"]["ok"]  # a query on the embedded store
            assert portal.get("/enterprise", cookies=cookies).status_code == 200
            answered += 2
        assert answered >= 8 and len(executions(runs_file)) >= runs_before + 2  # jobs ran meanwhile
        wait_for(lambda: sum(r.outcome == "success" for r in job_runs(engine, "test.read_store")) >= 3, 30,
                 "three logged runs")
        log = [r for r in job_runs(engine, "test.read_store") if r.outcome != "running"]
        assert {(r.outcome, r.summary, r.pid) for r in log} == {("success", "read 7.75 from the store", worker)}
        assert {(pid, total) for _, _, pid, total in executions(runs_file)} == {(worker, 7.75)}
        assert (current_leader(engine) or {})["pid"] == worker

        # `parkcarbon jobs` (and `jobs run`) on the same settings: the store is the portal's; said plainly
        for args in (("jobs",), ("jobs", "run", "test.read_store")):
            done = run_cli(config, *args, env=env)
            assert done.returncode == 3, (args, done.stdout, done.stderr)
            assert "is held by another process" in done.stderr and "runs the scheduled jobs itself" in done.stderr
            assert f"pid {worker}" in done.stderr and "exit status 3" in done.stderr
            assert "Traceback" not in done.stderr
        assert {pid for _, _, pid, _ in executions(runs_file)} == {worker}

        # a `parkcarbon jobs` on the same metadata database, with a store it can open: standby behind the portal
        other = tmp_path / "other"
        other_config = tmp_path / "other.toml"
        other_config.write_text(f'data_dir = "{other}"\nmetadata_url = "sqlite:///{state / "parkcarbon.db"}"\n\n'
                                + toml_jobs(jobs_table()), encoding="utf-8")
        standby_out = tmp_path / "standby.log"
        with open(standby_out, "wb") as out:
            standby = subprocess.Popen([PARKCARBON, "--config", str(other_config), "jobs"], stdout=out,
                                       stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        wait_for(lambda: "standby" in standby_out.read_text(), 30, "the jobs process to stand by")
        counted = len(executions(runs_file))
        time.sleep(4)  # several of its lease attempts and several due runs
        assert standby.poll() is None
        assert len(executions(runs_file)) >= counted + 1
        assert {pid for _, _, pid, _ in executions(runs_file)} == {worker}
        assert {r.pid for r in job_runs(engine, "test.read_store")} == {worker}

        # the portal stops: its worker releases the lease and the standby leads at its next attempt
        portal.proc.send_signal(signal.SIGTERM)
        assert portal.proc.wait(60) == 0
        wait_for(lambda: any(pid == standby.pid for _, _, pid, _ in executions(runs_file)), 30,
                 "the standby to take over")
        standby.send_signal(signal.SIGTERM)
        assert standby.wait(30) == 0
    finally:
        if standby is not None and standby.poll() is None:
            standby.kill()
            standby.wait(10)
        stop_process(portal.proc, timeout_s=40)
        engine.dispose()
    serve_log = (tmp_path / "serve.log").read_text()
    assert "the portal worker runs the scheduled jobs" in serve_log and "Traceback" not in serve_log
    log = job_runs(engine, "test.read_store", limit=10_000)
    dues = [r.scheduled_for for r in log if r.trigger == "schedule"]
    assert len(dues) == len(set(dues))  # no due run ran twice across the portal and the jobs process
    assert {r.pid for r in log} == {worker, standby.pid}


def test_the_demo_answers_at_once_and_fills_forecasts_and_last_months_report_in_the_background(
        tmp_path: Path) -> None:
    """`parkcarbon demo`: the login page answers while the start-up runs (forecast, last month's report) are
    still going; then the run log has them, the forecast cache and the report archive are filled."""
    config = tmp_path / "parkcarbon.toml"
    config.write_text("[forecast]\nworkers = 1\norigins = 2\nbacktest_days = 7\nanomaly_days = 3\n",
                      encoding="utf-8")  # a lighter training for a shared test machine
    data_dir = tmp_path / "demo"
    port = free_port()
    out_path = tmp_path / "demo.log"
    with open(out_path, "wb") as out:
        demo = subprocess.Popen([PARKCARBON, "--config", str(config), "demo", "--days", "45", "--data-dir",
                                 str(data_dir), "--port", str(port)], stdout=out, stderr=subprocess.STDOUT,
                                cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        wait_for(lambda: "portal: http://" in out_path.read_text() or demo.poll() is not None, 300,
                 "the demo to fill its store and serve")
        assert demo.poll() is None, out_path.read_text()
        engine = create_engine_from_url(f"sqlite:///{data_dir / 'parkcarbon.db'}", create_tables=False)
        url = f"http://127.0.0.1:{port}"
        asked = time.monotonic()
        while True:
            try:
                login = requests.get(url + "/login", timeout=30)
                break
            except requests.ConnectionError:
                assert time.monotonic() - asked < 10, "the login page did not answer"
                time.sleep(0.1)
        assert login.status_code == 200 and time.monotonic() - asked < 10
        forecast_then = job_runs(engine, "forecast.nightly")
        assert not forecast_then or forecast_then[0].finished is None  # the portal did not wait for the jobs

        def finished(job_id: str) -> bool:
            runs = job_runs(engine, job_id)
            return bool(runs) and runs[0].finished is not None

        wait_for(lambda: finished("forecast.nightly") and finished("reports.monthly") or demo.poll() is not None,
                 600, "the start-up runs")
        assert demo.poll() is None, out_path.read_text()  # whatever the jobs did, the demo still serves
        assert requests.get(url + "/login", timeout=30).status_code == 200
        forecast = job_runs(engine, "forecast.nightly")[0]
        report = job_runs(engine, "reports.monthly")[0]
        assert forecast.outcome == "success", (forecast.summary, forecast.detail)
        assert report.outcome in ("success", "data_quality"), (report.summary, report.detail)
        assert forecast.trigger == report.trigger == "schedule" and forecast.pid == report.pid == demo.pid
        # the latest due time at start: last night's forecast; the demo's monthly report is due on day 1, 00:00
        now = datetime.now(SHANGHAI)
        assert now - forecast.scheduled_for <= timedelta(days=1)
        month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        assert report.scheduled_for == month_start
        last_month = (month_start - timedelta(days=1)).strftime("%Y-%m")

        from forecasting.cache import load_anomalies, load_forecasts
        from portal.reports.archive import archived_periods

        park = load_park(engine)
        assert last_month in archived_periods(engine, park.id, "monthly")
        cached = load_forecasts(engine, park.id)
        assert len({f.subject for f in cached}) > len(park.enterprises)  # every enterprise and the park
        # the overview's deficit list reads the quota burn-downs (whether one is heading for a deficit needs the
        # year's history: the real demo fills it since 1 January, this one 45 days)
        quota = load_forecasts(engine, park.id, "quota_t_co2e")
        assert quota and all(f.burn_down and "heading_for_deficit" in f.burn_down for f in quota)
        found = int(re.search(r"; (\d+) anomaly warning\(s\) since", forecast.summary).group(1))
        assert len(load_anomalies(engine, park.id)) == found
        engine.dispose()
    finally:
        stop_process(demo, timeout_s=40)
    assert "jobs: run in this process" in out_path.read_text()
