"""The InfluxDB backend, over the 1.x-compatible HTTP API (`/write` line protocol, `/query` InfluxQL).

InfluxDB 1.x, 2.x (compatibility endpoints, token auth) and 3.x all serve this API, so it is the one path
we rely on and test (against InfluxDB 1.6 from Debian).  Writes are serialised column-wise
(`lineprotocol.py`), posted in batches with gzip, several in flight, with retries and back-off on
connection errors and 5xx/429; a refusal (4xx) is raised at once with the server's reason.  Roll-ups live in
the measurements `<name>_1d` (park-local days) and, for dense measurements only (`InfluxConfig.hourly_rollups`),
`<name>_1h`; each write computes them on the client from its batch (`rollup.py`) and posts them beside the
readings, rebuilding from raw readings (plain `SELECT`) only buckets it rewrote.  Hour windows of a measurement
without hourly roll-ups (15-minute energy) are read from the raw readings with `GROUP BY time(1h)`.
"""

from __future__ import annotations

import gzip
import itertools
import logging
import re
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import pandas as pd
import requests
from influxdb_client import Point

from park.model import SeriesCatalog
from park.store import rollup
from park.store.base import Correction, TimeSeriesStore
from park.store.errors import StoreRejected, StoreUnavailable
from park.store.lineprotocol import best_precision, encode_bodies, encode_rollups, escape_tag, info_key
from park.store.schema import Rejection, Window

log = logging.getLogger(__name__)
RETRY_STATUS = {429, 500, 502, 503, 504}
# Above this many series a roll-up refresh covers every series of the range rather than a regex of names.
_MAX_SERIES_IN_REGEX = 200
_PENDING_TIMES = 2_000  # times per `_correction_pending` record (20-digit numbers, under 64 KB a string field)


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
    create_database: bool = True  # CREATE DATABASE at start (1.x); a server that refuses it (2.x/3.x) is noted
    rollup_grace_s: float = 300.0  # refresh_rollups() folds ranges marked longer ago: their writer has died
    rollup_horizon_days: int = 31  # unfinished marks older than this are not looked for
    # Measurements that also keep hourly roll-ups (`<name>_1h`).  Sampled levels (power, current) may come every
    # few seconds, where an hourly point replaces hundreds of readings on read; 15-minute energy intervals are
    # only 4 to an hour, and an hourly point (6 fields) costs influxd about as much to write as 2-3 readings, so
    # hour windows of energy are read from the raw readings with GROUP BY time(1h) (docs/benchmarks.md).
    hourly_rollups: tuple[str, ...] = ("power", "current")


def _ns(t: pd.Timestamp) -> int:
    return int(t.tz_convert("UTC").value)


def _quote(v: str) -> str:
    return "'" + str(v).replace("\\", "\\\\").replace("'", "\\'") + "'"


def _anti(left: pd.DataFrame, right: pd.DataFrame) -> pd.DataFrame:
    """Rows of `left` whose (series, start) is not in `right`."""
    if not len(left):
        return left
    merged = left[["series", "start"]].merge(right[["series", "start"]], how="left", indicator=True)
    return merged[merged["_merge"] == "left_only"][["series", "start"]]


def _ident(name: str) -> str:
    return '"' + name.replace('"', '\\"') + '"'


class _SeriesKeys(dict):
    """Series id -> line-protocol prefix (`measurement,tags`) of one measurement, each built once when needed."""

    def __init__(self, measurement: str, catalog: SeriesCatalog) -> None:
        super().__init__()
        self.measurement, self.catalog = measurement, catalog

    def __missing__(self, series: str) -> str:
        key = self[series] = info_key(self.measurement, self.catalog[series])
        return key


@dataclass
class _Known:
    """The stored roll-up buckets of one roll-up measurement in [lo, hi) as this store last read or wrote them
    (`rollup.COLUMNS`, typed as `_stored_frame` reads them back): every series (`series` None) or those listed.
    Valid while no other writer has marked the measurement since `checked` (this store's clock, ns)."""

    rows: pd.DataFrame
    lo: int
    hi: int
    series: frozenset[str] | None
    checked: int


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
        self._rollup_lock = threading.RLock()  # one roll-up update at a time in this process
        self._writer = uuid.uuid4().hex  # names this store's dirty marks: any other mark is another writer's
        self._known: dict[str, _Known] = {}  # roll-up measurement -> its stored buckets as last read or written
        self._own_marks: dict[str, set[int]] = {}  # measurement -> stamps of this store's recent dirty marks
        self._settled: dict[str, set[tuple[int, str]]] = {}  # other writers' marks already read back after
        self._correcting: dict[str, list[np.ndarray]] | None = None  # times written per corrected series
        self._check_whole_hour_offsets()
        if config.create_database:
            try:
                self.query(f"CREATE DATABASE {_ident(config.database)}", db=False)
            except StoreRejected as exc:
                if exc.status == 401:
                    raise
                # InfluxDB 2.x/3.x do not serve CREATE DATABASE on the 1.x API (2.x: create the bucket and its
                # DBRP mapping; 3.x creates the database on the first write); a 1.x user may lack the right.
                log.warning("could not create database %r (%s); assuming it exists", config.database, exc)

    def _check_whole_hour_offsets(self) -> None:
        # Daily roll-ups are built from hourly ones: every hour must fall in one local day.
        probes = pd.date_range("2000-01-01", "2040-01-01", freq="30D", tz="UTC").tz_convert(self.tz)
        if any(p.utcoffset().total_seconds() % 3600 for p in probes):
            raise ValueError(f"time zone {self.timezone} has a UTC offset that is not whole hours; "
                             "the daily roll-ups are built from hourly ones and need whole-hour offsets")

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
        if self._correcting is not None:  # inside a correction: remember what it wrote of the corrected series
            part = frame[frame["series"].isin(list(self._correcting))]
            ts = part["ts"].astype("datetime64[ns, UTC]").astype("int64").to_numpy()
            for s, idx in part.groupby("series").indices.items():
                self._correcting[s].append(ts[idx])
        precision = best_precision(frame["ts"])
        keys = self._rollup_keys(measurement)
        series = list(pd.unique(frame["series"]))
        lo, hi = frame["ts"].min(), frame["ts"].max()
        size = self.config.batch_size
        hourly = self._hourly(measurement)
        with self._rollup_lock:
            h0, h1 = _ns(lo.floor("h")), _ns(hi.floor("h")) + rollup.HOUR_NS
            d0, d1 = _ns(self._day_floor(lo)), _ns(self._day_floor(self._day_floor(hi) + pd.Timedelta("25h")))
            wanted = [(measurement + "_1d", d0, d1)] + ([(measurement + "_1h", h0, h1)] if hourly else [])
            try:
                with ThreadPoolExecutor(1) as side, ThreadPoolExecutor(self.config.max_in_flight) as pool:
                    # The dirty mark is posted while the first body is encoded, then the stored buckets are read
                    # (or known, see `_stored_buckets`) while the readings are posted; the roll-ups go last.
                    marked = side.submit(self._mark_dirty, measurement, lo, hi, series)
                    stored = side.submit(self._stored_buckets, measurement, wanted, series)
                    futures = []
                    # the batch's columns prepared once; each body encoded while the ones before it are posted
                    for body in encode_bodies(frame, keys, precision, size):
                        if not futures:
                            marked.result()  # no reading goes in before the mark that covers it is in
                        futures.append(pool.submit(self._post_body, body, precision))
                    mark = marked.result()
                    found = stored.result()
                    plan = rollup.plan(frame, found.get(measurement + "_1h"), found[measurement + "_1d"],
                                       self.timezone)
                    futures += self._submit_rollups(pool, measurement, plan.hours, plan.days)
                    for f in futures:
                        f.result()
                self._learn(measurement + "_1d", plan.days)
                if hourly:
                    self._learn(measurement + "_1h", plan.hours)
                if len(plan.recompute_hours) or len(plan.recompute_days):
                    self._rebuild(measurement, plan.recompute_hours, plan.recompute_days)
            except BaseException:
                self._forget(measurement)  # what reached the server is unknown now: read it back next time
                raise
            self._mark_done(measurement, mark)
        return len(frame)

    # ---- what this store knows of the stored roll-ups ------------------------------------------------------
    # A write folds its batch into the stored buckets of the days (and hours) it touches, which it used to read
    # back from influxd each time (for 2 000 series about 0.06-0.18 CPU-s of influxd per write).  A store now
    # keeps the buckets it last read or wrote, and uses them instead while no other writer has touched the
    # measurement's roll-ups since: every roll-up writer (`write`, `delete`, corrections, `refresh_rollups`) marks
    # its range in `_rollup_dirty` before it writes roll-ups, each mark naming its writer, so one small query of
    # the marks newer than this store's last look (minus `rollup_grace_s`, for clock skew and a write's own
    # duration, as `refresh_rollups` already assumes) tells whether another writer came by.  If one did, or the
    # days asked for are not known, the buckets are read back as before.  Buckets this store rebuilds from raw
    # readings are forgotten (read back next time), as is everything after a failed write.
    def _stored_buckets(self, measurement: str, wanted: list[tuple[str, int, int]],
                        series: list[str]) -> dict[str, pd.DataFrame]:
        """The stored buckets of each (roll-up measurement, lo, hi) asked for (`rollup.COLUMNS`, last_ns NaN
        where not stored): from what this store knows when that is provably current, else from the server."""
        started = time.time_ns()
        known = [self._known.get(name) for name, _, _ in wanted]
        since = min((k.checked for k in known if k is not None), default=started)
        came, finished = self._other_writers(measurement, since)
        if came:
            self._forget(measurement)
            known = [None] * len(wanted)
        out, asks = {}, []
        for (name, lo, hi), k in zip(wanted, known, strict=True):
            if k is not None and k.lo <= lo and (k.series is None or k.series.issuperset(series)):
                if hi > k.hi:  # later days than known (appending data): read just those, and a day beyond
                    asks.append((name, k.hi, hi + self._ahead(name), k.series, k))
                k.checked = started
            else:
                scope = None if len(series) > _MAX_SERIES_IN_REGEX else frozenset(series)
                asks.append((name, lo, hi + self._ahead(name), scope, None))
        if asks:
            started = time.time_ns()
            res = self.query(";".join(self._stored_query(name, a, b, None if scope is None else sorted(scope))
                                      for name, a, b, scope, _ in asks), epoch="ns")
            for (name, a, b, scope, k), r in zip(asks, res, strict=True):
                rows = self._stored_frame([r])
                if k is None:
                    self._known[name] = _Known(rows, a, b, scope, started)
                elif len(rows):
                    k.rows, k.hi = pd.concat([k.rows, rows], ignore_index=True), b
                else:
                    k.hi = b
        # Other writers' marks seen done before this read-back began: their roll-ups are in what it read.
        self._settled.setdefault(measurement, set()).update(finished)
        for name, lo, hi in wanted:
            k = self._known[name]
            out[name] = k.rows[(k.rows["start"] >= lo) & (k.rows["start"] < hi)].reset_index(drop=True)
        return out

    def _ahead(self, name: str) -> int:
        """How far past a write's last bucket to read (and so know) stored buckets: a day of days, an hour of
        hours; reading a day nobody wrote yet costs influxd little, and the next write usually appends there."""
        return rollup.HOUR_NS if name.endswith("_1h") else 24 * rollup.HOUR_NS

    def _other_writers(self, measurement: str, since_ns: int) -> tuple[bool, set[tuple[int, str]]]:
        """Whether a dirty mark of `measurement` that this store did not make, and has not already read the roll-ups
        after, is stamped after `since_ns` minus `rollup_grace_s` (another writer, process or store, may have
        written roll-ups since); and those of them marked done (their roll-ups were written before the mark said
        so: a read-back that begins now includes them)."""
        floor = since_ns - int(self.config.rollup_grace_s * 1e9)
        res = self.query(f'SELECT "writer", "done" FROM "_rollup_dirty" WHERE "measurement" = {_quote(measurement)} '
                         f"AND time > {floor}", epoch="ns")
        own = self._own_marks.setdefault(measurement, set())
        own.intersection_update([t for t in own if t > floor])  # older ones are never asked for again
        settled = self._settled.setdefault(measurement, set())
        settled.intersection_update([m for m in settled if m[0] > floor])
        came, finished = False, set()
        for r in res:
            for s in r.get("series", []):
                cols = s["columns"]  # a mark of an older version has no writer: another writer's
                for v in s["values"]:
                    row = dict(zip(cols, v, strict=True))
                    mark = (row["time"], str(row.get("writer")))
                    if (row.get("writer") == self._writer and mark[0] in own) or mark in settled:
                        continue
                    came = True
                    if row.get("done") is True:
                        finished.add(mark)
        return came, finished

    def _learn(self, name: str, written: pd.DataFrame) -> None:
        """Fold the buckets a write posted into what this store knows of `name`, typed as read back."""
        k = self._known.get(name)
        if k is None or not len(written):
            return
        rows = self._stored_frame_of(written.assign(first_ns=np.nan))
        codes, _ = pd.factorize(np.concatenate([np.asarray(k.rows["series"], dtype=object),
                                                np.asarray(rows["series"], dtype=object)]))
        starts, _ = pd.factorize(np.concatenate([k.rows["start"].to_numpy(), rows["start"].to_numpy()]))
        key = codes.astype("int64") * (int(starts.max()) + 1) + starts
        keep = ~np.isin(key[:len(k.rows)], key[len(k.rows):])  # the written buckets replace the known ones
        low = int(rows["start"].min())  # days before the write's first are not asked for again (late data reads)
        k.rows = pd.concat([k.rows[keep], rows], ignore_index=True)
        if low > k.lo:
            k.rows, k.lo = k.rows[k.rows["start"] >= low].reset_index(drop=True), low

    def _forget(self, measurement: str) -> None:
        """Drop what this store knows of the measurement's roll-ups: the next write reads them back."""
        for name in (measurement + "_1d", measurement + "_1h"):
            self._known.pop(name, None)

    @contextmanager
    def _correction(self, measurement: str, corrections: list[Correction], actor: str) -> Iterator[None]:
        """Write first, delete after: the block's writes overwrite stored readings of the same series and time
        in place; only when every write succeeded are the readings of each range that the block did not write
        deleted (one DELETE per point: InfluxQL deletes by tag and time range only), the roll-ups rebuilt and
        the audit record written.  No transaction exists on this API, so a failure leaves each time of the range
        with its old or its new value, never none; a failure in the deletions leaves stale readings the file
        no longer holds, which re-running the correction removes.  Needs DELETE (InfluxDB 1.x) only when the
        file leaves out a time the store holds."""
        if self._correcting is not None:
            raise RuntimeError("corrections do not nest")
        written: dict[str, list[np.ndarray]] = {c.series: [] for c in corrections}
        self._correcting = written
        try:
            yield
        finally:
            self._correcting = None
        for c in corrections:
            self._finish_correction(measurement, c, written[c.series], actor)

    def _finish_correction(self, measurement: str, c: Correction, written: list[np.ndarray], actor: str) -> None:
        """After the block's writes: record the readings of the range it did not write in `_correction_pending`
        (so that `refresh_rollups()` finishes their deletion if this process dies or the server goes away
        now), write the audit record, then delete them and rebuild the range's roll-ups."""
        lo, hi = _ns(c.start), _ns(c.end)
        stored = self._frame(self.query(f'SELECT "value" FROM {_ident(measurement)} WHERE "series" = '
                                        f'{_quote(c.series)} AND time >= {lo} AND time < {hi}', epoch="ns"), [])
        kept = np.concatenate(written) if written else np.array([], dtype="int64")
        times = stored["time"].to_numpy(dtype="int64") if len(stored) else np.array([], dtype="int64")
        stale = times[~np.isin(times, kept)].tolist()
        pending = []
        for i in range(0, len(stale), _PENDING_TIMES):  # a string field holds at most 64 KB
            chunk = stale[i:i + _PENDING_TIMES]
            line, stamp = self._stamped("_correction_pending", {"measurement": measurement},
                                        {"series": c.series, "start": lo, "end": hi, "done": False,
                                         "times": " ".join(map(str, chunk))})
            self.write_lines([line], precision="ns")
            pending.append((chunk, stamp))
        self.write_lines([self._record("_audit", {"action": "correct", "measurement": measurement},
                                       {"actor": actor, "series": c.series, "start": c.start.isoformat(),
                                        "end": c.end.isoformat(), "rows": len(kept) if c.rows is None else c.rows,
                                        "reason": c.reason})], precision="ns")
        for chunk, stamp in pending:
            self._complete_correction(measurement, c.series, lo, hi, chunk, stamp)

    def _complete_correction(self, measurement: str, series: str, lo: int, hi: int, times: list[int],
                             stamp: int) -> None:
        """Delete the listed readings (one DELETE per point: InfluxQL deletes by tag and time range only),
        rebuild the range's roll-ups and mark the pending record done."""
        with self._rollup_lock:
            start, last = pd.Timestamp(lo, unit="ns", tz="UTC"), pd.Timestamp(hi - 1, unit="ns", tz="UTC")
            mark = self._mark_dirty(measurement, start, last, [series])  # other stores: read the roll-ups back
            stmts = [f'DELETE FROM {_ident(measurement)} WHERE "series" = {_quote(series)} AND time >= {t} '
                     f"AND time < {t + 1}" for t in times]
            for i in range(0, len(stmts), 100):
                self.query(";".join(stmts[i:i + 100]))
            self._rebuild_range(measurement, start, last, [series])
            self._mark_done(measurement, mark)
            self.write_lines([f"_correction_pending,measurement={escape_tag(measurement)} done=true {stamp}"],
                             precision="ns")

    def _pending_corrections(self, grace_s: float) -> pd.DataFrame:
        horizon = f"{int(self.config.rollup_horizon_days)}d"
        frame = self._frame(self.query(f'SELECT * FROM "_correction_pending" WHERE time > now() - {horizon}',
                                       epoch="ns"), [])
        if not len(frame) or "times" not in frame:
            return frame
        done = frame["done"].fillna(False).astype(bool)
        due = frame["time"].astype("int64") <= time.time_ns() - int(grace_s * 1e9)
        return frame[~done & due & frame["times"].notna()].reset_index(drop=True)

    # ---- roll-ups ---------------------------------------------------------------------------
    # A write folds its batch into the daily (and, where kept, hourly) roll-ups itself (`park/store/rollup.py`):
    # buckets the batch fills or appends to are computed on the client; buckets it rewrites are rebuilt from raw
    # readings after the write.  Roll-up points are only ever overwritten in place (same series and time), so a reader
    # sees the old or the new value of a bucket, never a half-rebuilt range; readers never rebuild anything.
    # Before writing, the writer records its range in `_rollup_dirty` (in the server: a crash loses no mark)
    # and marks it done afterwards; `refresh_rollups()` folds in the ranges of writers that died in between.
    def _mark_dirty(self, measurement: str, lo: pd.Timestamp, hi: pd.Timestamp, series: list[str] | None) -> int:
        """Record that this store is about to write roll-ups of the range (`series` None: all), before it does;
        the mark names this store as its writer, so that other stores can tell they must read back."""
        names = "*" if series is None or len(series) > _MAX_SERIES_IN_REGEX else "\n".join(series)
        line, stamp = self._stamped("_rollup_dirty", {"measurement": measurement},
                                    {"lo": _ns(lo), "hi": _ns(hi), "series": names, "done": False,
                                     "writer": self._writer})
        self._own_marks.setdefault(measurement, set()).add(stamp)
        self.write_lines([line], precision="ns")
        return stamp

    def _mark_done(self, measurement: str, stamp: int) -> None:
        """Overwrite the mark's `done` field in place (no DELETE: InfluxDB 2.x/3.x do not serve it)."""
        self.write_lines([f"_rollup_dirty,measurement={escape_tag(measurement)} done=true {stamp}"], precision="ns")

    def pending_rollups(self, grace_s: float = 0.0) -> pd.DataFrame:
        """Dirty ranges not yet folded into the roll-ups, marked more than `grace_s` ago within the horizon:
        time (ns), measurement, lo, hi, series."""
        horizon = f"{int(self.config.rollup_horizon_days)}d"
        frame = self._frame(self.query(f'SELECT * FROM "_rollup_dirty" WHERE time > now() - {horizon}',
                                       epoch="ns"), [])
        if not len(frame):
            return pd.DataFrame(columns=["time", "measurement", "lo", "hi", "series"])
        done = frame["done"].fillna(False).astype(bool) if "done" in frame else pd.Series(False, index=frame.index)
        due = frame["time"].astype("int64") <= time.time_ns() - int(grace_s * 1e9)
        return frame[~done & due & frame["lo"].notna()].reset_index(drop=True)

    def refresh_rollups(self, grace_s: float | None = None) -> int:
        """Rebuild the roll-ups of ranges whose writer did not finish (marked more than `grace_s` ago, by default
        `InfluxConfig.rollup_grace_s`: a live writer finishes its own); return how many ranges were done."""
        grace = self.config.rollup_grace_s if grace_s is None else grace_s
        with self._rollup_lock:
            corrections = self._pending_corrections(grace)
            for row in corrections.itertuples(index=False):  # a correction that wrote but did not finish deleting
                times = [int(t) for t in str(row.times).split()]
                self._complete_correction(row.measurement, row.series, int(row.start), int(row.end), times,
                                          int(row.time))
            pending = self.pending_rollups(grace)
            for row in pending.itertuples(index=False):
                series = None if row.series == "*" else str(row.series).split("\n")
                lo = pd.Timestamp(int(row.lo), unit="ns", tz="UTC")
                hi = pd.Timestamp(int(row.hi), unit="ns", tz="UTC")
                own = self._mark_dirty(row.measurement, lo, hi, series)  # a fresh mark: other stores read back
                self._rebuild_range(row.measurement, lo, hi, series)
                self._mark_done(row.measurement, own)
                self._mark_done(row.measurement, int(row.time))
        return len(pending)

    def _series_clause(self, series: list[str] | None) -> str:
        if series is None or len(series) > _MAX_SERIES_IN_REGEX:
            return ""
        return " AND \"series\" =~ /^(" + "|".join(re.escape(s).replace("/", "\\/") for s in series) + ")$/"

    def _hourly(self, measurement: str) -> bool:
        """Whether the measurement keeps hourly roll-ups (`InfluxConfig.hourly_rollups`)."""
        return measurement in self.config.hourly_rollups

    def _rollup_keys(self, measurement: str) -> dict[str, str]:
        """The line-protocol prefix of each series in `measurement`, built when first asked for (a series added
        to the catalog later gets its own then)."""
        keys = self._keys.get(measurement)
        if keys is None:
            keys = self._keys[measurement] = _SeriesKeys(measurement, self.catalog)
        return keys

    def _day_floor(self, t: pd.Timestamp) -> pd.Timestamp:
        return t.tz_convert(self.tz).floor("D").tz_convert("UTC")

    def _stored(self, name: str, lo_ns: int, hi_ns: int, series: list[str] | None) -> pd.DataFrame:
        """Stored roll-up points of `name` in [lo, hi): rollup.COLUMNS (last_ns NaN where not stored)."""
        return self._stored_frame(self.query(self._stored_query(name, lo_ns, hi_ns, series), epoch="ns"))

    def _stored_query(self, name: str, lo_ns: int, hi_ns: int, series: list[str] | None) -> str:
        # The tag as a column, not GROUP BY "series": one result instead of one per series, about 4x cheaper
        # for influxd 1.6 with 2 000 series (0.10 s against 0.45-0.58 s in bench/ingest), and cheaper to parse.
        return (f'SELECT "sum", "count", "measured", "min", "max", "last_ns", "series" FROM {_ident(name)} '
                f'WHERE time >= {lo_ns} AND time < {hi_ns}{self._series_clause(series)}')

    def _stored_frame(self, results: list[dict]) -> pd.DataFrame:
        frame = self._frame(results, [])
        if not len(frame):
            return rollup.bucket_stats(pd.DataFrame(), "hour", self.timezone)
        return self._stored_frame_of(frame)

    @staticmethod
    def _stored_frame_of(frame: pd.DataFrame) -> pd.DataFrame:
        # Without a series clause (more than _MAX_SERIES_IN_REGEX series) other series' buckets come too: kept,
        # since every caller matches buckets on (series, start) (filtering 2 000 strings cost 50 ms a write).
        frame = frame.rename(columns={"time": "start"})
        frame["first_ns"] = np.nan
        frame = frame.reindex(columns=list(rollup.COLUMNS))
        numeric = {c: "float64" for c in rollup.COLUMNS if c not in ("series", "start")}
        return frame.astype({"start": "int64", **numeric})

    def _post_rollups(self, measurement: str, hours: pd.DataFrame, days: pd.DataFrame) -> None:
        with ThreadPoolExecutor(self.config.max_in_flight) as pool:
            for f in self._submit_rollups(pool, measurement, hours, days):
                f.result()

    def _submit_rollups(self, pool: ThreadPoolExecutor, measurement: str, hours: pd.DataFrame,
                        days: pd.DataFrame) -> list:
        size = self.config.batch_size
        futures = []
        for name, frame in ((measurement + "_1h", hours), (measurement + "_1d", days)):
            if not len(frame):
                continue
            keys = self._rollup_keys(name)
            for i in range(0, len(frame), size):
                futures.append(pool.submit(self._post_body, encode_rollups(frame.iloc[i:i + size], keys, True), "s"))
        return futures

    def _raw(self, measurement: str, lo_ns: int, hi_ns: int, series: list[str] | None) -> pd.DataFrame:
        res = self.query(f'SELECT "value", "quality" FROM {_ident(measurement)} WHERE time >= {lo_ns} '
                         f'AND time < {hi_ns}{self._series_clause(series)} GROUP BY "series"', epoch="ns")
        frame = self._frame(res, ["series"])
        if not len(frame):
            return pd.DataFrame({"series": [], "ts": pd.Series([], dtype="int64"), "value": [], "quality": []})
        return frame.rename(columns={"time": "ts"})

    def _delete_points(self, name: str, keys: pd.DataFrame) -> None:
        """Remove roll-up points whose bucket lost all its readings (only after a raw DELETE, so only where
        DELETE is served: InfluxDB 1.x)."""
        stmts = [f"DELETE FROM {_ident(name)} WHERE \"series\" = {_quote(s)} AND time >= {int(t)} "
                 f"AND time < {int(t) + 1}" for s, t in zip(keys["series"], keys["start"], strict=True)]
        for i in range(0, len(stmts), 100):
            self.query(";".join(stmts[i:i + 100]))

    def _rebuild(self, measurement: str, hour_keys: pd.DataFrame, day_keys: pd.DataFrame) -> None:
        """Rebuild the given hour buckets (where the measurement keeps them) and days, and the days of those
        hours, from raw readings, a park-local day at a time (a rewritten year is not read back at once)."""
        key = ["series", "start"]
        hour_day = rollup.day_starts(hour_keys["start"].to_numpy(dtype="int64"), self.timezone)
        day_keys = pd.concat([day_keys[key], pd.DataFrame({"series": hour_keys["series"].to_numpy(),
                                                           "start": hour_day})]).drop_duplicates()
        day_keys = day_keys.astype({"start": "int64"})
        for day in sorted(set(day_keys["start"].tolist())):
            self._rebuild_day(measurement, day, hour_keys[hour_day == day], day_keys[day_keys["start"] == day])

    def _rebuild_day(self, measurement: str, day: int, hour_keys: pd.DataFrame, day_keys: pd.DataFrame) -> None:
        """`_rebuild` of one park-local day (UTC ns of its midnight) from its raw readings: overwrite in place,
        and remove buckets left without any reading."""
        self._forget(measurement)  # roll-ups rewritten from raw readings: read them back next time
        key = ["series", "start"]
        series = sorted(set(day_keys["series"]))
        end = int(self._day_floor(pd.Timestamp(day, tz="UTC") + pd.Timedelta("25h")).value)
        raw = self._raw(measurement, day, end, series)
        if self._hourly(measurement) and len(hour_keys):
            hours = rollup.bucket_stats(raw, "hour", self.timezone).merge(hour_keys[key], on=key)
            lo, hi = int(hour_keys["start"].min()), int(hour_keys["start"].max()) + rollup.HOUR_NS
            stale = _anti(self._stored(measurement + "_1h", lo, hi, series).merge(hour_keys[key], on=key), hours)
            self._post_rollups(measurement, hours, hours.iloc[:0])
            if len(stale):
                self._delete_points(measurement + "_1h", stale)
        days = rollup.bucket_stats(raw, "day", self.timezone).merge(day_keys[key], on=key)
        stale = _anti(self._stored(measurement + "_1d", day, end, series).merge(day_keys[key], on=key), days)
        self._post_rollups(measurement, days.iloc[:0], days)
        if len(stale):
            self._delete_points(measurement + "_1d", stale)

    def _rebuild_range(self, measurement: str, lo: pd.Timestamp, hi: pd.Timestamp, series: list[str] | None) -> None:
        """Rebuild every hour (where kept) and day of [lo, hi] for the series (None: all of the measurement's
        kind), a day at a time so that memory stays bounded."""
        if series is None:
            kind = self._spec(measurement).kind
            series = [s.id for s in self.catalog.series if s.kind == kind]
        first, last = lo.floor("h"), hi.floor("h")
        day = self._day_floor(first)
        while day <= last:
            nxt = self._day_floor(day + pd.Timedelta("25h"))
            days = pd.DataFrame({"series": series, "start": _ns(day)})
            hours = pd.date_range(max(first, day), min(last, nxt - pd.Timedelta("1h")), freq="h")
            hour_keys = pd.DataFrame([(s, int(h.value)) for s in series for h in hours], columns=["series", "start"])
            self._rebuild_day(measurement, _ns(day), hour_keys, days)
            day = nxt

    def _record(self, measurement: str, tags: dict, fields: dict) -> str:
        """One bookkeeping point (quarantine, audit), timestamped now with a unique nanosecond."""
        return self._stamped(measurement, tags, fields)[0]

    def _stamped(self, measurement: str, tags: dict, fields: dict) -> tuple[str, int]:
        p = Point(measurement)
        for k, v in tags.items():
            if v not in (None, ""):
                p = p.tag(k, str(v))
        for k, v in fields.items():
            if v is not None:
                p = p.field(k, v)
        stamp = time.time_ns() // 1000 * 1000 + next(self._seq) % 1000
        return p.time(stamp).to_line_protocol(), stamp

    def _quarantine(self, measurement: str, rejected: list[Rejection], source: str) -> None:
        lines = [self._record("_quarantine", {"measurement": measurement, "source": source, "code": r.code},
                              {"row": r.row, "line": r.line, "series": r.series, "ts": r.ts, "value": r.value,
                               "reason": r.reason}) for r in rejected]
        self.write_lines(lines, precision="ns")

    # ---- reading ---------------------------------------------------------------------------
    def _frame(self, results: list[dict], by: list[str]) -> pd.DataFrame:
        """The rows of query results as one frame, with the `by` tags as columns (an empty tag is None).
        Built column-wise: a roll-up rebuild may read back a hundred thousand rows."""
        parts: list[pd.DataFrame] = []
        for r in results:
            rows: list[list] = []
            tags: dict[str, list] = {b: [] for b in by}
            columns = None
            for s in r.get("series", []):
                columns = columns or s["columns"]
                if s["columns"] != columns:  # not seen within one statement; kept apart if ever
                    parts.append(self._frame([{"series": [s]}], by))
                    continue
                rows += s["values"]
                stags = s.get("tags") or {}
                for b in by:
                    v = stags.get(b)
                    tags[b] += [v if v != "" else None] * len(s["values"])
            if columns is not None and rows:
                part = pd.DataFrame(rows, columns=columns)
                for b in by:
                    part[b] = pd.Series(tags[b], dtype=object)
                parts.append(part)
        if not parts:
            return pd.DataFrame()
        return parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)

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
        hourly = window is Window.HOUR or not day_aligned
        if window is Window.QUARTER_HOUR or not hour_aligned or (hourly and not self._hourly(measurement)):
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
        else:  # roll-ups are kept by the writers; a reader never rebuilds them
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
        """Needs InfluxQL DELETE, which InfluxDB 1.x serves and 2.x/3.x refuse on the compatibility API."""
        cond = f'"series" = {_quote(series)} AND time >= {_ns(start)} AND time < {_ns(end)}'
        counted = self._frame(self.query(f'SELECT count("value") AS "n" FROM {_ident(measurement)} WHERE {cond}'), [])
        n = int(counted["n"].iloc[0]) if len(counted) else 0
        with self._rollup_lock:
            last = end - pd.Timedelta("1ns")
            mark = self._mark_dirty(measurement, start, last, [series])
            self.query(f"DELETE FROM {_ident(measurement)} WHERE {cond}")
            self._rebuild_range(measurement, start, last, [series])
            self._mark_done(measurement, mark)
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


