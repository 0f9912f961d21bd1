"""The bracelet converters: raw payload bytes in, the readings and rejections they must give out."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone

import pytest

from collectors.converters.bracelet import convert_mqtt, convert_vendor_page, topic_device, topic_for
from collectors.readings import Kind

TOPIC = "parkcarbon/demo/bracelet/E001-W1-D1/telemetry"
CST = timezone(timedelta(hours=8))


def test_documented_payload_gives_one_current_reading_with_health_fields():
    payload = (b'{"device":"E001-W1-D1","ts":"2024-03-01T08:00:00+08:00","current_a":12.3,"voltage_v":380,'
               b'"battery_pct":87,"rssi_dbm":-71}')
    conv = convert_mqtt(payload, TOPIC)
    assert conv.problems == []
    (r,) = conv.readings
    assert (r.series, r.ts, r.value, r.kind, r.measurement) == (
        "E001-W1-D1", datetime(2024, 3, 1, 8, tzinfo=CST), 12.3, Kind.LEVEL, "current")
    assert r.extra == {"voltage_v": 380.0, "battery_pct": 87.0, "rssi_dbm": -71.0}
    assert r.source == f"mqtt:{TOPIC}"


def test_a_batch_array_gives_one_reading_per_item_and_optional_fields_may_be_absent():
    payload = (b'[{"device":"E001-W1-D1","ts":"2024-03-01T00:00:00Z","current_a":0},'
               b' {"device":"E001-W1-D1","ts":"2024-03-01T00:01:00Z","current_a":7.5,"battery_pct":12}]')
    conv = convert_mqtt(payload, TOPIC)
    assert [(r.ts, r.value, r.extra) for r in conv.readings] == [
        (datetime(2024, 3, 1, tzinfo=UTC), 0.0, {}),
        (datetime(2024, 3, 1, 0, 1, tzinfo=UTC), 7.5, {"battery_pct": 12.0})]
    assert conv.problems == []


@pytest.mark.parametrize("payload, code, says", [
    (b'{"device":"E001-W1-D1","ts":', "payload.malformed", "not JSON"),
    (b"\xff\xfe\x00garbage", "payload.malformed", "not JSON"),
    (b'"just a string"', "payload.malformed", "expected a JSON object, got str"),
    (b'{"device":"E001-W1-D1","current_a":3}', "payload.malformed", "missing ts"),
    (b'{"ts":"2024-03-01T08:00:00+08:00"}', "payload.malformed", "missing device, current_a"),
    (b'{"device":"E001-W1-D2","ts":"2024-03-01T08:00:00+08:00","current_a":3}', "payload.malformed",
     "payload device 'E001-W1-D2' is not the topic's device 'E001-W1-D1'"),
    (b'{"device":"E001-W1-D1","ts":"yesterday","current_a":3}', "reading.bad_timestamp", "'yesterday'"),
    (b'{"device":"E001-W1-D1","ts":1709251200,"current_a":3}', "reading.bad_timestamp", "1709251200"),
    (b'{"device":"E001-W1-D1","ts":"2024-03-01T08:00:00+08:00","current_a":"high"}', "reading.not_a_number",
     "current_a 'high' is not a number"),
    (b'{"device":"E001-W1-D1","ts":"2024-03-01T08:00:00+08:00","current_a":true}', "reading.not_a_number",
     "current_a True is not a number"),
])
def test_unreadable_payloads_become_rejections_with_a_reason(payload, code, says):
    conv = convert_mqtt(payload, TOPIC)
    assert conv.readings == []
    (p,) = conv.problems
    assert p.code == code
    assert says in p.detail


def test_a_malformed_payload_is_quoted_by_its_first_bytes_only():
    payload = b"{" + b"x" * 500
    (p,) = convert_mqtt(payload, TOPIC).problems
    assert "b'{" + "x" * 79 + "'..." in p.detail
    assert len(p.detail) < 250


def test_numbers_sent_as_strings_are_read_as_numbers():
    payload = b'{"device":"E001-W1-D1","ts":"2024-03-01T08:00:00+08:00","current_a":" 12.5 ","battery_pct":"40"}'
    (r,) = convert_mqtt(payload, TOPIC).readings
    assert (r.value, r.extra) == (12.5, {"battery_pct": 40.0})


def test_a_bad_health_field_keeps_the_current_and_says_what_was_left_out():
    payload = b'{"device":"E001-W1-D1","ts":"2024-03-01T08:00:00+08:00","current_a":5,"battery_pct":"low"}'
    conv = convert_mqtt(payload, TOPIC)
    assert [(r.value, r.extra) for r in conv.readings] == [(5.0, {})]
    (p,) = conv.problems
    assert p.code == "payload.malformed" and "battery_pct 'low' is not a number; the reading is kept" in p.detail


def test_naive_timestamps_nan_and_negative_currents_are_left_to_the_pipeline_rules():
    payload = (b'[{"device":"E001-W1-D1","ts":"2024-03-01T08:00:00","current_a":1},'
               b' {"device":"E001-W1-D1","ts":"2024-03-01T08:01:00+08:00","current_a":NaN},'
               b' {"device":"E001-W1-D1","ts":"2024-03-01T08:02:00+08:00","current_a":-2}]')
    conv = convert_mqtt(payload, TOPIC)
    assert conv.problems == []
    naive, nan, negative = conv.readings
    assert naive.ts == datetime(2024, 3, 1, 8) and naive.ts.tzinfo is None  # -> reading.naive_timestamp
    assert math.isnan(nan.value)  # -> reading.not_finite
    assert negative.value == -2.0  # -> reading.negative


def test_one_bad_item_of_a_batch_does_not_spoil_the_others():
    payload = (b'[{"device":"E001-W1-D1","ts":"2024-03-01T08:00:00+08:00","current_a":1},'
               b' {"device":"E001-W1-D1","current_a":2},'
               b' {"device":"E001-W1-D1","ts":"2024-03-01T08:02:00+08:00","current_a":3}]')
    conv = convert_mqtt(payload, TOPIC)
    assert [r.value for r in conv.readings] == [1.0, 3.0]
    (p,) = conv.problems
    assert p.detail.startswith(f"item 1 of {TOPIC}: missing ts")


def test_topics():
    assert topic_for("demo", "E001-W1-D1") == TOPIC
    assert topic_device(TOPIC) == "E001-W1-D1"
    assert topic_device("parkcarbon/demo/meter/M1/telemetry") is None
    (p,) = convert_mqtt(b"{}", "other/topic").problems
    assert p.code == "payload.malformed" and "'other/topic'" in p.detail


VENDOR_PAGE = (b'{"code":0,"msg":"ok","data":{"items":['
               b'{"sn":"860000000000001","collectTime":1709251200000,"current":"12.3","voltage":380,"battery":87,'
               b'"csq":21},'
               b'{"sn":"860000000000009","collectTime":1709251260000,"current":0.4,"csq":99},'
               b'{"sn":"860000000000001","collectTime":"soon","current":1},'
               b'{"sn":"860000000000001","current":1}'
               b'],"nextCursor":"p2"}}')


def test_vendor_page_maps_serials_to_devices_and_csq_to_dbm():
    conv, cursor = convert_vendor_page(VENDOR_PAGE, {"860000000000001": "E001-W1-D1"}, source="vendor:test")
    assert cursor == "p2"
    first, second = conv.readings
    assert (first.series, first.ts, first.value, first.source) == (
        "E001-W1-D1", datetime(2024, 3, 1, tzinfo=UTC), 12.3, "vendor:test")
    assert first.extra == {"voltage_v": 380.0, "battery_pct": 87.0, "rssi_dbm": -71.0}  # -113 + 2 x 21
    assert (second.series, second.extra) == ("860000000000009", {})  # unmapped serial; CSQ 99 = unknown
    assert [(p.code, p.detail.split(":")[0]) for p in conv.problems] == [
        ("reading.bad_timestamp", "item 2 of vendor"), ("payload.malformed", "item 3 of vendor")]


@pytest.mark.parametrize("body, says", [
    (b"<html>502 Bad Gateway</html>", "not JSON"),
    (b'{"code":500,"msg":"internal error"}', "not a telemetry page"),
    (b'{"code":0,"data":{"items":{}}}', "not a telemetry page"),
    (b'{"code":0,"data":{"items":[],"nextCursor":7}}', "nextCursor 7 is not a string"),
])
def test_a_malformed_vendor_page_is_refused_whole(body, says):
    with pytest.raises(ValueError, match=says):
        convert_vendor_page(body)
