"""The store writer: drains the spool into the time-series store, oldest first.

Rows leave the spool only after the store accepted them.  When the store is down (`StoreUnavailable`) the
writer backs off and tries again later; the rows wait on disk.  A batch the store refuses for good
(`StoreRejected`, e.g. a field type conflict) is moved to the spool's dead-letter table with the reason, so one
bad batch never blocks the queue and nothing disappears.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

import pandas as pd

from collectors.spool import Spool
from park.store import Rejection, StoreRejected, StoreUnavailable, TimeSeriesStore

log = logging.getLogger(__name__)


@dataclass
class DrainResult:
    written: int = 0
    quarantined: int = 0
    buried: int = 0
    store_down: str | None = None  # the error, when the store could not be reached


class Writer:
    """Drains the spool.  A store write has a fixed cost (validation, the insert, the roll-up refresh), so while
    readings keep arriving the writer waits until `min_rows` are queued or `max_wait_s` has passed since its last
    write, trading a few seconds of latency for far less work per reading.  When they stop arriving (nothing new
    at a look, `due()`, once a tick, for at least `quiet_s`) it writes what waits at once: that batch will not
    grow, and waiting for the deadline would only hold back the tail of a stream.  `quiet_s` keeps a look that
    comes just after a drain (or any short stall of a source) from passing for a stopped flow."""

    def __init__(self, spool: Spool, store: TimeSeriesStore, batch_size: int = 50_000, min_rows: int = 1,
                 max_wait_s: float = 0.0, quiet_s: float = 0.0) -> None:
        self.spool = spool
        self.store = store
        self.batch_size = batch_size
        self.min_rows = min_rows
        self.max_wait_s = max_wait_s
        self.quiet_s = quiet_s
        self._last = time.monotonic()
        self._seen: int | None = None  # rows queued at the previous look (a tick's `due()` or a drain's end) ...
        self._seen_at = self._last  # ... and since when that count has not changed
        self._store_down = False  # the last drain found the store down: retry on the deadline, not every quiet tick
        self._lock = threading.Lock()  # one drain at a time

    def due(self) -> bool:
        """Whether a write is worth its fixed cost now: the deadline has passed, a full batch waits, or rows wait
        and none arrived since the previous look, `quiet_s` or more ago (the flow stopped; not while the store is
        known to be down)."""
        return self._due(self.spool.stats().queued)

    def _due(self, queued: int) -> bool:
        """`due()` for `queued` rows waiting (counted once by the caller)."""
        now = time.monotonic()
        if now - self._last >= self.max_wait_s:
            return True
        if queued != self._seen:
            self._seen, self._seen_at = queued, now
            return queued >= self.min_rows
        quiet = queued > 0 and not self._store_down and now - self._seen_at >= self.quiet_s
        return quiet or queued >= self.min_rows

    def drain(self, max_batches: int | None = None, max_rows: int | None = None) -> DrainResult:
        """Write queued rows and rejections to the store until the spool is empty (or max_batches, or max_rows
        claimed)."""
        result = DrainResult()
        with self._lock:
            self._last = time.monotonic()
            try:
                self._drain_rejects(result)
                n, left = 0, max_rows
                while (max_batches is None or n < max_batches) and (left is None or left > 0):
                    rows = self.spool.claim(self.batch_size if left is None else min(self.batch_size, left))
                    if not len(rows):
                        break
                    n += 1
                    left = None if left is None else left - len(rows)
                    # One store write per measurement, not per source: MQTT readings carry their topic as source,
                    # and a write per bracelet (its fixed cost times a thousand devices) was what kept the collector
                    # near 1 000 readings/s.  Several sources in one write are named by their scheme.
                    for measurement, part in rows.groupby("measurement", sort=False):
                        try:
                            res = self.store.write(measurement, part[["ts", "series", "value", "quality", "line"]],
                                                   source=batch_source(part["source"]))
                        except StoreRejected as exc:
                            self.spool.bury(part, str(exc))
                            result.buried += len(part)
                            log.error("store refused %d rows, moved to the dead-letter table: %s", len(part), exc)
                            continue
                        result.written += res.written
                        result.quarantined += len(res.rejected)
                    self.spool.ack(rows["id"])
            except StoreUnavailable as exc:
                result.store_down = str(exc)
                log.warning("store unavailable, %d rows wait in the spool: %s", self.spool.stats().queued, exc)
            self._store_down = result.store_down is not None
            self._seen = self.spool.stats().queued  # what arrives after this is new to the next look
            self._seen_at = time.monotonic()
        return result

    def _drain_rejects(self, result: DrainResult) -> None:
        while rejects := self.spool.claim_rejects(10_000):
            by_measurement: dict[tuple[str, str], list[Rejection]] = {}
            for r in rejects:
                key = (r["measurement"] or "energy", r["source"] or "collector")
                by_measurement.setdefault(key, []).append(Rejection(
                    row=r["row_no"] if r["row_no"] is not None else -1, line=r["line"], series=r["series"] or "",
                    ts=r["ts"] or "", value=r["value"] or "", code=r["code"], reason=r["reason"]))
            for (measurement, source), items in by_measurement.items():
                self.store.quarantine(measurement, items, source)
                result.quarantined += len(items)
            self.spool.ack([r["id"] for r in rejects], table="rejects")

    def drain_if_due(self) -> DrainResult | None:
        """Write what waits now, if due.  Not what arrives meanwhile: chasing a steady flow until the spool is
        empty turned one write into a string of small ones, each paying the fixed cost; those rows wait for the
        next tick's decision."""
        queued = self.spool.stats().queued  # one count of the queue per tick: the decision and the batch's size
        if not self._due(queued):
            return None
        return self.drain(max_rows=queued)

    def run(self, stop: threading.Event, interval_s: float = 1.0, max_backoff_s: float = 30.0) -> None:
        """Drain (when due) until `stop` is set, backing off while the store is down; then drain what is left."""
        wait = interval_s
        while not stop.is_set():
            res = self.drain_if_due()
            wait = min(wait * 2, max_backoff_s) if res is not None and res.store_down else interval_s
            stop.wait(wait)
        self.drain()


def batch_source(sources: pd.Series) -> str:
    """The source named in quarantine records of a batch's store rejections: the one source, or for several the
    scheme they share ("mqtt:*"), else "collector"."""
    names = sources.dropna().astype(str).unique()
    if len(names) == 1:
        return names[0]
    schemes = {n.split(":", 1)[0] for n in names}
    return f"{schemes.pop()}:*" if len(schemes) == 1 else "collector"


__all__ = ["Writer", "DrainResult", "batch_source"]
