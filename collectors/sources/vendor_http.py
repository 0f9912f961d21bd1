"""Bracelet vendor cloud API over HTTP: poll a paged JSON endpoint with a bearer token, feed the pipeline.

Some bracelets report to their vendor's cloud rather than to the park's broker; the vendor then offers a
"telemetry since" endpoint.  The API modelled here is a stand-in (docs/bracelets.md): ``GET {base_url}{path}
?since=<Unix ms>&limit=<n>[&cursor=<c>]`` with ``Authorization: Bearer <token>``, answering pages
``{"code": 0, "data": {"items": [...], "nextCursor": "..." | null}}`` (converter: collectors/converters/bracelet.py).

- A high-water mark per device (the newest timestamp submitted) means a re-poll, or a vendor that repeats
  items at the page or ``since`` boundary, never resubmits a reading.  ``since`` asks for data from the oldest
  device mark on, at most `lookback` back; the marks can be kept in a small JSON file across restarts.
- 401/403 raise `VendorAuthError` at once (retrying a wrong token cannot help); 5xx, 429, time-outs and
  connection errors are retried with exponential back-off, then raise `VendorUnavailable`.
- A page that is not the documented shape is rejected (``payload.malformed``, with its first bytes) and
  ends the poll: without its cursor the following pages cannot be asked for.
- Polling runs as an APScheduler interval job (`schedule`), one instance at a time.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests
from apscheduler.job import Job
from apscheduler.schedulers.base import BaseScheduler

from collectors.converters.bracelet import convert_vendor_page, shown
from collectors.sources import Sink

log = logging.getLogger(__name__)
RETRY_STATUS = frozenset({429, 500, 502, 503, 504})


class VendorAuthError(RuntimeError):
    """The vendor API refused the token."""


class VendorUnavailable(RuntimeError):
    """The vendor API kept failing (server errors, time-outs) after every retry."""


@dataclass(frozen=True)
class VendorSettings:
    base_url: str
    token: str | None = None  # default: the environment variable `token_env` (secrets stay out of files)
    token_env: str = "PARKCARBON_VENDOR_TOKEN"
    path: str = "/api/v1/telemetry"
    serials: Mapping[str, str] = field(default_factory=dict)  # vendor serial number -> device id
    page_size: int = 500
    timeout_s: float = 10.0
    retries: int = 4  # further attempts after the first, per page
    backoff_s: float = 1.0  # first wait; doubles per retry
    backoff_max_s: float = 30.0
    lookback: timedelta = timedelta(days=7)  # how far back a poll asks at most (the first poll: this far)
    max_pages: int = 10_000  # a guard against a vendor whose cursor never ends

    @property
    def url(self) -> str:
        return self.base_url.rstrip("/") + self.path


@dataclass
class PollResult:
    pages: int = 0
    submitted: int = 0  # new readings handed to sink.submit
    already_seen: int = 0  # readings at or before their device's high-water mark
    rejected: int = 0  # items and pages handed to sink.reject
    malformed_pages: int = 0


class VendorHttpSource:
    """Polls the vendor API; `poll()` does one complete paging pass."""

    def __init__(self, sink: Sink, settings: VendorSettings, state_path: str | Path | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.sink = sink
        self.settings = settings
        self.state_path = Path(state_path) if state_path else None
        self.clock = clock
        self._marks: dict[str, datetime] = self._load_marks()
        self._session = requests.Session()
        self._stop = threading.Event()  # interrupts back-off waits on shutdown
        self._lock = threading.Lock()  # one poll at a time

    @property
    def high_water(self) -> dict[str, datetime]:
        """The newest timestamp submitted per device."""
        return dict(self._marks)

    def close(self) -> None:
        self._stop.set()
        self._session.close()

    def schedule(self, scheduler: BaseScheduler, interval_s: float, job_id: str = "vendor-bracelets") -> Job:
        """Poll every `interval_s` seconds from now on; a poll still running makes the next one wait its turn."""
        return scheduler.add_job(self.poll, "interval", seconds=interval_s, id=job_id, replace_existing=True,
                                 max_instances=1, coalesce=True, next_run_time=datetime.now(UTC))

    def poll(self) -> PollResult:
        """Fetch every page newer than the oldest high-water mark and submit what was not seen before."""
        with self._lock:
            return self._poll()

    def _poll(self) -> PollResult:
        s = self.settings
        result = PollResult()
        # From the oldest device mark on, but never further back than `lookback`: a bracelet that fell silent
        # would otherwise hold `since` back for ever and every poll would fetch more.
        oldest = self.clock() - s.lookback
        since = max(min(self._marks.values()), oldest) if self._marks else oldest
        params: dict[str, str | int] = {"since": int(since.timestamp() * 1000), "limit": s.page_size}
        while result.pages < s.max_pages:
            body = self._get(params)
            result.pages += 1
            source = f"vendor:{s.url}"
            try:
                conv, cursor = convert_vendor_page(body, s.serials, source=source)
            except ValueError as exc:
                self.sink.reject(source=source, code="payload.malformed", detail=f"page {result.pages} ({params}): "
                                 f"{exc}", measurement="current")
                result.malformed_pages += 1
                result.rejected += 1
                log.error("vendor page %d from %s is malformed; the poll stops there: %s", result.pages, s.url, exc)
                break
            fresh = [r for r in conv.readings if r.series not in self._marks or r.ts > self._marks[r.series]]
            if fresh:
                self.sink.submit(fresh)
            for p in conv.problems:
                self.sink.reject(source=source, code=p.code, detail=p.detail, series=p.series, ts=p.ts,
                                 value=p.value, measurement="current")
            result.submitted += len(fresh)
            result.already_seen += len(conv.readings) - len(fresh)
            result.rejected += len(conv.problems)
            if fresh:  # only after the sink took them
                for r in fresh:
                    self._marks[r.series] = max(r.ts, self._marks.get(r.series, r.ts))
                self._save_marks()
            if not cursor:
                break
            params = {**params, "cursor": cursor}
        else:
            log.warning("vendor API %s: stopped after %d pages; the next poll goes on from the marks", s.url,
                        s.max_pages)
        return result

    def _token(self) -> str:
        token = self.settings.token or os.environ.get(self.settings.token_env)
        if not token:
            raise VendorAuthError(f"no token for the vendor API at {self.settings.url}: set {self.settings.token_env}")
        return token

    def _get(self, params: Mapping[str, str | int]) -> bytes:
        """One page, retried with back-off on server errors and time-outs."""
        s = self.settings
        headers = {"Authorization": f"Bearer {self._token()}", "Accept": "application/json"}
        wait, attempt = s.backoff_s, 0
        while True:
            try:
                resp = self._session.get(s.url, params=params, headers=headers, timeout=s.timeout_s)
            except (requests.Timeout, requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
                problem = f"{type(exc).__name__}: {exc}"
            else:
                if resp.status_code in (401, 403):
                    raise VendorAuthError(f"the vendor API at {s.url} refused the token (HTTP {resp.status_code}: "
                                          f"{shown(resp.content)}); check {s.token_env}")
                if resp.status_code == 200:
                    return resp.content
                if resp.status_code not in RETRY_STATUS:
                    raise VendorUnavailable(f"the vendor API at {s.url} answered HTTP {resp.status_code}: "
                                            f"{shown(resp.content)}")
                problem = f"HTTP {resp.status_code}"
            attempt += 1
            if attempt > s.retries:
                raise VendorUnavailable(f"the vendor API at {s.url} failed {attempt} times; last: {problem}")
            log.warning("vendor API %s: %s; retry %d of %d in %.2f s", s.url, problem, attempt, s.retries, wait)
            if self._stop.wait(wait):
                raise VendorUnavailable(f"stopped while waiting to retry {s.url}")
            wait = min(2 * wait, s.backoff_max_s)

    def _load_marks(self) -> dict[str, datetime]:
        if not self.state_path or not self.state_path.exists():
            return {}
        data = json.loads(self.state_path.read_text(encoding="utf-8"))
        return {device: datetime.fromisoformat(ts) for device, ts in data.items()}

    def _save_marks(self) -> None:
        if not self.state_path:
            return
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps({d: ts.isoformat() for d, ts in sorted(self._marks.items())}), encoding="utf-8")
        os.replace(tmp, self.state_path)  # atomic: a crash leaves the old marks or the new, never half a file


__all__ = ["VendorHttpSource", "VendorSettings", "PollResult", "VendorAuthError", "VendorUnavailable"]
