"""The store writer's batching: a full batch or the deadline under a steady flow, at once when the flow stops.

A store write has a fixed cost, so while readings keep arriving the writer waits for `min_rows` or `max_wait_s`;
but the tail of a stream (a burst, then silence) must not wait for the deadline: it is written on the first tick
that sees nothing new.  Rows leave the spool only after the store accepted them, whatever the ticks and outages.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collectors.pipeline import Pipeline
from collectors.readings import Kind, RawReading
from collectors.service import CollectorService
from collectors.spool import Spool
from collectors.writer import Writer
from park.model import Enterprise, Meter, Park, SeriesCatalog, SeriesInfo
from park.store import StoreUnavailable, WriteResult
from park.store.embedded import EmbeddedStore
from park.units import Carrier

TZ = "Asia/Shanghai"
CATALOG = SeriesCatalog([SeriesInfo("M1", "meter", "E1", "W1", "electricity", "kWh")])
T0 = pd.Timestamp("2024-03-01 00:00", tz=TZ)
CLOCK = lambda: pd.Timestamp("2024-04-01", tz=TZ)  # noqa: E731


def interval(i: int) -> RawReading:
    return RawReading("M1", T0 + pd.Timedelta(minutes=15 * i), 1.0, Kind.INTERVAL, source="test")


class RecordingStore:
    """Stands in for the store: keeps every accepted (series, ts), or raises StoreUnavailable while down."""

    def __init__(self) -> None:
        self.down = False
        self.points: list[tuple[str, pd.Timestamp]] = []
        self.attempts = 0

    def write(self, measurement, frame, *, source="api") -> WriteResult:
        self.attempts += 1
        if self.down:
            raise StoreUnavailable("store stopped by the test")
        self.points += list(zip(frame["series"], frame["ts"], strict=True))
        return WriteResult(written=len(frame))

    def quarantine(self, measurement, rejected, source) -> None:
        pass


@pytest.fixture
def parts(tmp_path):
    spool = Spool(tmp_path / "spool.db")
    store = RecordingStore()
    yield spool, store, Pipeline(CATALOG, spool, clock=CLOCK)
    spool.close()


def test_a_burst_then_silence_is_written_on_the_next_quiet_tick_not_at_the_deadline(parts):
    spool, store, pipe = parts
    writer = Writer(spool, store, min_rows=20_000, max_wait_s=3600)
    pipe.submit([interval(i) for i in range(5)])
    assert writer.drain_if_due() is None  # just arrived: more may follow in a steady flow
    assert writer.drain_if_due().written == 5  # nothing new since the previous tick: the batch will not grow
    assert spool.stats().queued == 0 and len(store.points) == 5


def test_a_tail_that_arrives_during_a_drain_is_written_on_the_next_quiet_tick(parts):
    spool, store, pipe = parts
    writer = Writer(spool, store, min_rows=3, max_wait_s=3600)
    pipe.submit([interval(i) for i in range(3)])
    assert writer.drain_if_due().written == 3  # a full batch
    pipe.submit([interval(3)])  # arrived after the drain ended
    assert writer.drain_if_due() is None  # new since the drain's end: the flow may go on
    assert writer.drain_if_due().written == 1  # quiet: written, without waiting an hour


def test_silence_is_counted_in_time_so_a_look_right_after_another_is_no_proof_of_it(parts):
    spool, store, pipe = parts
    writer = Writer(spool, store, min_rows=20_000, max_wait_s=3600, quiet_s=0.3)
    pipe.submit([interval(i) for i in range(5)])
    assert writer.drain_if_due() is None  # new rows
    assert writer.drain_if_due() is None  # none since, but the flow may only have paused between two flushes
    time.sleep(0.35)
    assert writer.drain_if_due().written == 5  # quiet for 0.3 s: stopped
    pipe.submit([interval(5)])
    assert writer.drain_if_due() is None
    time.sleep(0.35)
    assert writer.drain_if_due().written == 1


def test_a_steady_flow_still_waits_for_a_worthwhile_batch(parts):
    spool, store, pipe = parts
    writer = Writer(spool, store, min_rows=10, max_wait_s=3600)
    for i in range(9):  # rows arrive between every two ticks
        pipe.submit([interval(i)])
        assert writer.drain_if_due() is None
    pipe.submit([interval(9)])
    assert writer.drain_if_due().written == 10  # one write for the ten, not ten writes
    assert store.attempts == 1


def test_a_scheduled_drain_writes_what_waited_not_what_arrives_meanwhile(parts):
    spool, store, pipe = parts
    writer = Writer(spool, store, min_rows=10, max_wait_s=3600)
    pipe.submit([interval(i) for i in range(10)])
    write = store.write

    def write_while_more_arrive(measurement, frame, *, source="api"):
        if len(frame) == 10:  # the steady flow goes on while the store writes
            pipe.submit([interval(10 + i) for i in range(3)])
        return write(measurement, frame, source=source)

    store.write = write_while_more_arrive
    assert writer.drain_if_due().written == 10
    assert store.attempts == 1  # not a second write for the 3 that came during the first (its fixed cost again)
    assert spool.stats().queued == 3  # they wait for the next decision
    assert writer.drain_if_due().written == 3  # which finds the flow stopped


def test_a_store_outage_is_retried_at_the_deadline_not_on_every_quiet_tick(parts):
    spool, store, pipe = parts
    writer = Writer(spool, store, min_rows=20_000, max_wait_s=0.3)
    pipe.submit([interval(i) for i in range(5)])
    store.down = True
    assert writer.drain_if_due() is None
    assert writer.drain_if_due().store_down  # quiet: tried, the store is down
    assert spool.stats().queued == 5  # the rows wait on disk
    attempts = store.attempts
    assert [writer.drain_if_due() for _ in range(5)] == [None] * 5  # quiet ticks do not hammer a down store
    assert store.attempts == attempts
    time.sleep(0.35)
    store.down = False
    assert writer.drain_if_due().written == 5  # the deadline retries
    assert spool.stats().queued == 0 and len(store.points) == 5


ACTIONS = st.lists(st.one_of(st.tuples(st.just("arrive"), st.integers(1, 7)), st.just(("tick",)),
                             st.just(("down",)), st.just(("up",))), max_size=40)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(actions=ACTIONS, min_rows=st.integers(1, 30))
def test_whatever_the_ticks_and_outages_every_row_is_stored_once_and_the_tail_within_two_ticks(actions, min_rows):
    with tempfile.TemporaryDirectory() as tmp:
        spool = Spool(Path(tmp) / "spool.db")
        store = RecordingStore()
        pipe = Pipeline(CATALOG, spool, clock=CLOCK)
        writer = Writer(spool, store, min_rows=min_rows, max_wait_s=3600)
        sent, outage = 0, False  # outage: the last drain found the store down
        try:
            for action in actions:
                if action[0] == "arrive":
                    pipe.submit([interval(sent + i) for i in range(action[1])])
                    sent += action[1]
                elif action[0] == "tick":
                    res = writer.drain_if_due()
                    outage = bool(res.store_down) if res is not None else outage
                else:
                    store.down = action[0] == "down"
                # stored and queued together are what was sent, each row once: none lost, none doubled
                assert len(store.points) + spool.stats().queued == sent
                assert len(set(store.points)) == len(store.points)
            store.down = False
            if outage:  # a store found down is retried at the deadline (tested above), not on quiet ticks
                writer.drain()
            writer.drain_if_due()
            writer.drain_if_due()  # two quiet ticks after the flow stopped: nothing waits
            assert spool.stats().queued == 0
            assert sorted(ts for _, ts in store.points) == [interval(i).ts for i in range(sent)]
        finally:
            spool.close()


def test_the_service_stores_the_tail_of_a_stream_within_a_tick_or_two(tmp_path):
    park = Park(id="p", name="测试", enterprises=(Enterprise("E1", "甲"),),
                meters=(Meter("M1", Carrier.ELECTRICITY, "E1"),))  # no address: no source, readings submitted
    store = EmbeddedStore(tmp_path / "ts.duckdb", park.catalog(), TZ)
    service = CollectorService(park, store, tmp_path / "spool.db",
                               {"writer_min_rows": 1_000_000, "writer_max_wait_s": 60}, writer_interval_s=0.2)
    assert service.writer.max_wait_s == 60  # the deadline is far away: only the quiet tick can write the tail
    service.start()
    try:
        t0 = (pd.Timestamp.now(tz="UTC") - pd.Timedelta(hours=3)).floor("15min")
        service.pipeline.submit([RawReading("M1", t0 + pd.Timedelta(minutes=15 * i), 2.0, Kind.INTERVAL,
                                            source="test") for i in range(8)])
        submitted = time.monotonic()
        while time.monotonic() - submitted < 10 and len(store.points("energy", t0, t0 + pd.Timedelta(hours=2))) < 8:
            time.sleep(0.05)
        waited = time.monotonic() - submitted
    finally:
        service.stop()
    assert len(store.points("energy", t0, t0 + pd.Timedelta(hours=2))) == 8
    assert waited < 2.0, f"the tail waited {waited:.1f} s (ticks of 0.2 s)"
    store.close()
