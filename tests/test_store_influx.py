"""InfluxDB backend behaviour beyond the shared contract: faults, refusals, retries, escaping, auth."""

from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pandas as pd
import pytest
import requests
from influxdb_client import Point

from park.model import SeriesCatalog, SeriesInfo
from park.store import StoreRejected, StoreUnavailable
from park.store.influx import InfluxConfig, InfluxStore
from park.store.lineprotocol import encode_body, serialise, series_key, series_keys
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


def test_rollups_are_refreshed_lazily_but_reads_are_never_stale(influx_server):
    store = InfluxStore(InfluxConfig(url=influx_server.url, database="lazy"), CATALOG, TZ)
    store.write("energy", batch(8))
    assert len(store.pending_rollups()) == 1  # the write marked its range, durably, in the server
    day = store.aggregate("energy", pd.Timestamp("2024-03-01", tz=TZ), pd.Timestamp("2024-03-02", tz=TZ), "day")
    assert day["value"].sum() == 10.0
    assert len(store.pending_rollups()) == 0
    # A new store object (a restarted process) finds marks left by another and folds them in.
    store.write("energy", batch(8, "M2"))
    again = InfluxStore(InfluxConfig(url=influx_server.url, database="lazy"), CATALOG, TZ)
    assert again.refresh_rollups() == 1
    day = again.aggregate("energy", pd.Timestamp("2024-03-01", tz=TZ), pd.Timestamp("2024-03-02", tz=TZ), "day")
    assert day["value"].sum() == 20.0
