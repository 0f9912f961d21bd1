"""Bracelet payloads -> current readings.  Pure: bytes and dicts in, `RawReading`s and problems out, no I/O.

Two wire formats (both documented in docs/bracelets.md):
- MQTT telemetry: topic ``parkcarbon/{park}/bracelet/{device}/telemetry``, a JSON object or an array of them
  ``{"device", "ts" (ISO 8601 with offset), "current_a", optional "voltage_v", "battery_pct", "rssi_dbm"}``;
- the vendor cloud API (a stand-in, see docs): pages ``{"code": 0, "data": {"items": [...], "nextCursor"}}``
  with items ``{"sn", "collectTime" (Unix ms), "current", "voltage", "battery", "csq"}``.

Checks the pipeline makes anyway are left to it: a naive timestamp, NaN, a negative current or an unknown
device become readings here and are rejected there with the pipeline's own rule code.  What cannot even
become a reading (not JSON, a missing field, a non-number) is a `Problem` with a rule code for `sink.reject`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from collectors.readings import Kind, RawReading

TOPIC_PREFIX = "parkcarbon"
TOPIC_FILTER = f"{TOPIC_PREFIX}/+/bracelet/+/telemetry"  # what the collector subscribes to
SHOWN_BYTES = 80  # how much of an unreadable payload a rejection quotes
OPTIONAL = ("voltage_v", "battery_pct", "rssi_dbm")  # health fields, kept in RawReading.extra
VENDOR_FIELDS = {"voltage": "voltage_v", "battery": "battery_pct"}  # vendor name -> extra key
CSQ_UNKNOWN = 99  # 3GPP TS 27.007: "not known or not detectable"


@dataclass(frozen=True)
class Problem:
    """Input that did not become a reading (or lost a field), with the rule code for `sink.reject`."""

    code: str  # "payload.malformed", "reading.bad_timestamp", "reading.not_a_number"
    detail: str
    series: str = ""
    ts: str = ""
    value: str = ""


@dataclass
class Conversion:
    """What one payload gave: readings for `sink.submit`, problems for `sink.reject`."""

    readings: list[RawReading] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def topic_for(park: str, device: str) -> str:
    """The telemetry topic of one bracelet."""
    return f"{TOPIC_PREFIX}/{park}/bracelet/{device}/telemetry"


def topic_device(topic: str) -> str | None:
    """The device id in a telemetry topic, or None when the topic is not one."""
    parts = topic.split("/")
    if len(parts) == 5 and parts[0] == TOPIC_PREFIX and parts[2] == "bracelet" and parts[4] == "telemetry":
        return parts[3] or None
    return None


def shown(payload: bytes) -> str:
    """The first bytes of a payload, safe to quote in a rejection."""
    more = "..." if len(payload) > SHOWN_BYTES else ""
    return f"{payload[:SHOWN_BYTES]!r}{more}"


def convert_mqtt(payload: bytes, topic: str) -> Conversion:
    """One MQTT message (an object or an array of objects) -> current readings and problems."""
    out = Conversion()
    device = topic_device(topic)
    if device is None:
        out.problems.append(Problem("payload.malformed", f"topic {topic!r} is not {TOPIC_FILTER}"))
        return out
    try:
        doc = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        out.problems.append(Problem("payload.malformed", f"{topic}: not JSON ({exc}): {shown(payload)}",
                                    series=device))
        return out
    items = doc if isinstance(doc, list) else [doc]
    for n, item in enumerate(items):
        where = f"item {n} of {topic}" if isinstance(doc, list) else topic
        if not isinstance(item, dict):
            out.problems.append(Problem("payload.malformed", f"{where}: expected a JSON object, got "
                                        f"{type(item).__name__}: {shown(payload)}", series=device))
            continue
        _mqtt_item(item, device, where, f"mqtt:{topic}", out)
    return out


def _mqtt_item(item: dict[str, Any], topic_dev: str, where: str, source: str, out: Conversion) -> None:
    missing = [k for k in ("device", "ts", "current_a") if item.get(k) is None]
    if missing:
        out.problems.append(Problem("payload.malformed", f"{where}: missing {', '.join(missing)} in "
                                    f"{_json(item)}", series=str(item.get("device") or topic_dev)))
        return
    device = str(item["device"])
    if device != topic_dev:
        out.problems.append(Problem("payload.malformed", f"{where}: payload device {device!r} is not the topic's "
                                    f"device {topic_dev!r}", series=device, ts=str(item["ts"])))
        return
    ts = _iso_ts(item["ts"])
    if ts is None:
        out.problems.append(Problem("reading.bad_timestamp", f"{where}: ts {item['ts']!r} is not an ISO 8601 "
                                    "date and time", series=device, ts=str(item["ts"])))
        return
    _reading(device, ts, item["current_a"], "current_a", {key: item.get(key) for key in OPTIONAL},
             where, source, out)


def convert_vendor_page(body: bytes, serials: Mapping[str, str] | None = None,
                        source: str = "vendor") -> tuple[Conversion, str | None]:
    """One page of the vendor API -> (readings and problems, the next page's cursor or None).

    `serials` maps the vendor's serial numbers to device ids (default: the serial is the id).  A page
    that is not the documented shape raises `ValueError` (the caller rejects it and stops paging)."""
    try:
        doc = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not JSON ({exc}): {shown(body)}") from None
    data = doc.get("data") if isinstance(doc, dict) else None
    if not isinstance(data, dict) or doc.get("code") != 0 or not isinstance(data.get("items"), list):
        raise ValueError(f"not a telemetry page (expected code 0 and data.items): {shown(body)}")
    cursor = data.get("nextCursor")
    if cursor is not None and not isinstance(cursor, str):
        raise ValueError(f"nextCursor {cursor!r} is not a string: {shown(body)}")
    out = Conversion()
    for n, item in enumerate(data["items"]):
        where = f"item {n} of {source}"
        if not isinstance(item, dict) or item.get("sn") is None or item.get("collectTime") is None \
                or item.get("current") is None:
            out.problems.append(Problem("payload.malformed", f"{where}: expected sn, collectTime and current in "
                                        f"{_json(item)}"))
            continue
        sn = str(item["sn"])
        device = (serials or {}).get(sn, sn)
        ms = _number(item["collectTime"])
        if ms is None or not math.isfinite(ms):
            out.problems.append(Problem("reading.bad_timestamp", f"{where}: collectTime {item['collectTime']!r} "
                                        "is not Unix milliseconds", series=device, ts=str(item["collectTime"])))
            continue
        ts = datetime.fromtimestamp(ms / 1000, tz=UTC)
        extra = {name: item.get(key) for key, name in VENDOR_FIELDS.items()}
        extra["rssi_dbm"] = _csq_dbm(item.get("csq"))
        _reading(device, ts, item["current"], "current", extra, where, source, out)
    return out, cursor


def _reading(device: str, ts: datetime, raw_current: Any, name: str, raw_extra: dict[str, Any], where: str,
             source: str, out: Conversion) -> None:
    current = _number(raw_current)
    if current is None:
        out.problems.append(Problem("reading.not_a_number", f"{where}: {name} {raw_current!r} is not a number",
                                    series=device, ts=ts.isoformat(), value=repr(raw_current)))
        return
    extra = {}
    for key, raw in raw_extra.items():
        if raw is None:
            continue
        value = _number(raw)
        if value is None:  # keep the current, which is what we measure; say what was left out
            out.problems.append(Problem("payload.malformed", f"{where}: {key} {raw!r} is not a number; the reading "
                                        "is kept without it", series=device, ts=ts.isoformat(), value=repr(raw)))
        else:
            extra[key] = value
    # unit None: the measurement's own unit, ampere.  (park/units.py does not list "A" yet, and the store
    # rejects a unit it does not know.)
    out.readings.append(RawReading(device, ts, current, Kind.LEVEL, measurement="current", source=source,
                                   extra=extra))


def _number(raw: Any) -> float | None:
    """A JSON number, or a string holding one (some firmwares quote numbers); booleans are not numbers."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int | float):
        return float(raw)
    if isinstance(raw, str):
        try:
            return float(raw.strip())
        except ValueError:
            return None
    return None


def _csq_dbm(raw: Any) -> Any:
    """A modem's CSQ (0-31) as signal strength in dBm (-113 + 2 x CSQ); 99 means unknown.  Anything else is
    passed on as it came, for `_reading` to report."""
    csq = _number(raw)
    if csq is None:
        return raw
    return None if csq == CSQ_UNKNOWN else -113.0 + 2.0 * csq


def _iso_ts(raw: Any) -> datetime | None:
    """An ISO 8601 timestamp, naive ones included (the pipeline rejects those with its own rule)."""
    if not isinstance(raw, str):
        return None
    try:
        return datetime.fromisoformat(raw.strip())
    except ValueError:
        return None


def _json(item: Any) -> str:
    text = json.dumps(item, ensure_ascii=False, default=str)
    return text if len(text) <= 2 * SHOWN_BYTES else text[:2 * SHOWN_BYTES] + "..."
