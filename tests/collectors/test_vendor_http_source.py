"""The vendor cloud source against a local stand-in server serving recorded pages (tests/support/recorded_vendor)."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pandas as pd
import pytest
from apscheduler.schedulers.background import BackgroundScheduler

from collectors.pipeline import Pipeline
from collectors.readings import RawReading
from collectors.sources.vendor_http import VendorAuthError, VendorHttpSource, VendorSettings, VendorUnavailable
from collectors.spool import Spool
from collectors.writer import Writer
from park.model import SeriesCatalog, SeriesInfo
from park.store.embedded import EmbeddedStore
from tests.support.mosquitto import wait_until

RECORDED = Path(__file__).parents[1] / "support" / "recorded_vendor"
TOKEN = "stand-in-token-7f3a"
SERIALS = {"862718040123401": "E001-W1-D1", "862718040123402": "E001-W1-D2", "862718040123403": "E001-W2-D1"}
NOW = datetime(2024, 3, 1, 1, 30, tzinfo=UTC)  # 09:30 in the park
MS_0809 = 1709251740000  # 08:09 +08:00, the newest item of the recording


class Recorder:
    """A sink that keeps what it is given."""

    def __init__(self) -> None:
        self.readings: list[RawReading] = []
        self.rejects: list[dict] = []

    def submit(self, readings: list[RawReading]) -> None:
        self.readings += readings

    def reject(self, **kw) -> None:
        self.rejects.append(kw)


class StandInVendor:
    """The vendor's cloud, as far as the collector can tell: bearer token, ``since`` filter, cursor paging."""

    def __init__(self) -> None:
        self.requests: list[dict[str, str]] = []
        self.faults: list[int | str] = []  # what the next requests get instead of a page: 503, "slow"
        self.overrides: dict[str, str] = {}  # cursor -> recorded file served instead of its page
        vendor = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlparse(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                if url.path != "/api/v1/telemetry":
                    return self._send(404, b'{"code":404,"msg":"no such API"}')
                if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    return self._send(401, (RECORDED / "unauthorized.json").read_bytes())
                vendor.requests.append(query)
                fault = vendor.faults.pop(0) if vendor.faults else None
                if fault == "slow":
                    time.sleep(1.0)  # longer than the client's time-out
                elif fault is not None:
                    return self._send(int(fault), b"<html>Service Temporarily Unavailable</html>")
                cursor = query.get("cursor", "first")
                name = vendor.overrides.get(cursor, f"page-{cursor}.json")
                body = (RECORDED / name).read_bytes()
                if name.startswith("page-"):  # a real API answers only what is at or after `since`
                    page = json.loads(body)
                    page["data"]["items"] = [i for i in page["data"]["items"]
                                             if i["collectTime"] >= int(query["since"])]
                    body = json.dumps(page, ensure_ascii=False).encode()
                self._send(200, body)

            def _send(self, status: int, body: bytes) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up waiting
                    pass

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def vendor():
    server = StandInVendor()
    yield server
    server.close()


def make_source(sink, vendor: StandInVendor, state_path: Path | None = None, **kw) -> VendorHttpSource:
    settings = VendorSettings(vendor.url, token=kw.pop("token", TOKEN), serials=SERIALS, page_size=12,
                              timeout_s=kw.pop("timeout_s", 5.0), backoff_s=0.01, **kw)
    return VendorHttpSource(sink, settings, state_path=state_path, clock=lambda: NOW)


def test_a_poll_follows_the_cursor_and_a_re_poll_resubmits_nothing(vendor, tmp_path):
    sink = Recorder()
    src = make_source(sink, vendor, state_path=tmp_path / "marks.json")
    first = src.poll()
    assert (first.pages, first.submitted, first.already_seen, first.rejected) == (3, 29, 0, 1)
    assert [r.get("cursor") for r in vendor.requests] == [None, "c1Q2", "c1Q3"]
    assert vendor.requests[0]["since"] == str(int((NOW - pd.Timedelta("7D")).timestamp() * 1000))  # lookback
    assert {r.series for r in sink.readings} == set(SERIALS.values())
    (bad,) = sink.rejects
    assert bad["code"] == "reading.not_a_number" and bad["series"] == "E001-W2-D1" and "'ERR'" in bad["detail"]
    assert set(src.high_water.values()) == {datetime(2024, 3, 1, 0, 9, tzinfo=UTC)}

    again = src.poll()  # the vendor repeats the items at `since` (08:09): the marks keep them out
    assert vendor.requests[3]["since"] == str(MS_0809)
    assert (again.pages, again.submitted, again.already_seen) == (3, 0, 3)

    restarted = make_source(sink, vendor, state_path=tmp_path / "marks.json")  # marks come back from the file
    assert restarted.poll().submitted == 0
    assert len(sink.readings) == 29 and len(sink.rejects) == 1


def test_a_bracelet_silent_for_long_does_not_hold_since_back_beyond_the_lookback(vendor, tmp_path):
    marks = tmp_path / "marks.json"
    marks.write_text(json.dumps({"E001-W1-D1": "2024-03-01T00:09:00+00:00", "OLD-D9": "2023-12-01T00:00:00+00:00"}))
    result = make_source(Recorder(), vendor, state_path=marks, lookback=pd.Timedelta("2D")).poll()
    assert vendor.requests[0]["since"] == str(int((NOW - pd.Timedelta("2D")).timestamp() * 1000))
    assert (result.submitted, result.already_seen) == (19, 10)  # all of D1 (to 08:09) was seen; D2, W2-D1 are new
    assert json.loads(marks.read_text())["OLD-D9"] == "2023-12-01T00:00:00+00:00"  # kept, not forgotten


def test_polled_readings_reach_the_store_as_current_points(vendor, tmp_path):
    catalog = SeriesCatalog([SeriesInfo(d, "device", "E001", d[:7], None, "A", 60) for d in SERIALS.values()])
    spool = Spool(tmp_path / "spool.db")
    store = EmbeddedStore(tmp_path / "ts.duckdb", catalog, "Asia/Shanghai")
    make_source(Pipeline(catalog, spool), vendor).poll()
    Writer(spool, store).drain()
    start = pd.Timestamp("2024-03-01 08:00", tz="Asia/Shanghai")
    pts = store.points("current", start, start + pd.Timedelta("1h"))
    assert pts.groupby("series").size().to_dict() == {"E001-W1-D1": 10, "E001-W1-D2": 10, "E001-W2-D1": 9}
    assert pts[pts["series"] == "E001-W1-D1"]["value"].tolist()[:4] == [15.2, 16.8, 17.1, 0.3]
    assert store.quarantined("current")["code"].tolist() == ["reading.not_a_number"]
    store.close()
    spool.close()


def test_a_wrong_token_is_a_clear_error_and_is_not_retried(vendor):
    with pytest.raises(VendorAuthError, match=r"refused the token \(HTTP 401.*token invalid.*PARKCARBON_VENDOR_TOKEN"):
        make_source(Recorder(), vendor, token="expired").poll()
    assert vendor.requests == []  # the server turned it away at the door, once


def test_the_token_comes_from_the_environment(vendor, monkeypatch):
    monkeypatch.delenv("PARKCARBON_VENDOR_TOKEN", raising=False)
    with pytest.raises(VendorAuthError, match="no token .* set PARKCARBON_VENDOR_TOKEN"):
        make_source(Recorder(), vendor, token=None).poll()
    monkeypatch.setenv("PARKCARBON_VENDOR_TOKEN", TOKEN)
    assert make_source(Recorder(), vendor, token=None).poll().submitted == 29


def test_server_errors_and_time_outs_are_retried_with_back_off(vendor):
    vendor.faults = [503, "slow", 502]
    result = make_source(Recorder(), vendor, timeout_s=0.3).poll()
    assert (result.pages, result.submitted) == (3, 29)
    assert [r.get("cursor") for r in vendor.requests] == [None, None, None, None, "c1Q2", "c1Q3"]


def test_a_vendor_that_keeps_failing_raises_unavailable_and_submits_nothing(vendor):
    vendor.faults = [503, 503, 503]
    sink = Recorder()
    with pytest.raises(VendorUnavailable, match="failed 3 times; last: HTTP 503"):
        make_source(sink, vendor, retries=2).poll()
    assert sink.readings == []


def test_a_malformed_page_is_rejected_and_the_next_poll_resumes_from_the_marks(vendor):
    sink = Recorder()
    src = make_source(sink, vendor)
    vendor.overrides = {"c1Q2": "truncated.json"}
    result = src.poll()
    assert (result.pages, result.submitted, result.malformed_pages) == (2, 12, 1)
    (rej,) = sink.rejects
    assert rej["code"] == "payload.malformed" and rej["source"] == f"vendor:{vendor.url}/api/v1/telemetry"
    assert "page 2" in rej["detail"] and "not JSON" in rej["detail"] and "b'{\"code\": 0" in rej["detail"]

    vendor.overrides = {}  # the vendor is healthy again
    resumed = src.poll()
    assert (resumed.submitted, resumed.already_seen) == (17, 3)  # 08:03 is the oldest mark: its items come again
    assert len({(r.series, r.ts) for r in sink.readings}) == len(sink.readings) == 29


def test_polling_runs_as_an_apscheduler_job(vendor):
    sink = Recorder()
    src = make_source(sink, vendor)
    scheduler = BackgroundScheduler(timezone="Asia/Shanghai")
    scheduler.start()
    try:
        job = src.schedule(scheduler, interval_s=3600)
        assert (job.max_instances, job.coalesce) == (1, True)
        wait_until(lambda: len(sink.readings) == 29, what="the scheduled poll")
    finally:
        scheduler.shutdown()
        src.close()
