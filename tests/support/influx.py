"""A throwaway real InfluxDB 1.x server (`influxd` from Debian's package) for tests and benchmarks.

The Debian package's scripts expect systemd; we start `influxd -config FILE` ourselves with a config
printed by `influxd config`, its directories in a temporary folder and its ports free ones on 127.0.0.1.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import requests

from tests.support.servers import free_port, require_executable, stop_process, wait_for_port


class InfluxServer:
    """Start, stop and restart one influxd; `url` is its HTTP API."""

    def __init__(self, auth: bool = False, binary: str | None = None) -> None:
        self.binary = binary or require_executable("influxd", "influxdb")
        self.root = Path(tempfile.mkdtemp(prefix="parkcarbon-influx-"))
        self.port, self.rpc_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.auth = auth
        self.proc: subprocess.Popen | None = None
        self.config_path = self.root / "influxdb.conf"
        self.config_path.write_text(self._config())

    def _config(self) -> str:
        text = subprocess.run([self.binary, "config"], capture_output=True, text=True, check=True).stdout
        r = self.root

        def setting(section: str, key: str, value: str) -> None:
            nonlocal text
            pattern = re.compile(rf"(\[{re.escape(section)}\][^\[]*?\n\s*{re.escape(key)} = )[^\n]*", re.S)
            text, n = pattern.subn(lambda m: m.group(1) + value, text, count=1)
            assert n == 1, f"influxd config has no {section}.{key}"

        text = re.sub(r'^bind-address = "[^"]*"', f'bind-address = "127.0.0.1:{self.rpc_port}"', text, count=1,
                      flags=re.M)
        text = re.sub(r"^reporting-enabled = \w+", "reporting-enabled = false", text, count=1, flags=re.M)
        setting("meta", "dir", f'"{r / "meta"}"')
        setting("data", "dir", f'"{r / "data"}"')
        setting("data", "wal-dir", f'"{r / "wal"}"')
        setting("data", "query-log-enabled", "false")
        setting("monitor", "store-enabled", "false")
        setting("http", "bind-address", f'"127.0.0.1:{self.port}"')
        setting("http", "log-enabled", "false")
        setting("http", "auth-enabled", "true" if self.auth else "false")
        setting("logging", "level", '"warn"')
        return text

    def start(self) -> InfluxServer:
        log = open(self.root / "influxd.log", "ab")  # noqa: SIM115 (kept open for the process' life)
        self.proc = subprocess.Popen([self.binary, "-config", str(self.config_path)], stdout=log, stderr=log)
        wait_for_port(self.port, timeout_s=30, proc=self.proc)
        for _ in range(100):  # the port opens a moment before /ping answers
            try:
                if requests.get(self.url + "/ping", timeout=1).status_code == 204:
                    break
            except requests.ConnectionError:
                pass
        return self

    def stop(self) -> None:
        stop_process(self.proc)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
