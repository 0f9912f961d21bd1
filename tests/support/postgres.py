"""A throwaway PostgreSQL cluster for tests: initdb into a temporary directory, start, yield a URL, remove.

The server listens on a free 127.0.0.1 port with its unix sockets in the temporary directory, so it never
touches a system cluster. PostgreSQL refuses to run as root: as root, the server commands run as the
`postgres` system user. A missing installation skips locally and fails under CI=true (servers.unavailable).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.support.servers import free_port, require_executable, unavailable, wait_for_port

DATABASE = "parkcarbon_test"
SUPERUSER = "postgres"


def _bindir() -> Path:
    """The bin directory of the newest PostgreSQL under /usr/lib/postgresql, else of initdb on PATH."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0,
    )
    return Path(found[-1] if found else require_executable("initdb", "postgresql")).parent


def _run_as() -> dict[str, Any]:
    """subprocess arguments that drop root to the `postgres` user; nothing when not root."""
    if os.geteuid() != 0:
        return {}
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        unavailable("running as root and there is no 'postgres' system user to run the PostgreSQL server as")
    return {"user": "postgres", "group": "postgres", "extra_groups": []}


@contextmanager
def postgres_server() -> Iterator[str]:
    """Start a fresh cluster with an empty database; yields its `postgresql+psycopg://` SQLAlchemy URL."""
    try:
        import psycopg
    except ImportError:
        unavailable("psycopg is not installed: pip install 'psycopg[binary]' (the test extra has it)")
    bindir = _bindir()
    as_user = _run_as()
    tmp = Path(tempfile.mkdtemp(prefix="parkcarbon-pg-"))
    if as_user:
        shutil.chown(tmp, "postgres", "postgres")
    data, log = tmp / "data", tmp / "server.log"
    port = free_port()

    def run(*args: str | Path) -> None:
        done = subprocess.run(
            [str(a) for a in args], cwd=tmp, capture_output=True, text=True, check=False, **as_user
        )
        if done.returncode != 0:
            server_log = log.read_text(errors="replace") if log.exists() else ""
            command = Path(str(args[0])).name
            raise RuntimeError(
                f"{command} failed ({done.returncode}):\n{done.stdout}{done.stderr}{server_log}"
            )

    started = False
    try:
        run(
            bindir / "initdb",
            "-D",
            data,
            "-U",
            SUPERUSER,
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        )
        options = f"-p {port} -k {tmp} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off"
        run(bindir / "pg_ctl", "-D", data, "-l", log, "-o", options, "-w", "-t", "30", "start")
        started = True
        wait_for_port(port)
        with psycopg.connect(
            host="127.0.0.1", port=port, user=SUPERUSER, dbname="postgres", autocommit=True
        ) as c:
            c.execute(f"CREATE DATABASE {DATABASE}")
        yield f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{port}/{DATABASE}"
    finally:
        if started:
            run(bindir / "pg_ctl", "-D", data, "-m", "immediate", "-w", "stop")
        shutil.rmtree(tmp, ignore_errors=True)
