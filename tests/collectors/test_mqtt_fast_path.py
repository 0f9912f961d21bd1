"""The MQTT receiver's hot path (collectors/sources/mqtt.py): PUBLISH packets split from a read buffer, a batch's
payloads decoded by the fast path exactly as the converter decodes them one by one, one write of acknowledgements
for a batch, and a payload the store cannot hold quarantined instead of blocking every later message."""

from __future__ import annotations

import json
import struct

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collectors.converters.bracelet import convert_mqtt, topic_for
from collectors.pipeline import Pipeline
from collectors.sources.mqtt import MqttSettings, MqttSource, _fast_columns, split_publishes
from collectors.spool import Spool
from collectors.writer import Writer
from park.model import SeriesCatalog, SeriesInfo
from park.store.embedded import EmbeddedStore
from tests.collectors.test_mqtt_source import Recorder, publish, source, telemetry  # noqa: F401 (fixture)
from tests.support.mosquitto import Publisher, wait_until

TZ = "Asia/Shanghai"
T0 = pd.Timestamp("2024-03-01 08:00", tz=TZ)


# ---- split_publishes ---------------------------------------------------------------------------------------------
def _remaining(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def publish_packet(topic: str, payload: bytes, qos: int, mid: int) -> bytes:
    t = topic.encode()
    body = struct.pack("!H", len(t)) + t + (struct.pack("!H", mid) if qos else b"") + payload
    return bytes([0x30 | (qos << 1)]) + _remaining(len(body)) + body


publishes = st.tuples(st.just("publish"), st.text(min_size=1, max_size=40),
                      st.one_of(st.binary(max_size=200), st.binary(min_size=16_380, max_size=16_400)),
                      st.sampled_from([0, 1]), st.integers(1, 65535))
others = st.sampled_from([("other", b"\xd0\x00"), ("other", b"\x90\x03\x00\x01\x01"),  # PINGRESP, SUBACK
                          ("other", publish_packet("q2", b"x", 0, 0)[:0] + b"\x34\x05\x00\x02q2\x00\x07")])  # QoS 2


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(publishes, publishes, publishes, others), max_size=12), st.data())
def test_split_publishes_takes_the_leading_complete_qos01_publishes_and_stops_before_anything_else(packets, data):
    wire, expected, stop_at, offset = b"", [], None, 0
    for p in packets:
        encoded = publish_packet(*p[1:]) if p[0] == "publish" else p[1]
        if p[0] == "publish" and stop_at is None:
            _, topic, payload, qos, mid = p
            expected.append(((mid if qos else 0), qos, topic, payload, offset + len(encoded)))
        elif stop_at is None:
            stop_at = offset
        wire += encoded
        offset += len(encoded)
    cut = data.draw(st.integers(0, len(wire)), label="bytes read so far")
    start = data.draw(st.integers(0, 3), label="offset of the first packet in the buffer")
    got, pos = split_publishes(b"\x00" * start + wire[:cut], start)
    complete = [e for e in expected if e[4] <= cut]
    assert got == [e[:4] for e in complete]
    assert pos == start + (complete[-1][4] if complete else 0)


def test_split_publishes_leaves_a_topic_that_is_not_utf8_to_paho():
    good = publish_packet("a/b", b"1", 1, 7)
    bad = b"\x32\x07\x00\x02\xff\xfe\x00\x08z"
    assert split_publishes(good + bad + good, 0) == ([(7, 1, "a/b", b"1")], len(good))


# ---- the batch decoder is the converter ----------------------------------------------------------------------------
DEVICE = "E001-W1-D1"
TOPIC = topic_for("demo", DEVICE)
times = st.one_of(
    st.datetimes(min_value=pd.Timestamp("1990-01-01").to_pydatetime(),
                 max_value=pd.Timestamp("2100-01-01").to_pydatetime(),
                 timezones=st.sampled_from([None, *[pd.Timestamp("2024-01-01", tz=z).tzinfo
                                                    for z in ("UTC", "Asia/Shanghai")]])).map(lambda d: d.isoformat()),
    st.sampled_from(["2024-03-01T08:00:00+08:00 ", "yesterday", "", "2024-13-01T00:00:00Z", "9999-12-31T23:59:59Z"]),
    st.integers(0, 2**40), st.none())
numbers = st.one_of(st.floats(allow_nan=True, allow_infinity=False), st.integers(-10**20, 10**20), st.booleans(),
                    st.sampled_from(["12.5", " 3 ", "x", None]))
items = st.fixed_dictionaries(
    {"device": st.sampled_from([DEVICE, DEVICE, "E001-W1-D2", 5, None]), "ts": times, "current_a": numbers},
    optional={"voltage_v": numbers, "battery_pct": numbers, "rssi_dbm": numbers, "other": st.text(max_size=3)})
payloads = st.one_of(items.map(lambda d: json.dumps(d).encode()), st.lists(items, max_size=3).map(
    lambda xs: json.dumps(xs).encode()), st.binary(max_size=40), st.just(b'{"device": "E001-W1-D1", "ts": '))


def _one_by_one(messages: list[tuple[str, bytes]]):
    readings, problems = [], []
    for topic, payload in messages:
        conv = convert_mqtt(payload, topic)
        readings += [(r.series, r.ts, r.value, r.source, r.extra) for r in conv.readings]
        problems += [(topic, p) for p in conv.problems]
    return readings, problems


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from([TOPIC, TOPIC, "not/a/telemetry/topic"]), payloads), max_size=8))
def test_the_batch_decoder_gives_what_the_converter_gives_message_by_message(messages):
    expected_readings, expected_problems = _one_by_one(messages)
    beyond = [r for r in expected_readings if r[1].tzinfo is not None and not
              pd.Timestamp("1678-01-01", tz="UTC") < pd.Timestamp(r[1]) < pd.Timestamp("2262-01-01", tz="UTC")]
    cols, problems = _fast_columns([(1, i + 1, 1, t, p) for i, (t, p) in enumerate(messages)])
    got = list(zip(cols.series, cols.ts, cols.value, cols.source, cols.extra, strict=True))
    assert [r for r in expected_readings if r not in beyond] == got
    assert [(t, p.code, p.detail) for t, p in expected_problems] == \
        [(t, p.code, p.detail) for t, p in problems if p.code != "reading.bad_timestamp" or "1678-2261" not in p.detail]
    assert len(problems) == len(expected_problems) + len(beyond)
    micros = [(pd.Timestamp(t).tz_convert("UTC") - pd.Timestamp(0, tz="UTC")) // pd.Timedelta("1us")
              if t.tzinfo is not None else None for t in cols.ts]
    assert cols.micros == micros


def test_a_batch_frame_is_what_the_pipeline_would_build_from_readings():
    messages = [(1, 1, 1, TOPIC, telemetry(DEVICE, 0, 3.5)), (1, 2, 1, TOPIC, telemetry(DEVICE, 1, 4.0))]
    frame = _fast_columns(messages)[0].frame()
    assert str(frame["ts"].dtype) == "datetime64[ns, UTC]"
    assert frame["ts"].tolist() == [T0.tz_convert("UTC"), (T0 + pd.Timedelta(minutes=1)).tz_convert("UTC")]
    assert frame["value"].tolist() == [3.5, 4.0] and frame["series"].tolist() == [DEVICE, DEVICE]
    assert frame["source"].tolist() == [f"mqtt:{TOPIC}"] * 2


# ---- against a real broker -------------------------------------------------------------------------------------
def test_a_batch_is_acknowledged_in_one_write_and_nothing_is_redelivered(broker):  # noqa: F811
    first = Recorder()
    src = source(first, broker.port, client_id="acks")
    queued = []
    real = src._client._packet_queue
    src._client._packet_queue = lambda command, packet, mid, qos, info=None: (
        queued.append((command, len(packet))), real(command, packet, mid, qos, info))[1]
    try:
        publish(broker.port, DEVICE, range(0, 200))
        wait_until(lambda: src.stats.acked == 200, what="200 acknowledgements")
    finally:
        src.stop()
    pubacks = [n for command, n in queued if command == 0x40]
    assert sum(pubacks) == 4 * 200 and len(pubacks) < 200  # PUBACKs of a batch leave together
    again = Recorder()
    src = source(again, broker.port, client_id="acks")  # the same session: anything not acknowledged comes back
    try:
        publish(broker.port, DEVICE, range(200, 203))
        wait_until(lambda: len(again.distinct()) == 3, what="the 3 new messages")
    finally:
        src.stop()
    assert sorted(ts for _, ts in again.distinct()) == [T0 + pd.Timedelta(minutes=m) for m in range(200, 203)]


def test_a_time_the_store_cannot_hold_is_quarantined_and_later_messages_still_flow(broker, tmp_path):  # noqa: F811
    catalog = SeriesCatalog([SeriesInfo(DEVICE, "device", "E001", "E001-W1", None, "A", 60)])
    spool = Spool(tmp_path / "spool.db")
    store = EmbeddedStore(tmp_path / "ts.duckdb", catalog, TZ)
    src = MqttSource(Pipeline(catalog, spool), MqttSettings(port=broker.port, client_id="far", flush_interval_s=0.05,
                                                            reconnect_min_s=0.2, reconnect_max_s=1.0)).start()
    assert src.wait_ready(10)
    try:
        pub = Publisher(broker.port)
        pub.publish(TOPIC, json.dumps({"device": DEVICE, "ts": "2999-01-01T00:00:00+08:00", "current_a": 1.0}))
        pub.publish(TOPIC, telemetry(DEVICE, 0, 7.0))
        pub.close()
        wait_until(lambda: src.stats.acked == 2, what="both messages acknowledged")
    finally:
        src.stop()
    Writer(spool, store).drain()
    assert store.points("current", T0, T0 + pd.Timedelta("1h"))["value"].tolist() == [7.0]
    (code,) = store.quarantined("current")["code"].tolist()
    assert code == "reading.bad_timestamp" and src.stats.sink_failures == 0
    store.close()
    spool.close()
