"""The InfluxDB backend, over the 1.x-compatible HTTP API (`/write` line protocol, `/query` InfluxQL).

InfluxDB 1.x, 2.x (compatibility endpoints, token auth) and 3.x all serve this API, so it is the one path
we rely on and test (against InfluxDB 1.6 from Debian).  Writes are serialised column-wise
(`lineprotocol.py`), posted in batches with gzip, several in flight, with retries and back-off on
connection errors and 5xx/429; a refusal (4xx) is raised at once with the server's reason.  Roll-ups live in
the measurements `<name>_1h` and `<name>_1d` (park-local days) and are recomputed server-side with
`SELECT ... INTO` for the series and range each write or delete touched.
"""

from __future__ import annotations

import gzip
import itertools
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pandas as pd
import requests
from influxdb_client import Point

from park.model import SeriesCatalog
from park.store.base import TimeSeriesStore
from park.store.errors import StoreRejected, StoreUnavailable
from park.store.lineprotocol import best_precision, encode_body, series_keys
from park.store.schema import Rejection, Window

RETRY_STATUS = {429, 500, 502, 503, 504}
# Above this many series a roll-up refresh covers every series of the range rather than a regex of names.
_MAX_SERIES_IN_REGEX = 200


@dataclass(frozen=True)
class InfluxConfig:
    url: str = "http://127.0.0.1:8086"
    database: str = "parkcarbon"
    username: str | None = None
    password: str | None = None
    token: str | None = None  # InfluxDB 2.x/3.x: sent as "Authorization: Token ..."
    timeout_s: float = 10.0  # per write request
    query_timeout_s: float = 60.0  # per query; a query is not retried after a read timeout
    retries: int = 3
    backoff_s: float = 0.5  # first wait; doubles each retry, capped at 8 s
    batch_size: int = 10_000  # lines per POST
    max_in_flight: int = 2
    gzip: bool = True
    create_database: bool = True


def _ns(t: pd.Timestamp) -> int:
    return int(t.tz_convert("UTC").value)


def _quote(v: str) -> str:
    return "'" + str(v).replace("\\", "\\\\").replace("'", "\\'") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '\\"') + '"'


class InfluxStore(TimeSeriesStore):
    """Time-series store on an InfluxDB server."""

    backend = "influx"

    def __init__(self, config: InfluxConfig, catalog: SeriesCatalog, timezone: str = "Asia/Shanghai") -> None:
        super().__init__(catalog, timezone)
        self.config = config
        self._http = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=max(4, config.max_in_flight * 2))
        self._http.mount("http://", adapter)
        self._http.mount("https://", adapter)
        self._headers = {"Authorization": f"Token {config.token}"} if config.token else {}
        self._auth = {"u": config.username, "p": config.password} if config.username else {}
        self._seq = itertools.count()
        self._keys: dict[str, dict[str, str]] = {}
        if config.create_database:
            self.query(f"CREATE DATABASE {_ident(config.database)}", db=False)

    def close(self) -> None:
        self._http.close()

    # ---- HTTP with retries ---------------------------------------------------------------------
    def _send(self, method: str, path: str, *, params: dict, data: bytes | dict | None = None,
              headers: dict | None = None, read_timeout_s: float | None = None,
              retry_read_timeout: bool = True) -> requests.Response:
        cfg = self.config
        url = cfg.url.rstrip("/") + path
        started, last = time.monotonic(), ""
        read_timeout_s = read_timeout_s or cfg.timeout_s
        for attempt in range(cfg.retries + 1):
            if attempt:
                time.sleep(min(cfg.backoff_s * 2 ** (attempt - 1), 8.0))
            try:
                resp = self._http.request(method, url, params={**self._auth, **params}, data=data,
                                          headers={**self._headers, **(headers or {})},
                                          timeout=(min(cfg.timeout_s, 5.0), read_timeout_s))
            except requests.ReadTimeout as exc:
                last = f"no answer within {read_timeout_s} s ({exc})"
                if not retry_read_timeout:
                    break
                continue
            except requests.ConnectionError as exc:
                last = f"{type(exc).__name__}: {exc}"
                continue
            if resp.status_code in RETRY_STATUS:
                last = f"HTTP {resp.status_code}: {resp.text.strip()[:300]}"
                continue
            if resp.status_code >= 400:
                raise StoreRejected(self._refusal(resp), status=resp.status_code, dropped=self._dropped(resp))
            return resp
        raise StoreUnavailable(
            f"InfluxDB at {cfg.url} did not answer {path} after {attempt + 1} attempt(s) in "
            f"{time.monotonic() - started:.1f} s (timeout {read_timeout_s} s each); last error: {last}")

    def _refusal(self, resp: requests.Response) -> str:
        try:
            reason = resp.json().get("error", resp.text)
        except ValueError:
            reason = resp.text
        hint = {401: " (check the user/password or token)", 403: " (the user lacks permission)",
                404: f" (does database {self.config.database!r} exist?)"}.get(resp.status_code, "")
        return f"InfluxDB at {self.config.url} refused the request: HTTP {resp.status_code}: {reason.strip()}{hint}"

    @staticmethod
    def _dropped(resp: requests.Response) -> int | None:
        m = re.search(r"dropped=(\d+)", resp.text)
        return int(m.group(1)) if m else None

    def query(self, q: str, *, db: bool = True, epoch: str = "ms") -> list[dict]:
        """Run InfluxQL statements; return each statement's result, raising on any error in them."""
        params = {"epoch": epoch, **({"db": self.config.database} if db else {})}
        resp = self._send("POST", "/query", params=params, data={"q": q}, read_timeout_s=self.config.query_timeout_s,
                          retry_read_timeout=False)
        results = resp.json().get("results", [])
        for r in results:
            if "error" in r:
                raise StoreRejected(f"InfluxDB refused the query: {r['error']}; query: {q[:300]}")
        return results

    def write_lines(self, lines: list[str], precision: str = "s") -> int:
        """Post lines in batches, several in flight; all batches or an error (none is lost silently)."""
        batches = [lines[i:i + self.config.batch_size] for i in range(0, len(lines), self.config.batch_size)]
        with ThreadPoolExecutor(self.config.max_in_flight) as pool:
            for _ in pool.map(lambda b: self._post_batch(b, precision), batches):
                pass
        return len(lines)

    def _post_batch(self, lines: list[str], precision: str) -> None:
        self._post_body("\n".join(lines).encode(), precision)

    def _post_body(self, body: bytes, precision: str) -> None:
        headers = {"Content-Type": "text/plain; charset=utf-8"}
        if self.config.gzip:
            body = gzip.compress(body, compresslevel=1)
            headers["Content-Encoding"] = "gzip"
        self._send("POST", "/write", params={"db": self.config.database, "precision": precision}, data=body,
                   headers=headers)

    # ---- writing ---------------------------------------------------------------------------
    def _write_valid(self, measurement: str, frame: pd.DataFrame) -> int:
        precision = best_precision(frame["ts"])
        keys = self._keys.get(measurement) or self._keys.setdefault(measurement,
                                                                     series_keys(measurement, self.catalog))
        size = self.config.batch_size
        with ThreadPoolExecutor(self.config.max_in_flight) as pool:
            futures = [pool.submit(self._post_body, encode_body(frame.iloc[i:i + size], keys, precision), precision)
                       for i in range(0, len(frame), size)]  # encode the next batch while earlier ones are posted
            for f in futures:
                f.result()
        self._mark_dirty(measurement, frame["ts"].min(), frame["ts"].max(), list(pd.unique(frame["series"])))
        return len(frame)

    # ---- roll-ups ---------------------------------------------------------------------------
    # A write marks its range dirty (a point in `_rollup_dirty`, so a crash loses no mark); the roll-ups are
    # recomputed by `refresh_rollups()`, which a scheduled job runs and every roll-up read runs first.
    # Recomputing inside each write would cost InfluxDB 1.x more than the write itself (see docs/store.md).
    def _mark_dirty(self, measurement: str, lo: pd.Timestamp, hi: pd.Timestamp, series: list[str]) -> None:
        names = "*" if len(series) > _MAX_SERIES_IN_REGEX else "\n".join(series)
        self.write_lines([self._record("_rollup_dirty", {"measurement": measurement},
                                       {"lo": _ns(lo), "hi": _ns(hi), "series": names})], precision="ns")

    def pending_rollups(self) -> pd.DataFrame:
        """Dirty ranges not yet folded into the roll-ups: time (ns), measurement, lo, hi, series."""
        return self._frame(self.query('SELECT * FROM "_rollup_dirty"', epoch="ns"), [])

    def refresh_rollups(self) -> int:
        """Recompute the roll-ups of every pending dirty range; return how many ranges were done."""
        pending = self.pending_rollups()
        for row in pending.itertuples(index=False):
            series = None if row.series == "*" else str(row.series).split("\n")
            lo = pd.Timestamp(int(row.lo), unit="ns", tz="UTC")
            hi = pd.Timestamp(int(row.hi), unit="ns", tz="UTC")
            self._refresh_rollups(row.measurement, lo, hi, series)
            self.query(f'DELETE FROM "_rollup_dirty" WHERE time = {int(row.time)}')
        return len(pending)

    def _series_clause(self, series: list[str] | None) -> str:
        if series is None or len(series) > _MAX_SERIES_IN_REGEX:
            return ""
        return " AND \"series\" =~ /^(" + "|".join(re.escape(s).replace("/", "\\/") for s in series) + ")$/"

    def _refresh_rollups(self, measurement: str, lo: pd.Timestamp, hi: pd.Timestamp,
                         series: list[str] | None) -> None:
        """Recompute the hours and park-local days in [lo, hi] of the given series (delete, then INTO)."""
        sel = self._series_clause(series)
        h0, h1 = lo.floor("h"), hi.floor("h") + pd.Timedelta("1h")
        d0 = lo.tz_convert(self.tz).floor("D")
        d1 = hi.tz_convert(self.tz).floor("D") + pd.DateOffset(days=1)
        m, mh, md = _ident(measurement), _ident(measurement + "_1h"), _ident(measurement + "_1d")
        hours = f"time >= {_ns(h0)} AND time < {_ns(h1)}{sel}"
        days = f"time >= {_ns(d0)} AND time < {_ns(d1)}{sel}"
        tz = f" tz({_quote(self.timezone)})"
        self.query(";".join([
            f"DELETE FROM {mh} WHERE {hours}",
            f'SELECT sum("value") AS "sum", count("value") AS "count", min("value") AS "min", max("value") AS "max" '
            f"INTO {mh} FROM {m} WHERE {hours} GROUP BY time(1h), *",
            f'SELECT count("value") AS "measured" INTO {mh} FROM {m} WHERE "quality" = \'measured\' AND {hours} '
            "GROUP BY time(1h), *",
            f"DELETE FROM {md} WHERE {days}",
            f'SELECT sum("sum") AS "sum", sum("count") AS "count", sum("measured") AS "measured", min("min") AS "min", '
            f'max("max") AS "max" INTO {md} FROM {mh} WHERE {days} GROUP BY time(1d), *{tz}',
        ]))

    def _record(self, measurement: str, tags: dict, fields: dict) -> str:
        """One bookkeeping point (quarantine, audit), timestamped now with a unique nanosecond."""
        p = Point(measurement)
        for k, v in tags.items():
            if v not in (None, ""):
                p = p.tag(k, str(v))
        for k, v in fields.items():
            if v is not None:
                p = p.field(k, v)
        stamp = time.time_ns() // 1000 * 1000 + next(self._seq) % 1000
        return p.time(stamp).to_line_protocol()

    def _quarantine(self, measurement: str, rejected: list[Rejection], source: str) -> None:
        lines = [self._record("_quarantine", {"measurement": measurement, "source": source, "code": r.code},
                              {"row": r.row, "line": r.line, "series": r.series, "ts": r.ts, "value": r.value,
                               "reason": r.reason}) for r in rejected]
        self.write_lines(lines, precision="ns")

    # ---- reading ---------------------------------------------------------------------------
    def _frame(self, results: list[dict], by: list[str]) -> pd.DataFrame:
        rows = []
        for r in results:
            for s in r.get("series", []):
                tags = {k: (v if v != "" else None) for k, v in (s.get("tags") or {}).items()}
                for values in s["values"]:
                    rows.append({**dict(zip(s["columns"], values, strict=True)), **{b: tags.get(b) for b in by}})
        return pd.DataFrame(rows)

    def _filters(self, where: dict[str, list[str]]) -> str:
        return "".join(" AND (" + " OR ".join(f"{_ident(k)} = {_quote(v)}" for v in vals) + ")"
                       for k, vals in where.items())

    def _aggregate(self, measurement: str, start: pd.Timestamp, end: pd.Timestamp, window: Window | None,
                   by: list[str], where: dict[str, list[str]]) -> pd.DataFrame:
        day_aligned = all(t.tz_convert(self.tz) == t.tz_convert(self.tz).floor("D") for t in (start, end))
        hour_aligned = all(t == t.floor("h") for t in (start, end))
        cond = f"time >= {_ns(start)} AND time < {_ns(end)}{self._filters(where)}"
        every = {None: None, Window.QUARTER_HOUR: "15m", Window.HOUR: "1h", Window.DAY: "1d", Window.MONTH: "1d"}
        group = [f"time({every[window]})"] if window is not None else []
        group += [_ident(b) for b in by]
        tz = f" tz({_quote(self.timezone)})" if window in (Window.DAY, Window.MONTH) else ""
        group_sql = (" GROUP BY " + ", ".join(group) + " fill(none)" if group else "") + tz
        if window is Window.QUARTER_HOUR or not hour_aligned:
            m = _ident(measurement)
            stats = self.query(
                f'SELECT sum("value") AS "sum", count("value") AS "count", min("value") AS "min", '
                f'max("value") AS "max" FROM {m} WHERE {cond}{group_sql};'
                f'SELECT count("value") AS "measured" FROM {m} WHERE "quality" = \'measured\' AND {cond}{group_sql}')
            frame = self._frame(stats[:1], by)
            measured = self._frame(stats[1:], by)
            keys = ["time", *by]
            if len(frame):
                frame = frame.merge(measured, on=keys, how="left") if len(measured) else frame.assign(measured=0)
        else:
            self.refresh_rollups()
            source = _ident(measurement + ("_1h" if window is Window.HOUR or not day_aligned else "_1d"))
            frame = self._frame(self.query(
                f'SELECT sum("sum") AS "sum", sum("count") AS "count", sum("measured") AS "measured", '
                f'min("min") AS "min", max("max") AS "max" FROM {source} WHERE {cond}{group_sql}'), by)
        if not len(frame):
            return pd.DataFrame(columns=["start", *by, "sum", "count", "measured", "min", "max"])
        frame["measured"] = frame["measured"].fillna(0)
        frame["start"] = start if window is None else pd.to_datetime(frame["time"], unit="ms", utc=True)
        frame = frame.drop(columns=["time"])
        if window is Window.MONTH:
            frame["start"] = (frame["start"].dt.tz_convert(self.tz).dt.tz_localize(None).dt.to_period("M")
                              .dt.to_timestamp().dt.tz_localize(self.tz).dt.tz_convert("UTC"))
            frame = frame.groupby(["start", *by], dropna=False).agg(
                sum=("sum", "sum"), count=("count", "sum"), measured=("measured", "sum"), min=("min", "min"),
                max=("max", "max")).reset_index()
        return frame

    def _latest(self, measurement: str, where: dict[str, list[str]]) -> pd.DataFrame:
        filt = self._filters(where)
        res = self.query(f'SELECT last("value") AS "value", "quality" FROM {_ident(measurement)} '
                         f'WHERE time > 0{filt} GROUP BY "series"')
        frame = self._frame(res, ["series"])
        if not len(frame):
            return pd.DataFrame(columns=["series", "ts", "value", "quality"])
        frame["ts"] = pd.to_datetime(frame.pop("time"), unit="ms", utc=True)
        return frame[["series", "ts", "value", "quality"]]

    def _points(self, measurement: str, start: pd.Timestamp, end: pd.Timestamp,
                where: dict[str, list[str]]) -> pd.DataFrame:
        res = self.query(f'SELECT "value", "quality" FROM {_ident(measurement)} WHERE time >= {_ns(start)} '
                         f'AND time < {_ns(end)}{self._filters(where)} GROUP BY "series"', epoch="ns")
        frame = self._frame(res, ["series"])
        if not len(frame):
            return pd.DataFrame(columns=["series", "ts", "value", "quality"])
        frame["ts"] = pd.to_datetime(frame.pop("time"), unit="ns", utc=True)
        return frame[["series", "ts", "value", "quality"]]

    def _delete(self, measurement: str, series: str, start: pd.Timestamp, end: pd.Timestamp, actor: str,
                reason: str, *, action: str = "delete", audit_rows: int | None = None) -> int:
        cond = f'"series" = {_quote(series)} AND time >= {_ns(start)} AND time < {_ns(end)}'
        counted = self._frame(self.query(f'SELECT count("value") AS "n" FROM {_ident(measurement)} WHERE {cond}'), [])
        n = int(counted["n"].iloc[0]) if len(counted) else 0
        self.query(f"DELETE FROM {_ident(measurement)} WHERE {cond}")
        self._mark_dirty(measurement, start, end - pd.Timedelta("1ns"), [series])
        self.write_lines([self._record("_audit", {"action": action, "measurement": measurement},
                                       {"actor": actor, "series": series, "start": start.isoformat(),
                                        "end": end.isoformat(), "rows": n if audit_rows is None else audit_rows,
                                        "reason": reason})], precision="ns")
        return n

    def quarantined(self, measurement: str | None = None) -> pd.DataFrame:
        cond = f' WHERE "measurement" = {_quote(measurement)}' if measurement else ""
        frame = self._frame(self.query(f'SELECT * FROM "_quarantine"{cond}', epoch="ns"), [])
        cols = ["received", "measurement", "source", "row", "line", "series", "ts", "value", "code", "reason"]
        if not len(frame):
            return pd.DataFrame(columns=cols)
        frame["received"] = pd.to_datetime(frame.pop("time"), unit="ns", utc=True)
        frame["line"] = frame.get("line", pd.Series(dtype=float)).astype("Int64")
        return frame.reindex(columns=cols).sort_values(["received", "row"]).reset_index(drop=True)

    def audit_log(self) -> pd.DataFrame:
        frame = self._frame(self.query('SELECT * FROM "_audit"', epoch="ns"), [])
        cols = ["at", "actor", "action", "measurement", "series", "start", "end", "rows", "reason"]
        if not len(frame):
            return pd.DataFrame(columns=cols)
        frame["at"] = pd.to_datetime(frame.pop("time"), unit="ns", utc=True)
        for col in ("start", "end"):
            frame[col] = pd.to_datetime(frame[col], utc=True)
        return frame.reindex(columns=cols).sort_values("at").reset_index(drop=True)


