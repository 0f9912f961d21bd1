"""Fixtures shared by the whole suite: real servers started once per session."""

from __future__ import annotations

import pytest

from tests.support.influx import InfluxServer


@pytest.fixture(scope="session")
def influx_server():
    """A real influxd on a free 127.0.0.1 port with a temporary data directory, stopped at the end."""
    server = InfluxServer()
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
