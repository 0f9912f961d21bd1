"""Sources: one module per protocol.  A source talks its protocol and hands `RawReading`s to a sink.

The contract every source keeps:
- it turns protocol payloads into readings with a *converter* kept apart from the connection code
  (raw registers / JSON payload -> RawReading), tested with fixtures of raw bytes or payloads;
- it calls `sink.submit(readings)` (a `collectors.pipeline.Pipeline`) in batches; it never writes to the store;
- it never blocks other sources: every network call has a timeout, failures are retried with back-off;
- a payload or register it cannot read becomes a rejection with a rule code (`payload.malformed`,
  `register.read_error`) passed to `sink.reject(...)`, never a silent drop.
"""

from __future__ import annotations

from typing import Protocol

from collectors.readings import RawReading


class Sink(Protocol):
    def submit(self, readings: list[RawReading]): ...

    def reject(self, *, source: str, code: str, detail: str, series: str = "", ts: str = "", value: str = "",
               measurement: str = "energy", line: int | None = None): ...
