"""Each collector source's state, kept by `parkcarbon collect` in a small JSON file in the data directory
(`collect_status.json`; MQTT receiver processes, when configured, each keep `collect_status.r<i>.json`).

The collector process writes the file (`collect_status.json`) whenever a source connects, fails or loses its
server, and every few seconds with its counts; it writes a new file and renames it over the old one, so a
reader never sees half a file.  Other processes (the portal's health endpoint, the data-quality page) read it
with `read_states(settings)`: no connection to the collector is needed, and a collector that has stopped shows
as stale rather than as healthy.

One entry per source:

| key | meaning |
|---|---|
| `source` | name, e.g. `mqtt 127.0.0.1:1883` or `mqtt 127.0.0.1:1883 receiver 2` |
| `kind` | `mqtt`, `modbus`, `vendor_http` |
| `state` | `starting`, `connected`, `retrying` (server unreachable or lost, retried with back-off), |
| | `running` (polled sources), `stopped` |
| `last_error`, `last_error_at` | the last connection failure and when (UTC, ISO 8601), or null |
| `last_message_at` | when the last message arrived (UTC), or null |
| `readings` | readings handed to the spool since the collector started |
| `messages` | messages received since the collector started |
| `connects`, `retries` | successful connections, failed attempts |
| `updated_at` | when the collector last wrote this entry (UTC) |
| `pid` | the collector's process id |

`read_states` adds `age_s` (seconds since `updated_at`) and `stale` (true when the collector has not written for
`STALE_AFTER_S`: it is not running, or hangs).
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

STATUS_FILE = "collect_status.json"
STALE_AFTER_S = 60.0


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass
class SourceState:
    source: str
    kind: str
    state: str = "starting"
    last_error: str | None = None
    last_error_at: str | None = None
    last_message_at: str | None = None
    readings: int = 0
    messages: int = 0
    connects: int = 0
    retries: int = 0
    updated_at: str = field(default_factory=_now)
    pid: int = field(default_factory=os.getpid)


class StatusBoard:
    """The states of one collector's sources; thread-safe; `write()` replaces the file atomically."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._states: dict[str, SourceState] = {}
        self._lock = threading.Lock()

    def add(self, source: str, kind: str, state: str = "starting") -> SourceState:
        with self._lock:
            self._states[source] = SourceState(source, kind, state)
        self.write()
        return self._states[source]

    def update(self, source: str, *, write: bool = True, **changes: object) -> None:
        """Change some fields of a source's state (and stamp it); write the file unless told not to."""
        with self._lock:
            st = self._states[source]
            for key, value in changes.items():
                if not hasattr(st, key):
                    raise AttributeError(f"a source state has no field {key!r}")
                setattr(st, key, value)
            if "last_error" in changes and "last_error_at" not in changes:
                st.last_error_at = _now()
            st.updated_at = _now()
        if write:
            self.write()

    def error(self, source: str, message: str, state: str = "retrying") -> None:
        with self._lock:
            retries = self._states[source].retries + 1
        self.update(source, state=state, last_error=message, retries=retries)

    def states(self) -> list[dict]:
        with self._lock:
            return [asdict(s) for s in self._states.values()]

    def write(self) -> None:
        """Write all states to a temporary file beside the status file, then rename it over the old one."""
        with self._lock:
            body = json.dumps({"written_at": _now(), "pid": os.getpid(),
                               "sources": [asdict(s) for s in self._states.values()]}, ensure_ascii=False, indent=1)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".collect_status.", dir=self.path.parent)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    f.write(body)
                os.replace(tmp, self.path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise


def status_path(data_dir: str | Path) -> Path:
    return Path(data_dir) / STATUS_FILE


def read_states(settings: object, now: datetime | None = None) -> list[dict]:
    """The collector's source states from `settings.data_dir` (an empty list when no collector has run there),
    each with `age_s` and `stale`."""
    main = status_path(getattr(settings, "data_dir", settings))
    now = now or datetime.now(UTC)
    out = []
    for path in [main, *sorted(main.parent.glob("collect_status.r*.json"))]:  # receiver processes write their own
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            continue
        for s in data.get("sources", []):
            age = (now - datetime.fromisoformat(s["updated_at"])).total_seconds()
            out.append({**s, "age_s": round(age, 1), "stale": age > STALE_AFTER_S})
    return out


__all__ = ["STATUS_FILE", "STALE_AFTER_S", "SourceState", "StatusBoard", "read_states", "status_path"]
