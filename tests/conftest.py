"""Fixtures shared by the whole suite: real servers started once per session."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings

from tests.support.influx import InfluxServer

# Property tests check values, not speed: on a shared 2-core CI machine an example can take longer than
# Hypothesis's default 200 ms deadline, which would fail a correct test.  Speed lives in bench/.
settings.register_profile("parkcarbon", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("parkcarbon")


@pytest.fixture(scope="session")
def influx_server():
    """A real influxd on a free 127.0.0.1 port with a temporary data directory, stopped at the end."""
    server = InfluxServer()
    try:
        yield server.start()
    finally:
        server.cleanup()


@pytest.fixture
def broker():
    """A real Mosquitto on a free 127.0.0.1 port for one test, stopped after it."""
    from tests.support.mosquitto import MosquittoServer

    server = MosquittoServer()
    try:
        yield server.start()
    finally:
        server.cleanup()


@pytest.fixture(scope="session")
def chrome():
    """One headless Debian Chromium (Playwright) for the whole session's browser tests."""
    from tests.support.browser import browser

    with browser() as b:
        yield b
