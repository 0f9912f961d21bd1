"""A real pymodbus TCP server for tests, loaded with a meter's register map, and helpers to wait and record.

`register_server` starts collectors.simulator.modbus_meters.RegisterServer (pymodbus' ModbusTcpServer in a
background thread) on a free 127.0.0.1 port with the register words given per unit id; the test can change
words (`set_words`) and silence units while it runs, and the server stops cleanly when the block ends.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

from collectors.converters.modbus import encode
from collectors.readings import RawReading
from collectors.registermaps import load_register_map
from collectors.simulator.modbus_meters import RegisterServer

Words = Mapping[str, Mapping[int, int]]


@contextmanager
def register_server(units: Mapping[int, Words]) -> Iterator[RegisterServer]:
    """A running Modbus TCP server on 127.0.0.1 (free port) serving `units`: unit id -> table -> address ->
    word.  Stopped (and its connections closed) on leaving the block."""
    server = RegisterServer(units, host="127.0.0.1", port=0).start()
    try:
        yield server
    finally:
        server.stop()


def meter_words(map_name: str, **values: float) -> dict[str, dict[int, int]]:
    """The words a meter of register map `map_name` shows for `values` (register name -> value)."""
    return encode(load_register_map(map_name), values)


def wait_for(condition: Callable[[], bool], timeout_s: float = 10.0, what: str = "condition",
             every_s: float = 0.02) -> None:
    """Check `condition` every `every_s` until it holds; fail the test with `what` after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(every_s)


@dataclass
class RecordingSink:
    """An in-memory sink recording every submitted batch and every reject (with its monotonic time)."""

    batches: list[list[RawReading]] = field(default_factory=list)
    rejected: list[dict] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def submit(self, readings: list[RawReading]) -> None:
        with self._lock:
            self.batches.append(list(readings))

    def reject(self, **kwargs) -> None:
        with self._lock:
            self.rejected.append({"at": time.monotonic(), **kwargs})

    def polls(self, series: str) -> list[float]:
        """When each good poll of `series` read its meter (its energy readings' timestamps, in seconds)."""
        with self._lock:
            return sorted(r.ts.timestamp() for batch in self.batches for r in batch
                          if r.series == series and r.measurement == "energy")

    def rejects(self, series: str) -> list[dict]:
        with self._lock:
            return [r for r in self.rejected if r.get("series") == series]
