"""Equipment bracelets over MQTT: subscribe to their telemetry, convert it, hand it to the pipeline in batches.

Delivery is at least once, end to end:
- QoS 1 subscription on a persistent session (fixed client id, MQTT 3.1.1 ``clean_session=False``): while
  the collector is away the broker queues the bracelets' messages for it;
- manual acknowledgement (paho 2.x ``Client(manual_ack=True)`` + ``client.ack(mid, qos)``): a message is
  acknowledged only after ``sink.submit`` (the pipeline's durable spool write) returned, so a crash before
  that makes the broker redeliver it rather than lose it.  Redelivered duplicates are harmless: a level
  reading of the same (device, ts) is written once by the store;
- reconnection with exponential back-off (paho's ``reconnect_delay_set``).
An acknowledgement is sent only on the connection its message came on: after a reconnect the broker
resends every unacknowledged message anyway, and an old packet id may name another message on a new session.

CPU per message matters at 10 000 messages/s (docs/benchmarks.md), so the hot path does little per message:
- paho reads each packet with three or more ``recv()`` calls (its first byte, the remaining length byte by
  byte, then the rest) and one packet per wake-up of its network loop.  `_BufferedSocket` reads up to
  `read_buffer_bytes` per system call and serves paho's small reads from memory; paho's loop asks the socket's
  ``pending()`` (meant for TLS) and then does not wait in ``select()``, and `_Client.loop_read` handles every
  buffered packet in one call;
- ``on_message`` only appends the raw message; decoding and validation run per batch in the flush thread,
  with a fast path for the usual well-formed payload (`_fast_columns`, which hands anything else to the
  converter's `convert_mqtt`, so a problem is reported exactly as before), and the batch reaches a pipeline as
  one columnar frame (`Pipeline.submit_frames`) instead of one `RawReading` per message;
- the acknowledgements of a batch leave as one write (`_Client.ack_many`) instead of one packet, one wake-up
  of the network thread and one ``send()`` each.
"""

from __future__ import annotations

import logging
import os
import ssl
import struct
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import orjson
import paho.mqtt.client as mqtt
import pandas as pd
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from collectors.converters.bracelet import OPTIONAL, TOPIC_FILTER, Problem, convert_mqtt, shown, topic_device
from collectors.readings import Kind, RawReading
from collectors.sources import Sink

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MqttSettings:
    """Where the broker is and how the collector behaves.  The password comes from the environment."""

    host: str = "127.0.0.1"
    port: int = 1883
    client_id: str = "parkcarbon-bracelets"  # fixed: it names the persistent session at the broker
    topic: str = TOPIC_FILTER
    username: str | None = None
    password_env: str = "PARKCARBON_MQTT_PASSWORD"
    keepalive_s: int = 30
    flush_interval_s: float = 0.1  # a batch goes to the sink at least this often ...
    batch_size: int = 500  # ... or as soon as this many messages wait
    reconnect_min_s: float = 1.0
    reconnect_max_s: float = 60.0
    sink_retry_max_s: float = 30.0  # back-off cap while the sink (spool) fails
    read_buffer_bytes: int = 256 * 1024  # bytes read per recv() from the broker (0: paho's own reads)


@dataclass(frozen=True)
class DeviceStatus:
    """The last reading heard from one bracelet, with its health fields."""

    ts: datetime
    current_a: float
    voltage_v: float | None = None
    battery_pct: float | None = None
    rssi_dbm: float | None = None


@dataclass
class MqttStats:
    received: int = 0  # messages
    submitted: int = 0  # readings handed to sink.submit
    rejected: int = 0  # problems handed to sink.reject
    acked: int = 0  # QoS 1 messages acknowledged
    sink_failures: int = 0  # batches the sink refused (kept unacknowledged and retried)
    # CPU seconds of the flush thread (time.thread_time) per step, for the benchmark's CPU per message:
    cpu_convert_s: float = 0.0  # payloads -> columns (JSON decode, checks)
    cpu_submit_s: float = 0.0  # sink.submit: validation, normalisation, spool append
    cpu_ack_s: float = 0.0  # device status and acknowledgements


# One message as on_message keeps it: (generation = the connection it came on, mid, qos, topic, payload).
_Message = tuple[int, int, int, str, bytes]


@dataclass
class _Buffer:
    messages: list[_Message] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


PUBACK = 0x40
_paho_time = getattr(mqtt, "time_func", time.monotonic)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


class _BufferedSocket:
    """The broker connection with a receive buffer: one recv() of up to `size` bytes serves many of paho's
    small reads.  Everything but recv() and pending() is the socket's own."""

    def __init__(self, sock, size: int) -> None:
        self._sock = sock
        self._size = size
        self._buf = b""
        self._pos = 0

    def recv(self, n: int) -> bytes:
        buf, pos = self._buf, self._pos
        if pos >= len(buf):
            buf = self._sock.recv(max(n, self._size))  # BlockingIOError and a closed connection (b"") pass through
            pos = 0
            if len(buf) <= n:
                self._buf, self._pos = b"", 0
                return buf
        end = pos + n
        self._buf, self._pos = buf, end
        return buf[pos:end]

    def fill(self) -> bool:
        """Read what the socket has when nothing is buffered; False when it gives nothing now (or fails: paho's
        own read then meets the error and handles it)."""
        if self._pos < len(self._buf):
            return True
        try:
            buf = self._sock.recv(self._size)
        except (BlockingIOError, ssl.SSLWantReadError):
            return False
        except OSError:
            return False
        if not buf:  # closed by the broker: paho's next read sees it too
            return False
        self._buf, self._pos = buf, 0
        return True

    def take_publishes(self) -> list[tuple[int, int, str, bytes]]:
        """The complete QoS 0/1 PUBLISH packets at the head of the buffer (see `split_publishes`)."""
        messages, self._pos = split_publishes(self._buf, self._pos)
        return messages

    def pending(self) -> int:
        """Bytes held here (and, for TLS, in the SSL layer) that select() would not report."""
        inner = self._sock.pending() if hasattr(self._sock, "pending") else 0
        return max(len(self._buf) - self._pos, 0) + inner

    def __getattr__(self, name: str):
        return getattr(self._sock, name)


def split_publishes(buf: bytes, pos: int) -> tuple[list[tuple[int, int, str, bytes]], int]:
    """MQTT 3.1.1 QoS 0/1 PUBLISH packets from `buf` at `pos`, up to the first packet that is another type, not
    complete yet, QoS 2, or not well formed (its topic not UTF-8, its lengths inconsistent), which is left for
    paho to read and judge.  Returns [(mid (0 for QoS 0), qos, topic, payload)] and the position after them."""
    out = []
    end = len(buf)
    while pos < end:
        first = buf[pos]
        qos = (first >> 1) & 3
        if first & 0xF0 != 0x30 or qos > 1:
            break
        i, mult, length = pos + 1, 1, 0
        while True:  # remaining length: 1 to 4 bytes, 7 bits each
            if i >= end or mult > 128 ** 3:
                return out, pos
            byte = buf[i]
            i += 1
            length += (byte & 127) * mult
            mult *= 128
            if not byte & 128:
                break
        stop = i + length
        if stop > end or length < 2:
            break
        topic_end = i + 2 + ((buf[i] << 8) | buf[i + 1])
        body = topic_end + 2 * qos
        if body > stop:
            break
        try:
            topic = buf[i + 2:topic_end].decode("utf-8")
        except UnicodeDecodeError:
            break
        mid = (buf[topic_end] << 8) | buf[topic_end + 1] if qos else 0
        out.append((mid, qos, topic, buf[body:stop]))
        pos = stop
    return out, pos


class _Client(mqtt.Client):
    """paho's client with buffered reads and one write for a batch's acknowledgements.  Both rest on paho 2.x
    internals (`_create_socket`, `_packet_read` via `loop_read`, `_packet_queue`); pyproject pins paho < 3 and
    the tests run against a real Mosquitto."""

    read_buffer_bytes = 0
    max_packets_per_read = 5000  # then let the loop write acknowledgements and keep the connection alive
    on_publishes = None  # callable(list of (mid, qos, topic, payload)), called on the network thread

    def _create_socket(self):
        sock = super()._create_socket()
        return _BufferedSocket(sock, self.read_buffer_bytes) if self.read_buffer_bytes > 0 else sock

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        """Handle every packet already read, not one per wake-up of the loop; the QoS 0/1 PUBLISH packets among
        them go in one list to `on_publishes` (when set) instead of one `MQTTMessage` and `on_message` each.
        Any other packet, or one that arrived only in part, is read by paho as before."""
        sock = self._sock
        if not isinstance(sock, _BufferedSocket):
            return super().loop_read(max_packets)
        fast = self.on_publishes is not None and self._manual_ack and self._protocol != mqtt.MQTTv5
        rc, n = MQTTErrorCode.MQTT_ERR_SUCCESS, 0
        while n < self.max_packets_per_read:
            if fast and self._in_packet["command"] == 0:  # between packets: a run of PUBLISH packets is ours
                if not sock.fill():
                    return super().loop_read(max_packets) if n == 0 else rc
                messages = sock.take_publishes()
                if messages:
                    with self._msgtime_mutex:
                        self._last_bytes_received = _paho_time()  # what paho's keepalive compares
                    self.on_publishes(messages)
                    n += len(messages)
                    if sock.pending() == 0:
                        return rc
                    continue
            rc = super().loop_read(max_packets)
            n += 1
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS or sock is not self._sock or sock.pending() == 0:
                return rc
        return rc

    def ack_many(self, mids: list[int]) -> None:
        """Acknowledge QoS 1 messages (in the order received) with one queued write: the PUBACK packets
        concatenated, as `ack(mid, 1)` would send them one by one."""
        if not mids:
            return
        packet = b"".join([struct.pack("!BBH", PUBACK, 2, mid) for mid in mids])
        self._packet_queue(PUBACK, packet, 0, 0)


class MqttSource:
    """Subscribes to bracelet telemetry and feeds a `Sink`.  `start()` returns at once; `stop()` flushes."""

    def __init__(self, sink: Sink, settings: MqttSettings | None = None) -> None:
        self.sink = sink
        self.settings = settings or MqttSettings()
        self.stats = MqttStats()
        self.connects = 0  # successful connections so far (a reconnect adds one)
        self.last_message_ns = 0  # time.time_ns() when the last message arrived
        self._devices: dict[str, DeviceStatus] = {}
        self._buffer = _Buffer()
        self._generation = 0
        self._ready = threading.Event()  # connected and subscribed
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._retry_at = 0.0
        self._retry_s = 0.0
        self._flusher: threading.Thread | None = None
        self._client = self._make_client()

    def _make_client(self) -> _Client:
        s = self.settings
        client = _Client(CallbackAPIVersion.VERSION2, client_id=s.client_id, clean_session=False,
                         protocol=mqtt.MQTTv311, manual_ack=True)
        client.read_buffer_bytes = s.read_buffer_bytes
        if s.username:
            client.username_pw_set(s.username, os.environ.get(s.password_env))
        client.reconnect_delay_set(s.reconnect_min_s, s.reconnect_max_s)  # type: ignore[arg-type] (floats work)
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_publishes = self._on_publishes
        return client

    # ---- life cycle ----------------------------------------------------------------------------------
    def start(self) -> MqttSource:
        """Connect in the background (retrying until the broker answers) and start flushing."""
        s = self.settings
        self._client.connect_async(s.host, s.port, keepalive=s.keepalive_s)
        self._client.loop_start()
        self._flusher = threading.Thread(target=self._run, name=f"mqtt-flush-{s.client_id}", daemon=True)
        self._flusher.start()
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        """Submit and acknowledge what has arrived, then disconnect (the persistent session stays)."""
        self._stop.set()
        self._wake.set()
        if self._flusher is not None:
            self._flusher.join(timeout_s)
        self._client.disconnect()
        self._client.loop_stop()

    @property
    def connected(self) -> bool:
        return self._ready.is_set()

    def wait_ready(self, timeout_s: float) -> bool:
        """Wait until connected and subscribed."""
        return self._ready.wait(timeout_s)

    @property
    def devices(self) -> dict[str, DeviceStatus]:
        """The last status heard from each bracelet (a copy)."""
        return dict(self._devices)

    # ---- paho callbacks (network thread) -------------------------------------------------------------
    def _on_connect(self, client: mqtt.Client, userdata: object, flags: mqtt.ConnectFlags,
                    reason_code: mqtt.ReasonCode, properties: mqtt.Properties | None) -> None:
        if reason_code.is_failure:
            log.error("MQTT broker %s:%s refused the connection: %s", self.settings.host, self.settings.port,
                      reason_code)
            return
        self._generation += 1
        self.connects += 1
        log.info("connected to MQTT broker %s:%s (session present: %s)", self.settings.host, self.settings.port,
                 flags.session_present)
        client.subscribe(self.settings.topic, qos=1)  # again on every connect: the broker may have lost the session

    def _on_subscribe(self, client: mqtt.Client, userdata: object, mid: int, reason_codes: list[mqtt.ReasonCode],
                      properties: mqtt.Properties | None) -> None:
        if any(rc.is_failure for rc in reason_codes):
            log.error("MQTT broker refused the subscription to %s: %s", self.settings.topic, reason_codes)
            return
        self._ready.set()

    def _on_disconnect(self, client: mqtt.Client, userdata: object, flags: mqtt.DisconnectFlags,
                       reason_code: mqtt.ReasonCode, properties: mqtt.Properties | None) -> None:
        self._ready.clear()
        if not self._stop.is_set():
            log.warning("lost the MQTT broker %s:%s (%s); reconnecting with back-off", self.settings.host,
                        self.settings.port, reason_code)

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        # As little as possible here (the network thread): decoding waits for the batch.
        buffer = self._buffer
        with buffer.lock:
            buffer.messages.append((self._generation, msg.mid, msg.qos, msg.topic, msg.payload))
            full = len(buffer.messages) >= self.settings.batch_size
        self.stats.received += 1
        self.last_message_ns = time.time_ns()
        if full:
            self._wake.set()

    def _on_publishes(self, messages: list[tuple[int, int, str, bytes]]) -> None:
        """Many messages at once (`_Client.loop_read`): the same as `_on_message` for each."""
        generation = self._generation
        buffer = self._buffer
        with buffer.lock:
            buffer.messages += [(generation, mid, qos, topic, payload) for mid, qos, topic, payload in messages]
            full = len(buffer.messages) >= self.settings.batch_size
        self.stats.received += len(messages)
        self.last_message_ns = time.time_ns()
        if full:
            self._wake.set()

    # ---- flushing (own thread) ---------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.settings.flush_interval_s)
            self._wake.clear()
            if time.monotonic() >= self._retry_at:
                self._flush()
        self._flush()

    def _flush(self) -> bool:
        """Convert what has arrived, submit it, reject what is unreadable, then acknowledge; False when the
        sink failed (the messages stay buffered and unacknowledged)."""
        with self._buffer.lock:
            batch, self._buffer.messages = self._buffer.messages, []
        if not batch:
            return True
        t0 = time.thread_time()
        cols, problems = _fast_columns(batch)
        t1 = time.thread_time()
        self.stats.cpu_convert_s += t1 - t0
        n = len(cols.series)
        try:
            if n:
                submit_frames = getattr(self.sink, "submit_frames", None)
                if submit_frames is not None:  # a pipeline: the batch as one frame
                    submit_frames([("current", Kind.LEVEL, cols.frame())])
                else:
                    self.sink.submit(cols.readings())
            for topic, p in problems:
                self.sink.reject(source=f"mqtt:{topic}", code=p.code, detail=p.detail, series=p.series, ts=p.ts,
                                 value=p.value, measurement="current")
        except Exception:
            with self._buffer.lock:
                self._buffer.messages[:0] = batch
            self.stats.sink_failures += 1
            self._retry_s = min(max(2 * self._retry_s, self.settings.flush_interval_s), self.settings.sink_retry_max_s)
            self._retry_at = time.monotonic() + self._retry_s
            log.exception("the sink refused %d bracelet readings; they stay unacknowledged, retry in %.1f s",
                          n, self._retry_s)
            return False
        t2 = time.thread_time()
        self.stats.cpu_submit_s += t2 - t1
        self._retry_s = 0.0
        self.stats.submitted += n
        self.stats.rejected += len(problems)
        last = {s: i for i, s in enumerate(cols.series)}  # each device's last reading of the batch
        for series, i in last.items():
            extra = cols.extra[i]
            self._devices[series] = DeviceStatus(cols.ts[i], cols.value[i], extra.get("voltage_v"),
                                                 extra.get("battery_pct"), extra.get("rssi_dbm"))
        generation = self._generation
        mids = [m[1] for m in batch if m[2] == 1 and m[0] == generation]  # in the order received, as MQTT asks
        others = [m for m in batch if m[2] > 1 and m[0] == generation]
        if isinstance(self._client, _Client) and hasattr(self._client, "_packet_queue"):
            self._client.ack_many(mids)
        else:
            for mid in mids:
                self._client.ack(mid, 1)
        for m in others:
            self._client.ack(m[1], m[2])
        self.stats.acked += len(mids) + len(others)
        self.stats.cpu_ack_s += time.thread_time() - t2
        return True


@dataclass
class _Columns:
    """Readings of a batch as columns (all current, level readings)."""

    series: list[str] = field(default_factory=list)
    ts: list[datetime] = field(default_factory=list)
    micros: list[int | None] = field(default_factory=list)  # ts as UTC microseconds since the epoch (None: naive)
    value: list[float] = field(default_factory=list)
    source: list[str] = field(default_factory=list)
    extra: list[dict] = field(default_factory=list)

    def add(self, series: str, ts: datetime, micros: int | None, value: float, source: str, extra: dict) -> None:
        self.series.append(series)
        self.ts.append(ts)
        self.micros.append(micros)
        self.value.append(value)
        self.source.append(source)
        self.extra.append(extra)

    def frame(self) -> pd.DataFrame:
        """What `Pipeline.submit` would build from the same readings, with the times already UTC."""
        n = len(self.series)
        if None in self.micros:  # a naive time among them: let validation judge each one
            ts = pd.Series(self.ts, dtype=object)
        else:
            ts = pd.Series(pd.to_datetime(self.micros, unit="us", utc=True)).astype("datetime64[ns, UTC]")
        return pd.DataFrame({
            "ts": ts,
            "series": pd.Series(self.series, dtype=object), "value": pd.Series(self.value, dtype="float64"),
            "quality": pd.Series([None] * n, dtype=object), "line": pd.Series([None] * n, dtype=object),
            "source": pd.Series(self.source, dtype=object)})

    def readings(self) -> list[RawReading]:
        return [RawReading(s, ts, v, Kind.LEVEL, measurement="current", source=src, extra=x)
                for s, ts, v, src, x in zip(self.series, self.ts, self.value, self.source, self.extra, strict=True)]


_loads = orjson.loads
_fromiso = datetime.fromisoformat
_MAX_MICROS = 9_200_000_000_000_000  # about 2261-04-11: a time beyond this cannot be held in nanoseconds


def _convert(payload: bytes, topic: str):
    """`convert_mqtt`, with anything it cannot handle (say an integer too large for a float) a problem too:
    one strange payload must not stop the batch, which would then never be acknowledged."""
    try:
        conv = convert_mqtt(payload, topic)
    except Exception as exc:  # noqa: BLE001
        return [], [Problem("payload.malformed", f"{topic}: unreadable ({type(exc).__name__}: {exc}): "
                                                 f"{shown(payload)}", series=topic_device(topic) or "")]
    return [(r.series, r.ts, r.value, r.source, r.extra) for r in conv.readings], conv.problems


def _fast_columns(batch: list[_Message]) -> tuple[_Columns, list]:
    """Readings and problems of a batch of messages, as `convert_mqtt` gives them message by message.  The usual
    payload (one JSON object with the topic's device, an ISO time with an offset, numbers) is read here with
    few checks, by orjson; any other is handed to `convert_mqtt` (the standard library's json), so every
    problem is found and worded by the converter, and what orjson refuses but json reads (NaN) reads as before."""
    cols, problems = _Columns(), []
    series, stamps, micros, values, sources, extras = cols.series, cols.ts, cols.micros, cols.value, cols.source, \
        cols.extra
    devices: dict[str, str | None] = {}
    for _, _, _, topic, payload in batch:
        device = devices.get(topic, "")
        if device == "":
            device = devices[topic] = topic_device(topic)
        try:
            item = _loads(payload)
            ts = _fromiso(item["ts"].strip())
            current = item["current_a"]
            if (device is None or type(item) is not dict or item["device"] != device or ts.tzinfo is None
                    or type(current) not in (float, int)):
                raise ValueError
            extra = {}
            for key in OPTIONAL:
                v = item.get(key)
                if v is not None:
                    if type(v) not in (float, int):
                        raise ValueError
                    extra[key] = float(v)
            us = (ts - _EPOCH) // _MICROSECOND
            if not -_MAX_MICROS < us < _MAX_MICROS:
                raise ValueError
            value = float(current)
        except Exception:  # noqa: BLE001 - anything unusual: the converter decides, and words the problem
            _slow(topic, payload, cols, problems)
            continue
        series.append(device)
        stamps.append(ts)
        micros.append(us)
        values.append(value)
        sources.append(f"mqtt:{topic}")
        extras.append(extra)
    return cols, problems


def _slow(topic: str, payload: bytes, cols: _Columns, problems: list) -> None:
    """One message through the converter."""
    readings, found = _convert(payload, topic)
    problems += [(topic, p) for p in found]
    for series, ts, value, source, extra in readings:
        if ts.tzinfo is None:  # the pipeline rejects it, with its own rule
            cols.add(series, ts, None, value, source, extra)
            continue
        us = (ts - _EPOCH) // _MICROSECOND
        if not -_MAX_MICROS < us < _MAX_MICROS:
            problems.append((topic, Problem("reading.bad_timestamp", f"{topic}: ts {ts.isoformat()} is outside "
                                            "the years 1678-2261 the store can hold", series=series,
                                            ts=ts.isoformat())))
            continue
        cols.add(series, ts, us, value, source, extra)


__all__ = ["MqttSource", "MqttSettings", "MqttStats", "DeviceStatus"]
