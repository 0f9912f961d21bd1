"""The store-and-forward spool: a durable on-disk queue (SQLite, WAL) between the pipeline and the store.

The pipeline appends normalised readings, its rejections and its per-meter counter state in ONE transaction,
so a crash never separates "this register value was consumed" from "its interval energy is queued".  The
writer claims the oldest rows, writes them to the store and deletes them only after the store said yes; a
crash in between replays them, which is harmless because store writes are idempotent.  A store outage costs
latency, never data.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

SCHEMA = """
CREATE TABLE IF NOT EXISTS queue (id INTEGER PRIMARY KEY, measurement TEXT NOT NULL, series TEXT NOT NULL,
    ts_ns INTEGER NOT NULL, value REAL NOT NULL, quality TEXT NOT NULL, source TEXT, line INTEGER);
CREATE TABLE IF NOT EXISTS rejects (id INTEGER PRIMARY KEY, measurement TEXT, source TEXT, row_no INTEGER,
    line INTEGER, series TEXT, ts TEXT, value TEXT, code TEXT, reason TEXT);
CREATE TABLE IF NOT EXISTS dead (id INTEGER PRIMARY KEY, at_ns INTEGER, measurement TEXT, series TEXT, ts_ns INTEGER,
    value REAL, quality TEXT, source TEXT, line INTEGER, reason TEXT);
CREATE TABLE IF NOT EXISTS state (series TEXT PRIMARY KEY, data TEXT NOT NULL);
"""


def _lines(values: list) -> list[int | None]:
    """Source line numbers as ints, None where there is none (all None for a batch from a network source)."""
    if all(v is None for v in values):
        return values
    return [None if pd.isna(v) else int(v) for v in values]


@dataclass(frozen=True)
class SpoolStats:
    queued: int
    rejects: int
    dead: int


class Spool:
    """Durable queue of readings awaiting the store.  Thread-safe; one file per collector process."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._con = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._con.execute("PRAGMA journal_mode=WAL")
        self._con.execute("PRAGMA synchronous=FULL")  # a committed batch survives a power cut too
        self._con.executescript(SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._con.close()

    # ---- appending (pipeline) -----------------------------------------------------------------
    def append(self, rows: pd.DataFrame | None = None, rejects: Iterable[dict] = (),
               state: dict[str, dict] | None = None) -> int:
        """Queue rows (measurement, series, ts, value, quality, source, line), record rejections and save
        counter state, all in one transaction."""
        records = []
        if rows is not None and len(rows):
            ts_ns = pd.to_datetime(rows["ts"], utc=True).astype("datetime64[ns, UTC]").astype("int64")
            line = rows["line"] if "line" in rows else pd.Series([None] * len(rows))
            source = rows["source"] if "source" in rows else pd.Series([None] * len(rows))
            def listed(col: pd.Series) -> list:
                return col.to_numpy(dtype=object).tolist()

            records = list(zip(listed(rows["measurement"]), listed(rows["series"]), ts_ns.tolist(),
                               rows["value"].astype(float).tolist(), listed(rows["quality"]), listed(source),
                               _lines(listed(line)), strict=True))
        rej = [(r.get("measurement"), r.get("source"), r.get("row"), r.get("line"), r.get("series"), r.get("ts"),
                r.get("value"), r["code"], r["reason"]) for r in rejects]
        with self._lock:
            self._con.execute("BEGIN IMMEDIATE")
            try:
                self._con.executemany("INSERT INTO queue (measurement, series, ts_ns, value, quality, source, line) "
                                      "VALUES (?, ?, ?, ?, ?, ?, ?)", records)
                self._con.executemany("INSERT INTO rejects (measurement, source, row_no, line, series, ts, value, "
                                      "code, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rej)
                for series, data in (state or {}).items():
                    self._con.execute("INSERT INTO state VALUES (?, ?) ON CONFLICT(series) DO UPDATE SET "
                                      "data = excluded.data", (series, json.dumps(data)))
                self._con.execute("COMMIT")
            except BaseException:
                self._con.execute("ROLLBACK")
                raise
        return len(records)

    def load_state(self) -> dict[str, dict]:
        with self._lock:
            return {s: json.loads(d) for s, d in self._con.execute("SELECT series, data FROM state")}

    # ---- draining (writer) ----------------------------------------------------------------------
    def claim(self, limit: int) -> pd.DataFrame:
        """The oldest queued rows (not removed until `ack`)."""
        with self._lock:
            rows = self._con.execute("SELECT id, measurement, series, ts_ns, value, quality, source, line FROM queue "
                                     "ORDER BY id LIMIT ?", (limit,)).fetchall()
        # Built column by column with the types known (pandas' row-wise inference was a third of the writer's CPU).
        cols = list(zip(*rows, strict=True)) if rows else [()] * 8
        ts_ns = np.fromiter(cols[3], dtype="int64", count=len(rows))
        frame = pd.DataFrame({
            "id": np.fromiter(cols[0], dtype="int64", count=len(rows)),
            **{name: pd.Series(cols[i], dtype=object) for i, name in ((1, "measurement"), (2, "series"))},
            "ts_ns": ts_ns, "value": np.fromiter(cols[4], dtype="float64", count=len(rows)),
            **{name: pd.Series(cols[i], dtype=object) for i, name in ((5, "quality"), (6, "source"), (7, "line"))}})
        frame["ts"] = pd.to_datetime(ts_ns, unit="ns", utc=True)
        return frame

    def claim_rejects(self, limit: int) -> list[dict]:
        with self._lock:
            cur = self._con.execute("SELECT * FROM rejects ORDER BY id LIMIT ?", (limit,))
            cols = [d[0] for d in cur.description]
            return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]

    def ack(self, ids: Iterable[int], table: str = "queue") -> None:
        """Forget rows the store has accepted."""
        assert table in ("queue", "rejects")
        ids = sorted({int(i) for i in ids})
        with self._lock:
            self._con.execute("BEGIN IMMEDIATE")
            if ids and ids[-1] - ids[0] + 1 == len(ids):  # a run of ids (what a claim gives): one range delete
                self._con.execute(f"DELETE FROM {table} WHERE id BETWEEN ? AND ?", (ids[0], ids[-1]))
            else:
                self._con.executemany(f"DELETE FROM {table} WHERE id = ?", [(i,) for i in ids])
            self._con.execute("COMMIT")

    def bury(self, rows: pd.DataFrame, reason: str) -> None:
        """Move rows the store refused for good (e.g. a field type conflict) out of the queue, kept with why."""
        now = time.time_ns()
        with self._lock:
            self._con.execute("BEGIN IMMEDIATE")
            self._con.executemany(
                "INSERT INTO dead (at_ns, measurement, series, ts_ns, value, quality, source, line, reason) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(now, r.measurement, r.series, int(r.ts_ns), float(r.value), r.quality, r.source,
                  None if pd.isna(r.line) else int(r.line), reason) for r in rows.itertuples()])
            self._con.executemany("DELETE FROM queue WHERE id = ?", [(int(i),) for i in rows["id"]])
            self._con.execute("COMMIT")

    def dead_letters(self) -> pd.DataFrame:
        with self._lock:
            cur = self._con.execute("SELECT * FROM dead ORDER BY id")
            return pd.DataFrame(cur.fetchall(), columns=[d[0] for d in cur.description])

    def stats(self) -> SpoolStats:
        with self._lock:
            q = self._con.execute("SELECT count(*) FROM queue").fetchone()[0]
            r = self._con.execute("SELECT count(*) FROM rejects").fetchone()[0]
            d = self._con.execute("SELECT count(*) FROM dead").fetchone()[0]
        return SpoolStats(queued=q, rejects=r, dead=d)
