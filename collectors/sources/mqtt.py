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
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from collectors.converters.bracelet import TOPIC_FILTER, convert_mqtt
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


@dataclass(frozen=True)
class _Message:
    generation: int  # which connection it came on
    mid: int
    qos: int
    topic: str
    payload: bytes


@dataclass
class _Buffer:
    messages: list[_Message] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class MqttSource:
    """Subscribes to bracelet telemetry and feeds a `Sink`.  `start()` returns at once; `stop()` flushes."""

    def __init__(self, sink: Sink, settings: MqttSettings | None = None) -> None:
        self.sink = sink
        self.settings = settings or MqttSettings()
        self.stats = MqttStats()
        self.connects = 0  # successful connections so far (a reconnect adds one)
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

    def _make_client(self) -> mqtt.Client:
        s = self.settings
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=s.client_id, clean_session=False,
                             protocol=mqtt.MQTTv311, manual_ack=True)
        if s.username:
            client.username_pw_set(s.username, os.environ.get(s.password_env))
        client.reconnect_delay_set(s.reconnect_min_s, s.reconnect_max_s)  # type: ignore[arg-type] (floats work)
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
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
        with self._buffer.lock:
            self._buffer.messages.append(_Message(self._generation, msg.mid, msg.qos, msg.topic, msg.payload))
            full = len(self._buffer.messages) >= self.settings.batch_size
        self.stats.received += 1
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
        readings, problems = [], []
        for m in batch:
            conv = convert_mqtt(m.payload, m.topic)
            readings += conv.readings
            problems += [(m.topic, p) for p in conv.problems]
        try:
            if readings:
                self.sink.submit(readings)
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
                          len(readings), self._retry_s)
            return False
        self._retry_s = 0.0
        self.stats.submitted += len(readings)
        self.stats.rejected += len(problems)
        for r in readings:
            self._devices[r.series] = DeviceStatus(r.ts, r.value, r.extra.get("voltage_v"), r.extra.get("battery_pct"),
                                                   r.extra.get("rssi_dbm"))
        generation = self._generation
        for m in batch:  # in the order received, as MQTT asks
            if m.qos > 0 and m.generation == generation:
                self._client.ack(m.mid, m.qos)
                self.stats.acked += 1
        return True


__all__ = ["MqttSource", "MqttSettings", "MqttStats", "DeviceStatus"]
