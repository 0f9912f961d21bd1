"""A throwaway real Mosquitto broker (Debian package `mosquitto`) for tests.

Started as ``mosquitto -c FILE`` with a generated config: one listener on a free 127.0.0.1 port, anonymous
clients allowed, persistence in a temporary folder (saved when the broker stops, so a restart keeps persistent
sessions, their subscriptions and their queued QoS 1 messages).
"""

from __future__ import annotations

import getpass
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from tests.support.servers import free_port, require_executable, stop_process, wait_for_port


class MosquittoServer:
    """Start, stop and restart one mosquitto; clients connect to 127.0.0.1:`port`."""

    def __init__(self, binary: str | None = None, extra_config: str = "") -> None:
        sbin = Path("/usr/sbin/mosquitto")  # Debian's place, off a non-root user's PATH
        self.binary = binary or (str(sbin) if sbin.exists() else require_executable("mosquitto", "mosquitto"))
        self.root = Path(tempfile.mkdtemp(prefix="parkcarbon-mosquitto-"))
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.config_path = self.root / "mosquitto.conf"
        self.config_path.write_text(
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous true\n"
            "persistence true\n"
            f"persistence_location {self.root}/\n"
            "autosave_interval 0\n"  # 0: write the persistence file when the broker stops, not periodically
            "max_queued_messages 10000\n"  # the default 1000 would drop messages queued for an absent client
            f"user {getpass.getuser()}\n"  # as root mosquitto would switch to user 'mosquitto' and lose the folder
            f"log_dest file {self.root / 'mosquitto.log'}\n"
            "log_type error\nlog_type warning\nlog_type notice\n" + extra_config)

    def start(self) -> MosquittoServer:
        log = open(self.root / "stdout.log", "ab")  # noqa: SIM115 (kept open for the process' life)
        self.proc = subprocess.Popen([self.binary, "-c", str(self.config_path)], stdout=log, stderr=log)
        wait_for_port(self.port, timeout_s=15, proc=self.proc)
        return self

    def stop(self) -> None:
        """Stop gracefully (SIGTERM): mosquitto saves its persistence file on the way out."""
        stop_process(self.proc)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def log(self) -> str:
        path = self.root / "mosquitto.log"
        return path.read_text(errors="replace") if path.exists() else ""


class Publisher:
    """A second, plain paho client that publishes QoS 1 messages and waits for the broker's PUBACK."""

    def __init__(self, port: int, client_id: str = "test-publisher") -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def publish(self, topic: str, payload: bytes | str, timeout_s: float = 10.0) -> None:
        info = self.client.publish(topic, payload, qos=1)
        info.wait_for_publish(timeout_s)
        if not info.is_published():
            raise TimeoutError(f"the broker did not acknowledge a message on {topic} within {timeout_s} s")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def wait_until(condition, timeout_s: float = 10.0, what: str = "condition") -> None:
    """Poll `condition()` until it is true; fail with `what` after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.02)
