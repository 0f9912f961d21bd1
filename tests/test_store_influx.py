"""InfluxDB backend behaviour beyond the shared contract: faults, refusals, retries, escaping, auth."""

from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pandas as pd
import pytest
import requests
from influxdb_client import Point

from park.model import SeriesCatalog, SeriesInfo
from park.store import StoreRejected, StoreUnavailable
from park.store.influx import InfluxConfig, InfluxStore
from park.store.lineprotocol import (
    encode_bodies,
    encode_body,
    encode_lines,
    escape_field_string,
    join_lines,
    serialise,
    series_key,
    series_keys,
)
from park.store.validate import validate
from tests.support.influx import InfluxServer
from tests.support.servers import free_port

TZ = "Asia/Shanghai"
CATALOG = SeriesCatalog([SeriesInfo("M1", "meter", "E1", "W 1,a=b", "electricity", "kWh"),
                         SeriesInfo("M2", "meter", "E1", None, "electricity", "kWh")])


def batch(n: int = 4, series: str = "M1") -> pd.DataFrame:
    return pd.DataFrame({"ts": pd.date_range(pd.Timestamp("2024-03-01", tz=TZ), periods=n, freq="15min"),
                         "series": series, "value": 1.25})


def test_a_stopped_server_gives_a_clear_error_within_the_timeout():
    port = free_port()  # nothing listens here
    started = time.monotonic()
    with pytest.raises(StoreUnavailable, match=rf"127.0.0.1:{port}.*3 attempt"):
        InfluxStore(InfluxConfig(url=f"http://127.0.0.1:{port}", timeout_s=1, retries=2, backoff_s=0.1), CATALOG)
    assert time.monotonic() - started < 5


def test_a_server_that_never_answers_times_out_instead_of_hanging():
    with socket.socket() as silent:  # accepts connections, never replies
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        config = InfluxConfig(url=url, timeout_s=0.5, query_timeout_s=0.5, retries=1, backoff_s=0.1,
                              create_database=False)
        store = InfluxStore(config, CATALOG)
        started = time.monotonic()
        with pytest.raises(StoreUnavailable, match="did not answer /write"):
            store.write("energy", batch())
        assert time.monotonic() - started < 4


class _FlakyHandler(BaseHTTPRequestHandler):
    """A stand-in for an overloaded InfluxDB (named as such): 503 for the first N writes, then forwards."""

    failures_left = 2
    upstream = ""
    seen = 0

    def do_POST(self):  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        type(self).seen += 1
        if self.path.startswith("/write") and type(self).failures_left > 0:
            type(self).failures_left -= 1
            self.send_response(503)
            self.end_headers()
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() in ("content-type", "content-encoding")}
        resp = requests.post(self.upstream + self.path, data=body, headers=headers, timeout=10)
        self.send_response(resp.status_code)
        self.send_header("Content-Type", resp.headers.get("Content-Type", "application/json"))
        self.end_headers()
        self.wfile.write(resp.content)

    def log_message(self, *args):
        pass


def test_retries_with_backoff_on_503_then_succeeds(influx_server):
    _FlakyHandler.upstream = influx_server.url
    proxy = ThreadingHTTPServer(("127.0.0.1", 0), _FlakyHandler)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        store = InfluxStore(InfluxConfig(url=f"http://127.0.0.1:{proxy.server_port}", database="flaky",
                                         retries=3, backoff_s=0.05), CATALOG, TZ)
        assert store.write("energy", batch()).written == 4
        assert _FlakyHandler.failures_left == 0
        assert len(store.points("energy", pd.Timestamp("2024-03-01", tz=TZ), pd.Timestamp("2024-03-02", tz=TZ))) == 4
    finally:
        proxy.shutdown()


def test_field_type_conflict_is_refused_with_the_servers_reason(influx_server):
    store = InfluxStore(InfluxConfig(url=influx_server.url, database="conflict"), CATALOG, TZ)
    store.write_lines(['energy,series=M1 value="oops" 1709222400'])  # someone wrote a string field first
    with pytest.raises(StoreRejected, match="field type conflict") as err:
        store.write("energy", batch())
    assert err.value.status == 400


def test_wrong_password_is_refused_with_a_hint():
    server = InfluxServer(auth=True)
    try:
        server.start()
        requests.post(server.url + "/query", data={"q": "CREATE USER admin WITH PASSWORD 's3cret' WITH ALL PRIVILEGES"},
                      timeout=5).raise_for_status()
        ok = InfluxStore(InfluxConfig(url=server.url, username="admin", password="s3cret"), CATALOG, TZ)
        assert ok.write("energy", batch()).written == 4
        with pytest.raises(StoreRejected, match="401.*check the user/password"):
            InfluxStore(InfluxConfig(url=server.url, username="admin", password="wrong"), CATALOG, TZ)
    finally:
        server.cleanup()


def test_line_protocol_matches_influxdb_client_escaping(influx_server):
    nasty = SeriesCatalog([SeriesInfo("M1", "meter", "E 1\\x", "W 1,a=b", "electricity", "kWh"),
                           SeriesInfo("M2", "meter", "E1", None, "electricity", "kWh")])
    values = [1.25, 1e-7, 1e20, 0.1 + 0.2, 3.0]
    raw = pd.concat([batch(5).assign(value=values), batch(5, "M2").assign(value=values, quality="estimated")])
    frame = validate(raw, "energy", nasty).frame
    ours = serialise("energy", frame, precision="s")
    for line, row in zip(ours, frame.itertuples(), strict=True):
        p = (Point("energy").tag("carrier", row.carrier).tag("enterprise", row.enterprise).tag("series", row.series)
             .tag("workshop", row.workshop if isinstance(row.workshop, str) else None)
             .field("value", row.value).field("quality", row.quality)
             .time(int(row.ts.timestamp()), write_precision="s"))
        theirs = p.to_line_protocol()
        head, value, stamp = line.rsplit("value=", 1)[0], *line.rsplit("value=", 1)[1].split(" ")
        t_head, t_value, t_stamp = theirs.rsplit("value=", 1)[0], *theirs.rsplit("value=", 1)[1].split(" ")
        assert (head, stamp) == (t_head, t_stamp)  # measurement, tags, escaping, field order, timestamp
        assert float(value) == float(t_value) == row.value  # the same double, if not always the same digits
    body = encode_body(frame, series_keys("energy", nasty), "s").decode()
    assert body.split("\n") == ours
    # And the server reads the names back exactly.
    store = InfluxStore(InfluxConfig(url=influx_server.url, database="escaping"), nasty, TZ)
    store.write("energy", raw)
    got = store.aggregate("energy", pd.Timestamp("2024-03-01", tz=TZ), pd.Timestamp("2024-03-02", tz=TZ), "day",
                          by=["enterprise", "workshop"])
    assert set(zip(got["enterprise"], got["workshop"], strict=True)) == {("E 1\\x", "W 1,a=b"), ("E1", None)}
    assert got["value"].sum() == pytest.approx(2 * sum(values))
    assert series_key("energy", {"workshop": None, "series": "M2"}) == "energy,series=M2"


def test_a_write_keeps_its_own_rollups_and_leaves_nothing_pending(influx_server):
    store = InfluxStore(InfluxConfig(url=influx_server.url, database="own_rollups"), CATALOG, TZ)
    store.write("energy", batch(8))
    assert len(store.pending_rollups()) == 0  # marked before the write, done after its roll-ups
    day = store.aggregate("energy", pd.Timestamp("2024-03-01", tz=TZ), pd.Timestamp("2024-03-02", tz=TZ), "day")
    assert day["value"].sum() == 10.0


def test_a_writer_that_dies_before_its_rollups_leaves_a_mark_that_refresh_folds_in(influx_server, monkeypatch):
    config = InfluxConfig(url=influx_server.url, database="crashed_writer")
    store = InfluxStore(config, CATALOG, TZ)
    store.write("energy", batch(8))  # 00:00-01:45, 1.25 each
    span = (pd.Timestamp("2024-03-01", tz=TZ), pd.Timestamp("2024-03-02", tz=TZ))

    def die(*args, **kwargs):
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(store, "_submit_rollups", die)
    with pytest.raises(KeyboardInterrupt):
        store.write("energy", batch(8).assign(value=2.5))  # the raw readings go in, the roll-ups do not
    monkeypatch.undo()
    assert store.aggregate("energy", *span, "day")["value"].sum() == 10.0  # stale: readers do not rebuild
    # Another process (a restarted collector) folds it in, but only once the mark is older than the grace time
    # (a live writer finishes its own).
    other = InfluxStore(config, CATALOG, TZ)
    assert other.refresh_rollups() == 0
    assert len(other.pending_rollups()) == 1
    assert other.refresh_rollups(grace_s=0) == 1
    assert other.aggregate("energy", *span, "day")["value"].sum() == 20.0
    assert other.aggregate("energy", *span, "hour")["value"].dropna().tolist() == [10.0, 10.0]
    assert len(other.pending_rollups()) == 0


class _Recorder:
    """Every InfluxQL statement a store sends."""

    def __init__(self, store: InfluxStore) -> None:
        self.statements: list[str] = []
        real = store.query

        def query(q: str, **kw):
            self.statements += [part.strip() for part in q.split(";")]
            return real(q, **kw)

        store.query = query


def test_writes_reads_and_refresh_use_only_what_influxdb_2_and_3_serve(influx_server):
    """InfluxDB 2.x and 3.x serve the 1.x /write and InfluxQL /query for reading, but not SELECT ... INTO,
    DELETE or CREATE DATABASE: only deletion (and CREATE DATABASE, which is optional) may use them."""
    store = InfluxStore(InfluxConfig(url=influx_server.url, database="compat"), CATALOG, TZ)
    rec = _Recorder(store)
    store.write("energy", batch(8))
    store.write("energy", batch(8).assign(value=2.0))  # a rewrite: rebuilt from raw readings
    store.write("energy", batch(16, "M2"))
    span = (pd.Timestamp("2024-03-01", tz=TZ), pd.Timestamp("2024-04-01", tz=TZ))
    for window in ("15min", "hour", "day", "month"):
        store.aggregate("energy", *span, window, by=["enterprise"])
    store.coverage("energy", *span)
    store.latest("energy")
    store.points("energy", *span)
    store.refresh_rollups(grace_s=0)
    assert rec.statements and all(q.startswith("SELECT ") and " INTO " not in q for q in rec.statements), [
        q for q in rec.statements if not q.startswith("SELECT ") or " INTO " in q]
    assert store.aggregate("energy", *span, "month")["value"].sum() == 8 * 2.0 + 16 * 1.25


def test_a_server_that_refuses_create_database_is_noted_not_fatal(influx_server, caplog):
    """InfluxDB 2.x answers CREATE DATABASE with an error: the store starts and says so."""
    _RefuseCreate.upstream = influx_server.url
    proxy = ThreadingHTTPServer(("127.0.0.1", 0), _RefuseCreate)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        requests.post(influx_server.url + "/query", data={"q": 'CREATE DATABASE "made_by_admin"'}, timeout=5)
        with caplog.at_level("WARNING", logger="park.store.influx"):
            store = InfluxStore(InfluxConfig(url=f"http://127.0.0.1:{proxy.server_port}", database="made_by_admin"),
                                CATALOG, TZ)
        assert "could not create database 'made_by_admin'" in caplog.text
        assert store.write("energy", batch()).written == 4
    finally:
        proxy.shutdown()


class _RefuseCreate(BaseHTTPRequestHandler):
    """A stand-in for InfluxDB 2.x's compatibility API, which does not serve CREATE DATABASE; forwards the rest."""

    upstream = ""

    def do_POST(self):  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path.startswith("/query") and b"CREATE" in body:
            self.send_response(422)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"error": "not implemented: CREATE DATABASE"}')
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() in ("content-type", "content-encoding")}
        resp = requests.post(self.upstream + self.path, data=body, headers=headers, timeout=10)
        self.send_response(resp.status_code)
        self.send_header("Content-Type", resp.headers.get("Content-Type", "application/json"))
        self.end_headers()
        self.wfile.write(resp.content)

    def log_message(self, *args):
        pass


# ---- client-side roll-ups: batches cut anywhere give the roll-ups of one batch -------------------------------
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from park.store import rollup  # noqa: E402

_SLOTS = pd.date_range(pd.Timestamp("2024-03-01 22:00", tz=TZ), periods=24, freq="15min")  # over local midnight


@st.composite
def _writes(draw):
    """Readings of two series on 24 quarter-hours around a park-local midnight, cut into batches in any order;
    some readings are written again with another value or quality (a correction), which must replace them."""
    n = draw(st.integers(1, 40))
    rows = [(draw(st.sampled_from(["M1", "M2"])), draw(st.integers(0, len(_SLOTS) - 1)),
             draw(st.integers(1, 40)) / 4, draw(st.sampled_from(["measured", "estimated"]))) for _ in range(n)]
    cuts = sorted(draw(st.sets(st.integers(1, max(1, n - 1)), max_size=6)))
    bounds = [0, *cuts, n]
    return [[rows[i] for i in range(a, b)] for a, b in zip(bounds, bounds[1:], strict=False) if a < b]


def _frame(rows) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["series", "slot", "value", "quality"])
    frame["ts"] = _SLOTS[frame["slot"].to_numpy()].tz_convert("UTC")
    return frame.drop_duplicates(["series", "ts"], keep="last")[["series", "ts", "value", "quality"]]


def _truth(batches) -> tuple[pd.DataFrame, pd.DataFrame]:
    raw = _frame([r for b in batches for r in b])  # the last write of each (series, ts) wins
    hours = rollup.bucket_stats(raw, "hour", TZ)
    return hours, rollup.days_from_hours(hours, TZ)


def _norm(frame: pd.DataFrame, last: bool = True) -> list[tuple]:
    cols = ["series", "start", "sum", "count", "measured", "min", "max"] + (["last_ns"] if last else [])
    return sorted(tuple(float(v) if isinstance(v, float | np.floating | int | np.integer) else v for v in row)
                  for row in frame[cols].itertuples(index=False))


def _upsert(stored: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    both = pd.concat([stored, new[list(rollup.COLUMNS)]], ignore_index=True)
    return both.drop_duplicates(["series", "start"], keep="last").reset_index(drop=True)


@pytest.mark.parametrize("hourly", [True, False], ids=["hourly-kept", "days-only"])
@settings(max_examples=30, deadline=None, phases=(Phase.explicit, Phase.reuse, Phase.generate))
@given(batches=_writes())
def test_rollup_plan_of_batches_cut_anywhere_equals_one_batch(hourly, batches):
    """The write path's roll-up plan, against an in-memory raw store: client-side buckets plus the buckets it
    asks to rebuild (from raw readings) end equal to the roll-ups of all readings at once, hours (where a
    measurement keeps them) and days each on their own."""
    raw = pd.DataFrame(columns=["series", "ts", "value", "quality"])
    hours = rollup.bucket_stats(raw, "hour", TZ)
    days = hours.copy()
    for rows in batches:
        batch = _frame(rows)
        p = rollup.plan(batch, hours.drop(columns="first_ns").assign(first_ns=np.nan) if hourly else None,
                        days.drop(columns="first_ns").assign(first_ns=np.nan), TZ)
        raw = pd.concat([raw, batch]).drop_duplicates(["series", "ts"], keep="last")
        hours, days = _upsert(hours, p.hours), _upsert(days, p.days)
        hours = _upsert(hours, rollup.bucket_stats(raw, "hour", TZ).merge(p.recompute_hours, on=["series", "start"]))
        days = _upsert(days, rollup.bucket_stats(raw, "day", TZ).merge(p.recompute_days, on=["series", "start"]))
    want_h, want_d = _truth(batches)
    assert _norm(hours) == (_norm(want_h) if hourly else [])
    assert _norm(days) == _norm(want_d)


_hyp_db = iter(range(10_000))


@pytest.mark.parametrize("hourly", [("energy",), ()], ids=["hourly-kept", "days-only"])
@settings(max_examples=8, deadline=None, phases=(Phase.explicit, Phase.reuse, Phase.generate),
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=_writes())
def test_influx_rollups_after_batches_cut_anywhere_equal_the_raw_totals(influx_server, hourly, batches):
    """The same property on a real influxd: hour windows (from hourly roll-ups, or from raw readings where the
    measurement keeps none) and day windows (from the daily roll-ups) equal the raw data."""
    store = InfluxStore(InfluxConfig(url=influx_server.url, database=f"cuts_{next(_hyp_db)}",
                                     hourly_rollups=hourly), CATALOG, TZ)
    for rows in batches:
        store.write("energy", _frame(rows))
    start, end = pd.Timestamp("2024-03-01", tz=TZ), pd.Timestamp("2024-03-03", tz=TZ)
    want_h, want_d = _truth(batches)
    for window, want in (("hour", want_h), ("day", want_d)):
        got = store.aggregate("energy", start, end, window, by=["series"])
        got = got[got["count"] > 0]
        starts = got["start"].dt.tz_convert("UTC").astype("datetime64[ns, UTC]").astype("int64")
        assert sorted(zip(got["series"], starts, got["value"], got["count"], got["measured"], strict=True)) == sorted(
            zip(want["series"], want["start"], want["sum"], want["count"], want["measured"], strict=True))
        mx = store.aggregate("energy", start, end, window, by=["series"], agg="max").dropna(subset=["value"])
        assert sorted(mx["value"]) == sorted(want["max"])
    store.query(f'DROP DATABASE "{store.config.database}"', db=False)
    store.close()


def _points_in(store: InfluxStore, measurement: str) -> int:
    res = store.query(f'SELECT count("count") FROM "{measurement}"')
    return int(res[0]["series"][0]["values"][0][1]) if res and res[0].get("series") else 0


def test_energy_writes_daily_rollups_only_about_one_point_per_day_and_series(influx_server):
    """15-minute energy keeps no hourly roll-ups on InfluxDB (an hourly point cost influxd about as much as
    2-3 readings, for 4 readings an hour): two days of two meters written in 7 batches give 4 daily points,
    not 96 hourly ones, and hour windows (read from the raw readings) still hold every reading."""
    store = InfluxStore(InfluxConfig(url=influx_server.url, database="days_only"), CATALOG, TZ)
    frame = pd.concat([batch(192, "M1"), batch(192, "M2").assign(value=0.5)], ignore_index=True)
    frame = frame.sort_values("ts", kind="stable").reset_index(drop=True)
    for part in np.array_split(np.arange(len(frame)), 7):
        store.write("energy", frame.iloc[part])
    assert _points_in(store, "energy_1h") == 0
    assert _points_in(store, "energy_1d") == 4
    span = (pd.Timestamp("2024-03-01", tz=TZ), pd.Timestamp("2024-03-03", tz=TZ))
    hours = store.aggregate("energy", *span, "hour", by=["series"])
    assert len(hours) == 96 and hours["count"].tolist() == [4] * 96
    assert hours.groupby("series")["value"].sum().to_dict() == {"M1": 240.0, "M2": 96.0}
    days = store.aggregate("energy", *span, "day", by=["series"])
    assert days.groupby("series")["value"].sum().to_dict() == {"M1": 240.0, "M2": 96.0}


def test_an_old_daily_rollup_without_last_ns_is_rebuilt_not_added_to(influx_server):
    """A day written before daily roll-ups carried `last_ns` (or by hand) cannot be appended to safely: the
    next write of that day rebuilds it from the raw readings."""
    store = InfluxStore(InfluxConfig(url=influx_server.url, database="old_day"), CATALOG, TZ)
    store.write("energy", batch(8))  # 00:00-01:45, 1.25 each: 10.0
    key = series_keys("energy_1d", CATALOG)["M1"]
    midnight = int(pd.Timestamp("2024-03-01", tz=TZ).timestamp())
    # the old point: no last_ns field (deleted first, as a rewrite would merge with the stored fields)
    store.query(f'DELETE FROM "energy_1d" WHERE time >= {midnight * 10**9} AND time < {midnight * 10**9 + 1}')
    store.write_lines([f"{key} count=3i,max=1.25,measured=3i,min=1.25,sum=99.0 {midnight}"], precision="s")
    # The next write comes from a store started after the old point was written (this one knows its own day
    # bucket, and a hand-made point around the store is no writer's mark: docs/store.md).
    store = InfluxStore(InfluxConfig(url=influx_server.url, database="old_day"), CATALOG, TZ)
    store.write("energy", batch(12).iloc[8:])  # 02:00-02:45, appended
    day = store.aggregate("energy", pd.Timestamp("2024-03-01", tz=TZ), pd.Timestamp("2024-03-02", tz=TZ), "day")
    assert day["value"].sum() == 15.0 and day["count"].sum() == 12


def test_a_measurement_with_hourly_rollups_keeps_them(influx_server):
    """Where readings are dense (sampled levels), hourly roll-ups are still written and read."""
    store = InfluxStore(InfluxConfig(url=influx_server.url, database="hourly_kept", hourly_rollups=("energy",)),
                        CATALOG, TZ)
    store.write("energy", batch(8))
    assert _points_in(store, "energy_1h") == 2 and _points_in(store, "energy_1d") == 1
    hours = store.aggregate("energy", pd.Timestamp("2024-03-01", tz=TZ), pd.Timestamp("2024-03-01 02:00", tz=TZ),
                            "hour")
    assert hours["value"].tolist() == [5.0, 5.0]


# ---- what a store knows of its stored roll-ups, against reading them back --------------------------------------
def _checked_against_the_server(store: InfluxStore, seen: list) -> None:
    """Make every write of `store` compare the stored buckets it uses (known or read back) with the server's,
    read back right then by another store that knows nothing; mismatches go to `seen` as (name, got, want)."""
    real = store._stored_buckets
    plain = InfluxStore(store.config, CATALOG, TZ)

    def checked(measurement, wanted, series):
        got = real(measurement, wanted, series)
        for name, lo, hi in wanted:
            want = plain._stored(name, lo, hi, series)
            mine = got[name][got[name]["series"].isin(series)]
            rows = [_norm(f.assign(first_ns=np.nan), last=True) for f in (mine, want)]
            if rows[0] != rows[1]:
                seen.append((name, rows[0], rows[1]))
        store.uses += 1
        return got

    store.uses = 0
    store._stored_buckets = checked


def _stored_reads(store: InfluxStore) -> list[str]:
    """Every read-back of stored roll-up buckets the store sends (not the marks query, not other reads)."""
    reads: list[str] = []
    real = store.query

    def query(q: str, **kw):
        reads.extend(part for part in q.split(";") if part.startswith('SELECT "sum", "count"'))
        return real(q, **kw)

    store.query = query
    return reads


@st.composite
def _writers(draw):
    """Batches of `_writes`, each written by one of three stores on the same database (as three processes would
    be), some stores restarted (a new store: knows nothing) before a batch; mostly in time order (appends, where
    a store uses what it knows), else in any order (rewrites and late data, where it reads back)."""
    batches = draw(_writes())
    if draw(st.integers(0, 3)):
        rows = sorted((r for b in batches for r in b), key=lambda r: r[1])
        bounds = [0, *sorted(draw(st.sets(st.integers(1, max(1, len(rows) - 1)), max_size=6))), len(rows)]
        batches = [rows[a:b] for a, b in zip(bounds, bounds[1:], strict=False) if a < b]
    return [(b, draw(st.integers(0, 2)), draw(st.booleans()) and draw(st.booleans())) for b in batches]


@pytest.mark.parametrize("hourly", [("energy",), ()], ids=["hourly-kept", "days-only"])
@settings(max_examples=15, deadline=None, phases=(Phase.explicit, Phase.reuse, Phase.generate),
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(writes=_writers())
def test_known_rollups_equal_the_stored_ones_whatever_writes_them(influx_server, hourly, writes):
    """A store folds a batch into the roll-up buckets it last read or wrote unless another writer marked the
    measurement since: whatever the batches, rewrites and writers, the buckets a write uses equal the server's
    read back at that moment, and the roll-ups end equal to the raw data."""
    database = f"known_{next(_hyp_db)}"
    config = InfluxConfig(url=influx_server.url, database=database, hourly_rollups=hourly)
    stores: list[InfluxStore | None] = [None, None, None]
    seen: list = []
    for rows, who, restart in writes:
        if stores[who] is None or restart:
            stores[who] = InfluxStore(config, CATALOG, TZ)
            _checked_against_the_server(stores[who], seen)
        stores[who].write("energy", _frame(rows))
        assert not seen, seen[:1]
    start, end = pd.Timestamp("2024-03-01", tz=TZ), pd.Timestamp("2024-03-03", tz=TZ)
    want_h, want_d = _truth(writes and [w[0] for w in writes])
    reader = InfluxStore(config, CATALOG, TZ)
    for window, want in (("hour", want_h), ("day", want_d)):
        got = reader.aggregate("energy", start, end, window, by=["series"])
        got = got[got["count"] > 0]
        starts = got["start"].dt.tz_convert("UTC").astype("datetime64[ns, UTC]").astype("int64")
        assert sorted(zip(got["series"], starts, got["value"], got["count"], got["measured"], strict=True)) == sorted(
            zip(want["series"], want["start"], want["sum"], want["count"], want["measured"], strict=True))
    reader.query(f'DROP DATABASE "{database}"', db=False)
    for s in [*stores, reader]:
        if s is not None:
            s.close()


def test_a_store_reads_its_rollups_back_only_when_another_writer_came_by(influx_server):
    """Appending one day in 4 batches reads the stored day buckets back once (then the store knows them); after
    another store (another process) writes the same day, the first reads them back again and adds to the other's
    readings, not to its own stale copy."""
    config = InfluxConfig(url=influx_server.url, database="known_reads")
    frame = pd.concat([batch(48, "M1"), batch(48, "M2").assign(value=0.5)]).sort_values("ts", kind="stable")
    parts = np.array_split(np.arange(len(frame)), 8)  # 12 readings each, in time order
    a, b = InfluxStore(config, CATALOG, TZ), InfluxStore(config, CATALOG, TZ)
    reads_a, seen = _stored_reads(a), []
    _checked_against_the_server(a, seen)
    for part in parts[:4]:
        a.write("energy", frame.iloc[part])
    assert len(reads_a) == 1 and a.uses == 4  # three of four writes used what the store knew
    b.write("energy", frame.iloc[parts[4]])  # another writer appends to the same day
    a.write("energy", frame.iloc[parts[5]])
    assert len(reads_a) == 2  # a saw b's mark and read the day back
    a.write("energy", frame.iloc[parts[6]])
    a.write("energy", frame.iloc[parts[7]])
    assert len(reads_a) == 2 and not seen
    day = a.aggregate("energy", pd.Timestamp("2024-03-01", tz=TZ), pd.Timestamp("2024-03-02", tz=TZ), "day",
                      by=["series"])
    assert day.set_index("series")["value"].to_dict() == {"M1": 60.0, "M2": 24.0}
    assert day["count"].tolist() == [48, 48]


# ---- the serialiser, against its previous form and influxdb-client -----------------------------------------------
def _encode_lines_before(frame: pd.DataFrame, keys, precision: str = "s"):
    """`lineprotocol.encode_lines` as of commit 1a9e92e, verbatim: the reference for the bytes."""
    import pyarrow as pa
    import pyarrow.compute as pc

    codes, uniq = pd.factorize(frame["series"])
    prefix = pc.take(pa.array([keys[s] for s in uniq], pa.string()), pa.array(codes))
    qcodes, quniq = pd.factorize(frame["quality"])
    middle = pc.take(pa.array([f" quality={escape_field_string(q)},value=" for q in quniq], pa.string()),
                     pa.array(qcodes))
    divisor = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}[precision]
    ts = frame["ts"].astype("datetime64[ns, UTC]").astype("int64").to_numpy() // divisor
    values = pc.cast(pa.array(frame["value"].to_numpy(dtype="float64")), pa.string())
    return pc.binary_join_element_wise(prefix, middle, values, " ", pc.cast(pa.array(ts), pa.string()), "")


_NASTY = SeriesCatalog([SeriesInfo("M1", "meter", "E 1\\x", "W 1,a=b", "electricity", "kWh"),
                        SeriesInfo("M 2=x", "meter", "E1", None, "steam", "GJ"),
                        SeriesInfo("M3", "meter", "E,3", "", "water", "m3"),
                        SeriesInfo("M4", "meter", "E4", "W\t4", "gas", "m3")])


@st.composite
def _validated(draw):
    n = draw(st.integers(1, 60))
    unit = draw(st.sampled_from(["s", "ms", "us", "ns"]))
    step = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}[unit]
    return pd.DataFrame({
        "series": pd.Series(draw(st.lists(st.sampled_from([s.id for s in _NASTY.series]), min_size=n, max_size=n)),
                            dtype="str"),
        "ts": pd.to_datetime(np.array(draw(st.lists(st.integers(1_600_000_000, 1_800_000_000), min_size=n,
                                                    max_size=n)), dtype="int64") * 10**9
                             + np.array(draw(st.lists(st.integers(0, 10**9 // step - 1), min_size=n, max_size=n)),
                                        dtype="int64") * step, utc=True),
        "value": draw(st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=n, max_size=n)),
        "quality": pd.Series(draw(st.lists(st.sampled_from(["measured", "estimated", 'q"uo\\te']), min_size=n,
                                           max_size=n)), dtype="str")}), unit


@settings(max_examples=200, deadline=None)
@given(case=_validated(), size=st.integers(1, 25))
def test_request_bodies_are_the_bytes_of_the_previous_encoder_and_of_influxdb_client(case, size):
    """Each request body is byte for byte what the encoder before it produced, and each line says what
    influxdb-client's Point says (tags, escaping, field order, timestamp; the value is the same double)."""
    frame, precision = case
    keys = series_keys("energy", _NASTY)
    want = _encode_lines_before(frame, keys, precision)
    bodies = list(encode_bodies(frame, keys, precision, size))
    assert bodies == [join_lines(want.slice(i, size)) for i in range(0, len(frame), size)]
    assert encode_lines(frame, keys, precision).to_pylist() == want.to_pylist()
    info = {s.id: s for s in _NASTY.series}
    for line, row in zip(b"\n".join(bodies).decode().split("\n"), frame.itertuples(), strict=True):
        tags = info[row.series]
        p = (Point("energy").tag("carrier", tags.carrier).tag("enterprise", tags.enterprise)
             .tag("series", row.series).tag("workshop", tags.workshop or None)
             .field("value", row.value).field("quality", row.quality).time(row.ts.value // {
                 "s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}[precision], write_precision=precision))
        theirs = p.to_line_protocol()
        head, rest = line.rsplit("value=", 1)
        t_head, t_rest = theirs.rsplit("value=", 1)
        assert head == t_head and rest.split(" ")[1] == t_rest.split(" ")[1]
        assert float(rest.split(" ")[0]) == float(t_rest.split(" ")[0]) == row.value


def test_catalog_keys_are_series_key():
    """The keys a store builds from its catalog are `series_key` of the series' tags, escapes and all."""
    for measurement in ("energy", "energy_1d", "en ergy,x"):
        assert series_keys(measurement, _NASTY) == {
            s.id: series_key(measurement, {"series": s.id, "enterprise": s.enterprise, "workshop": s.workshop,
                                           "carrier": s.carrier}) for s in _NASTY.series}
