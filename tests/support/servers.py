"""Helpers shared by the fixtures that start real servers (influxd, PostgreSQL, ...).

A server that is not installed makes its tests skip with the reason locally, and fail under CI=true,
so that CI can never pass by skipping.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def unavailable(reason: str) -> None:
    """Skip locally, fail in CI: a missing server is a broken CI set-up, not a pass."""
    if in_ci():
        pytest.fail(f"CI=true but {reason}", pytrace=False)
    pytest.skip(reason)


def require_executable(name: str, package: str) -> str:
    path = shutil.which(name) or (f"/usr/lib/postgresql/15/bin/{name}" if package == "postgresql" else None)
    if not path or not os.path.exists(path):
        unavailable(f"{name} not found: install the Debian package {package} (scripts/test.sh does)")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout_s: float = 20.0, proc=None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with code {proc.returncode} before listening on {port}")
        with socket.socket() as s:
            s.settimeout(0.2)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listened on 127.0.0.1:{port} within {timeout_s} s")


def stop_process(proc, timeout_s: float = 15.0) -> None:
    """Stop a server gracefully (SIGTERM lets influxd and mosquitto save their state), killing it if it hangs."""
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
