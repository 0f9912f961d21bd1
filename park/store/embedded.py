"""The embedded backend: one DuckDB file, no server.  The default for a demo or a small park.

Layout: `points` holds raw readings (naive UTC timestamps); `rollup_hour` and `rollup_day` hold
sum/count/measured/min/max per series and window, refreshed in the same transaction as each write
or delete, so park-wide queries read roll-ups instead of scanning raw data.  Days are park-local.
One process owns the file (DuckDB locks it); threads share the connection through cursors.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa

from park.model import SeriesCatalog
from park.store.base import Correction, TimeSeriesStore
from park.store.errors import StoreUnavailable
from park.store.schema import Rejection, Window

_TAGS = "series, enterprise, workshop, carrier"
_STATS = "sum DOUBLE, count BIGINT, measured BIGINT, min DOUBLE, max DOUBLE"
SCHEMA = f"""
CREATE TABLE IF NOT EXISTS points (measurement VARCHAR, series VARCHAR, enterprise VARCHAR, workshop VARCHAR,
    carrier VARCHAR, ts TIMESTAMP, value DOUBLE, quality VARCHAR);
CREATE TABLE IF NOT EXISTS rollup_hour (measurement VARCHAR, series VARCHAR, enterprise VARCHAR, workshop VARCHAR,
    carrier VARCHAR, ts TIMESTAMP, {_STATS});
CREATE TABLE IF NOT EXISTS rollup_day (measurement VARCHAR, series VARCHAR, enterprise VARCHAR, workshop VARCHAR,
    carrier VARCHAR, ts TIMESTAMP, {_STATS});
CREATE TABLE IF NOT EXISTS quarantine (received TIMESTAMP, measurement VARCHAR, source VARCHAR, "row" BIGINT,
    line BIGINT, series VARCHAR, ts VARCHAR, value VARCHAR, code VARCHAR, reason VARCHAR);
CREATE TABLE IF NOT EXISTS audit ("at" TIMESTAMP, actor VARCHAR, action VARCHAR, measurement VARCHAR, series VARCHAR,
    start TIMESTAMP, "end" TIMESTAMP, "rows" BIGINT, reason VARCHAR);
"""
_FROM_POINTS = ("sum(value) AS sum, count(value) AS count, count(*) FILTER (WHERE quality = 'measured') AS measured,"
                " min(value) AS min, max(value) AS max")
_FROM_ROLLUP = "sum(sum) AS sum, sum(count) AS count, sum(measured) AS measured, min(min) AS min, max(max) AS max"


def _naive_utc(t: pd.Timestamp) -> datetime:
    return t.tz_convert("UTC").tz_localize(None).to_pydatetime()


class EmbeddedStore(TimeSeriesStore):
    """Time-series store in a DuckDB file (or in memory with path ':memory:')."""

    backend = "embedded"

    def __init__(self, path: str | Path, catalog: SeriesCatalog, timezone: str = "Asia/Shanghai") -> None:
        super().__init__(catalog, timezone)
        self._check_whole_hour_offsets()
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.path = str(path)
        try:
            self._con = duckdb.connect(self.path)
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower():
                raise
            holder = re.search(r"PID \d+", str(exc))
            raise StoreUnavailable(
                f"the embedded store {self.path} is in use by another process"
                f"{f' ({holder.group(0)})' if holder else ''}, such as a running `parkcarbon serve` or "
                "`parkcarbon collect`: the embedded store takes one process at a time. Stop that process and try "
                "again, or move the park to InfluxDB + PostgreSQL, where the portal, the collectors and imports run "
                "side by side (docs/deploy.md)") from None
        self._con.execute("SET TimeZone = 'UTC'")
        self._con.execute(SCHEMA)
        self._write_lock = threading.RLock()  # re-entrant: a correction's writes run inside its transaction
        self._in_transaction = False
        self._local = threading.local()

    def _check_whole_hour_offsets(self) -> None:
        # Daily roll-ups are built from hourly ones: every hour must fall in one local day.
        probes = pd.date_range("2000-01-01", "2040-01-01", freq="30D", tz="UTC").tz_convert(self.tz)
        if any(p.utcoffset().total_seconds() % 3600 for p in probes):
            raise ValueError(f"time zone {self.timezone} has a UTC offset that is not whole hours; "
                             "the embedded store's daily roll-ups need whole-hour offsets")

    @property
    def _cur(self) -> duckdb.DuckDBPyConnection:
        cur = getattr(self._local, "cur", None)
        if cur is None:
            cur = self._local.cur = self._con.cursor()
            cur.execute("SET TimeZone = 'UTC'")
        return cur

    def close(self) -> None:
        self._con.close()

    # ---- writing ---------------------------------------------------------------------------
    @contextmanager
    def _transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """One DuckDB transaction for the block; inside another (a correction's), the block joins it."""
        with self._write_lock:
            con = self._con
            if self._in_transaction:
                yield con
                return
            con.execute("BEGIN")
            self._in_transaction = True
            try:
                yield con
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
            finally:
                self._in_transaction = False

    @contextmanager
    def _correction(self, measurement: str, corrections: list[Correction], actor: str) -> Iterator[None]:
        """Clear the ranges, write what the block writes and the audit records, in one transaction."""
        with self._transaction():
            for c in corrections:
                self._delete(measurement, c.series, c.start, c.end, actor, c.reason, action="correct",
                             audit_rows=c.rows)
            yield

    def _write_valid(self, measurement: str, frame: pd.DataFrame) -> int:
        batch = frame.assign(ts=frame["ts"].dt.tz_convert("UTC").dt.tz_localize(None).astype("datetime64[us]"))
        lo, hi = batch["ts"].min().to_pydatetime(), batch["ts"].max().to_pydatetime()
        with self._write_lock:
            con = self._con
            con.register("_batch", pa.Table.from_pandas(batch, preserve_index=False))  # arrow: scanned without the GIL
            try:
                self._write_batch(con, measurement, lo, hi)
            finally:
                con.unregister("_batch")
        return len(batch)

    def _write_batch(self, con: duckdb.DuckDBPyConnection, measurement: str, lo: datetime, hi: datetime) -> None:
        with self._transaction():
            overlap = con.execute(
                "SELECT count(*) FROM points WHERE measurement = ? AND ts BETWEEN ? AND ?", [measurement, lo, hi]
            ).fetchone()[0]
            if overlap:
                con.execute(
                    "DELETE FROM points p USING _batch b WHERE p.measurement = ? AND p.ts BETWEEN ? AND ? "
                    "AND p.series = b.series AND p.ts = b.ts", [measurement, lo, hi])
            con.execute(f"INSERT INTO points SELECT ?, {_TAGS}, ts, value, quality FROM _batch", [measurement])
            con.execute("CREATE OR REPLACE TEMP TABLE _touched AS SELECT DISTINCT series FROM _batch")
            self._refresh_rollups(con, measurement, pd.Timestamp(lo, tz="UTC"), pd.Timestamp(hi, tz="UTC"))

    def _refresh_rollups(self, con: duckdb.DuckDBPyConnection, measurement: str, lo: pd.Timestamp,
                         hi: pd.Timestamp) -> None:
        """Recompute the hours and park-local days in [lo, hi] of the series in temp table _touched."""
        h0, h1 = lo.floor("h"), hi.floor("h") + pd.Timedelta("1h")
        d0 = lo.tz_convert(self.tz).floor("D")
        d1 = (hi.tz_convert(self.tz).floor("D") + pd.DateOffset(days=1)).tz_convert("UTC")
        in_touched = "series IN (SELECT series FROM _touched)"
        hours = [measurement, _naive_utc(h0), _naive_utc(h1)]
        days = [measurement, _naive_utc(d0), _naive_utc(d1)]
        con.execute(f"DELETE FROM rollup_hour WHERE measurement = ? AND ts >= ? AND ts < ? AND {in_touched}", hours)
        con.execute(
            f"INSERT INTO rollup_hour SELECT measurement, {_TAGS}, date_trunc('hour', ts) AS h, {_FROM_POINTS} "
            f"FROM points WHERE measurement = ? AND ts >= ? AND ts < ? AND {in_touched} "
            f"GROUP BY measurement, {_TAGS}, h", hours)
        con.execute(f"DELETE FROM rollup_day WHERE measurement = ? AND ts >= ? AND ts < ? AND {in_touched}", days)
        con.execute(
            f"INSERT INTO rollup_day SELECT measurement, {_TAGS}, {self._local_trunc('day')} AS d, {_FROM_ROLLUP} "
            f"FROM rollup_hour WHERE measurement = ? AND ts >= ? AND ts < ? AND {in_touched} "
            f"GROUP BY measurement, {_TAGS}, d", days)

    def _local_trunc(self, unit: str) -> str:
        """SQL for the UTC instant of the park-local start of the day or month holding ts."""
        tz = self.timezone.replace("'", "")
        return (f"CAST(timezone('{tz}', date_trunc('{unit}', timezone('{tz}', CAST(ts AS TIMESTAMPTZ))))"
                " AS TIMESTAMP)")

    def _quarantine(self, measurement: str, rejected: list[Rejection], source: str) -> None:
        now = datetime.now(UTC).replace(tzinfo=None)
        rows = pd.DataFrame([{"received": now, "measurement": measurement, "source": source, **r.__dict__}
                             for r in rejected])
        rows["line"] = rows["line"].astype("Int64")
        with self._transaction():
            self._con.register("_q", rows)
            try:
                self._con.execute('INSERT INTO quarantine SELECT received, measurement, source, "row", line, series, '
                                  "ts, value, code, reason FROM _q")
            finally:
                self._con.unregister("_q")

    # ---- reading ---------------------------------------------------------------------------
    def _filters(self, where: dict[str, list[str]]) -> tuple[str, list]:
        sql, params = "", []
        for key, vals in where.items():
            sql += f" AND {key} IN (SELECT unnest(?::VARCHAR[]))"
            params.append(vals)
        return sql, params

    def _aggregate(self, measurement: str, start: pd.Timestamp, end: pd.Timestamp, window: Window | None,
                   by: list[str], where: dict[str, list[str]]) -> pd.DataFrame:
        day_aligned = all(t.tz_convert(self.tz) == t.tz_convert(self.tz).floor("D") for t in (start, end))
        hour_aligned = all(t == t.floor("h") for t in (start, end))
        if window is Window.QUARTER_HOUR or not hour_aligned:
            table, stats = "points", _FROM_POINTS
        elif window is Window.HOUR or not day_aligned:
            table, stats = "rollup_hour", _FROM_ROLLUP
        else:
            table, stats = "rollup_day", _FROM_ROLLUP
        bucket = {
            None: "CAST(? AS TIMESTAMP)",
            Window.QUARTER_HOUR: "time_bucket(INTERVAL 15 MINUTE, ts)",
            Window.HOUR: "date_trunc('hour', ts)",
            Window.DAY: self._local_trunc("day"),
            Window.MONTH: self._local_trunc("month"),
        }[window]
        filt, fparams = self._filters(where)
        groups = ", ".join(["start", *by])
        params: list = ([_naive_utc(start)] if window is None else []) + [measurement, _naive_utc(start),
                                                                          _naive_utc(end), *fparams]
        sel_by = "".join(f", {b}" for b in by)
        sql = (f"SELECT {bucket} AS start{sel_by}, {stats} FROM {table} "
               f"WHERE measurement = ? AND ts >= ? AND ts < ?{filt} GROUP BY {groups}")
        return self._cur.execute(sql, params).df()

    def _latest(self, measurement: str, where: dict[str, list[str]]) -> pd.DataFrame:
        filt, fparams = self._filters(where)
        # The newest hour of every series bounds the raw scan to the recent tail of the table.
        since = self._cur.execute(
            f"SELECT min(last) FROM (SELECT max(ts) AS last FROM rollup_hour WHERE measurement = ?{filt} "
            "GROUP BY series)", [measurement, *fparams]).fetchone()[0]
        if since is None:
            return pd.DataFrame(columns=["series", "ts", "value", "quality"])
        return self._cur.execute(
            "SELECT series, max(ts) AS ts, arg_max(value, ts) AS value, arg_max(quality, ts) AS quality "
            f"FROM points WHERE measurement = ? AND ts >= ?{filt} GROUP BY series",
            [measurement, since, *fparams]).df()

    def _points(self, measurement: str, start: pd.Timestamp, end: pd.Timestamp,
                where: dict[str, list[str]]) -> pd.DataFrame:
        filt, fparams = self._filters(where)
        return self._cur.execute(
            f"SELECT series, ts, value, quality FROM points WHERE measurement = ? AND ts >= ? AND ts < ?{filt}",
            [measurement, _naive_utc(start), _naive_utc(end), *fparams]).df()

    def _series_values(self, measurement: str, start: pd.Timestamp, end: pd.Timestamp,
                       where: dict[str, list[str]]) -> pd.DataFrame:
        filt, fparams = self._filters(where)
        return self._cur.execute(
            f"SELECT ts, value FROM points WHERE measurement = ? AND ts >= ? AND ts < ?{filt} ORDER BY ts",
            [measurement, _naive_utc(start), _naive_utc(end), *fparams]).df()

    def _delete(self, measurement: str, series: str, start: pd.Timestamp, end: pd.Timestamp, actor: str,
                reason: str, *, action: str = "delete", audit_rows: int | None = None) -> int:
        args = [measurement, series, _naive_utc(start), _naive_utc(end)]
        with self._transaction() as con:
            n = con.execute("SELECT count(*) FROM points WHERE measurement = ? AND series = ? AND ts >= ? "
                            "AND ts < ?", args).fetchone()[0]
            con.execute("DELETE FROM points WHERE measurement = ? AND series = ? AND ts >= ? AND ts < ?", args)
            con.execute("CREATE OR REPLACE TEMP TABLE _touched AS SELECT ? AS series", [series])
            self._refresh_rollups(con, measurement, start, end - pd.Timedelta("1us"))
            con.execute("INSERT INTO audit VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [datetime.now(UTC).replace(tzinfo=None), actor, action, measurement, series,
                         _naive_utc(start), _naive_utc(end), n if audit_rows is None else audit_rows, reason])
        return int(n)

    def quarantined(self, measurement: str | None = None) -> pd.DataFrame:
        sql, params = "SELECT * FROM quarantine", []
        if measurement:
            sql, params = sql + " WHERE measurement = ?", [measurement]
        out = self._cur.execute(sql + ' ORDER BY received, "row"', params).df()
        out["received"] = pd.to_datetime(out["received"]).dt.tz_localize("UTC")
        return out

    def audit_log(self) -> pd.DataFrame:
        out = self._cur.execute("SELECT * FROM audit ORDER BY \"at\"").df()
        for col in ("at", "start", "end"):
            out[col] = pd.to_datetime(out[col]).dt.tz_localize("UTC")
        return out
