"""The collector service: the configured sources, the pipeline, the spool and the store writer, run together
under one APScheduler scheduler until stopped.

Configured from the park file (Modbus meters: those with a `modbus://` address and a register-map `model`) and
the `[collect]` table of parkcarbon.toml:

    [collect.modbus]            # on by default when the park has Modbus meters
    interval_s = 60             # poll period per meter
    timeout_s = 3
    [collect.mqtt]              # equipment bracelets; off unless the table is present
    host = "127.0.0.1"
    port = 1883
    client_id = "parkcarbon-bracelets"
    receivers = 0               # N >= 1: N receiver processes on a shared subscription, a spool each
    [collect]
    writer_interval_s = 0.25    # the store writer's tick: it looks at each spool this often
    writer_max_wait_s = 5       # while readings keep arriving, it writes when 20 000 wait or 5 s have passed;
    writer_min_rows = 20000     # a look that finds nothing new for 0.8 tick (at least 0.2 s) writes what waits
    [collect.vendor_http]       # a bracelet vendor's cloud API; off unless present
    base_url = "https://vendor.example/"
    interval_s = 300
    serials = { "SN123" = "E001-W1-D1" }

Secrets come from the environment: PARKCARBON_MQTT_PASSWORD, PARKCARBON_VENDOR_TOKEN.

Each source's state (connected / retrying with the last error / last message time / readings counted) is logged
when it changes and kept in `collect_status.json` beside the spool (collectors/status.py), which the portal's
health endpoint and data-quality page read.  An unreachable broker is logged at every failed attempt, with the
reason and the attempt number; paho retries with back-off between `reconnect_min_s` and `reconnect_max_s`.

With `receivers = N` the bracelets are received by N separate processes (`run_receiver`), each subscribed to
`$share/parkcarbon/<topic>` (an MQTT shared subscription, Mosquitto 2: the broker hands each message to one of
them) with its own client id (`<client_id>-r<i>`), pipeline, spool (`spool.r<i>.db`) and status file
(`collect_status.r<i>.json`); this process's writer drains every spool into the store.  One Python process is
bound by its interpreter lock well below 10 000 messages/s (docs/benchmarks.md); processes are not.

The pipeline knows every meter's register size and plausible maximum (collectors/limits.py, from the park file
and register maps), and every finding it makes (resets, rollovers, jumps, gaps, spikes, backward steps,
conflicts, duplicates, late readings) is logged here with its series, time, source line, code and detail.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import socket
import threading
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from apscheduler.schedulers.background import BackgroundScheduler

from collectors.pipeline import Pipeline
from collectors.spool import Spool
from collectors.status import STATUS_FILE, StatusBoard
from collectors.writer import Writer
from park.model import Park
from park.store import TimeSeriesStore

log = logging.getLogger(__name__)


def _not_a_busy_writer(record: logging.LogRecord) -> bool:
    """APScheduler warns each time an interval job is due while its previous run is still going.  For the store
    writer that is the normal case under load (a drain of a big backlog outlasts the 0.5 s tick, and the running
    drain takes whatever arrived meanwhile), so those warnings are dropped; every other one is kept."""
    message = record.getMessage()
    return not ("maximum number of running instances reached" in message and "_drain_if_due" in message)


logging.getLogger("apscheduler.scheduler").addFilter(_not_a_busy_writer)


def log_events(events: list[dict]) -> None:
    """Log the pipeline's findings (resets, rollovers, gaps, spikes, duplicates ...): rejects and flags as
    warnings, infos as info, each with its series, time, source line, code and detail."""
    for e in events:
        level = logging.INFO if e["severity"] == "info" else logging.WARNING
        line = f" line {e['line']}" if e.get("line") is not None else ""
        estimate = f" ({e['estimated']:g} {e['unit']} estimated)" if e.get("estimated") else ""
        log.log(level, "%s %s at %s%s: %s %s%s", e["severity"], e["series"], e["ts"], line, e["code"],
                e["detail"], estimate)


class CollectConfigError(ValueError):
    """A [collect] setting that cannot be used."""


@dataclass
class CollectorService:
    park: Park
    store: TimeSeriesStore
    spool_path: Path
    config: dict = field(default_factory=dict)
    writer_interval_s: float = 0.25  # the tail of a stream is stored one to two ticks after it stops
    rollup_interval_s: float = 60.0
    status_interval_s: float = 2.0

    def __post_init__(self) -> None:
        known = {"modbus", "mqtt", "vendor_http", "writer_interval_s", "writer_min_rows", "writer_max_wait_s"}
        unknown = set(self.config) - known
        if unknown:
            raise CollectConfigError(f"[collect] has unknown key(s) {', '.join(sorted(unknown))}; "
                                     f"known: {', '.join(sorted(known))}")
        self.writer_interval_s = float(self.config.get("writer_interval_s", self.writer_interval_s))
        self.spool = Spool(self.spool_path)
        self.modbus_meters = [m for m in self.park.meters if m.model and (m.address or "").startswith("modbus://")]
        # limits (register sizes, plausible maxima) for every meter, from the park file and register maps
        self.pipeline = Pipeline(self.park.catalog(), self.spool, on_events=log_events)
        # nothing new for 0.8 tick (two missed 0.1 s flushes of an MQTT source at least): the flow has stopped
        self.writer = Writer(self.spool, self.store, min_rows=int(self.config.get("writer_min_rows", 20_000)),
                             max_wait_s=float(self.config.get("writer_max_wait_s", 5.0)),
                             quiet_s=max(0.2, 0.8 * self.writer_interval_s))
        self.scheduler = BackgroundScheduler(job_defaults={"max_instances": 1, "coalesce": True})
        self.sources: list = []
        self.receivers: list = []  # receiver processes (collect.mqtt.receivers)
        self.receiver_writers: list[Writer] = []
        self._receiver_stop = None
        self.status = StatusBoard(self.spool_path.with_name(STATUS_FILE))
        self._stopped = threading.Event()

    def start(self) -> CollectorService:
        cfg = self.config
        modbus = cfg.get("modbus", {})
        if self.modbus_meters and modbus.get("enabled", True):
            from collectors.sources.modbus import ModbusSource

            src = ModbusSource(self.modbus_meters, self.pipeline, interval_s=float(modbus.get("interval_s", 60)),
                               timeout_s=float(modbus.get("timeout_s", 3)),
                               batch_s=float(modbus.get("batch_s", 5)))
            src.start()
            self.sources.append(src)
            self.status.add(f"modbus {len(self.modbus_meters)} meters", "modbus", "running")
            log.info("polling %d Modbus meters every %s s", len(self.modbus_meters), src.interval_s)
        if "mqtt" in cfg:
            from collectors.sources.mqtt import MqttSettings

            mqtt_cfg = dict(cfg["mqtt"])
            receivers = int(mqtt_cfg.pop("receivers", 0))
            settings = MqttSettings(**mqtt_cfg)
            if receivers > 0:
                self._start_receivers(settings, receivers)
            else:
                name = f"mqtt {settings.host}:{settings.port}"
                self.status.add(name, "mqtt")
                log.info("connecting to MQTT broker %s:%s for %s", settings.host, settings.port, settings.topic)
                self.sources.append(observed_mqtt_source(self.pipeline, settings, self.status, name).start())
        if "vendor_http" in cfg:
            from collectors.sources.vendor_http import VendorHttpSource, VendorSettings

            vendor = dict(cfg["vendor_http"])
            interval = float(vendor.pop("interval_s", 300))
            src = VendorHttpSource(self.pipeline, VendorSettings(**vendor),
                                   state_path=self.spool_path.with_name("vendor_state.json"))
            src.schedule(self.scheduler, interval)
            self.sources.append(src)
            self.status.add(f"vendor_http {vendor.get('base_url', '')}", "vendor_http", "running")
        self.scheduler.add_job(self._drain_if_due, "interval", seconds=self.writer_interval_s, id="store-writer")
        self.scheduler.add_job(self.store.refresh_rollups, "interval", seconds=self.rollup_interval_s,
                               id="rollups")
        self.scheduler.add_job(self.write_status, "interval", seconds=self.status_interval_s, id="status")
        self.scheduler.start()
        return self

    def _start_receivers(self, settings, n: int) -> None:
        ctx = mp.get_context("spawn")
        self._receiver_stop = ctx.Event()
        log.info("starting %d MQTT receiver processes on $share/parkcarbon/%s at %s:%s", n, settings.topic,
                 settings.host, settings.port)
        for i in range(1, n + 1):
            spool_path = self.spool_path.with_name(f"{self.spool_path.stem}.r{i}{self.spool_path.suffix}")
            self.receiver_writers.append(Writer(Spool(spool_path), self.store, min_rows=self.writer.min_rows,
                                                max_wait_s=self.writer.max_wait_s, quiet_s=self.writer.quiet_s))
            proc = ctx.Process(target=run_receiver, name=f"mqtt-receiver-{i}",
                               args=(self.park, asdict(settings), i, str(spool_path),
                                     str(self.spool_path.with_name(f"collect_status.r{i}.json")), self._receiver_stop))
            proc.start()
            self.receivers.append(proc)

    def _drain_if_due(self) -> None:
        self.writer.drain_if_due()
        for writer in self.receiver_writers:
            writer.drain_if_due()
        for proc in self.receivers:
            if not proc.is_alive() and not self._stopped.is_set() and not getattr(proc, "_reported", False):
                proc._reported = True
                log.error("MQTT receiver process %s exited with code %s; its spool is still drained",
                          proc.name, proc.exitcode)

    def write_status(self) -> None:
        """Refresh every source's counts and stamp in the status file (states change as they happen)."""
        for src in self.sources:
            name = getattr(src, "status_name", None)
            if name is not None:
                src.sample_status()
        for state in self.status.states():
            self.status.update(state["source"], write=False)
        self.status.write()

    def stop(self) -> None:
        """Stop the sources (they hand over what they hold), then write what the spool holds, if the store can."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        for src in self.sources:
            stop = getattr(src, "stop", None) or getattr(src, "close", None)
            if stop:
                stop()
        if self._receiver_stop is not None:
            self._receiver_stop.set()
            for proc in self.receivers:
                proc.join(30)
                if proc.is_alive():
                    log.error("MQTT receiver %s did not stop within 30 s; terminating it", proc.name)
                    proc.terminate()
                    proc.join(5)
        self.scheduler.shutdown(wait=True)
        self.writer.drain()
        self.spool.close()
        for writer in self.receiver_writers:
            writer.drain()
            writer.spool.close()
        for state in self.status.states():
            self.status.update(state["source"], state="stopped", write=False)
        self.status.write()

    def run_forever(self) -> None:
        import signal

        done = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: done.set())
        try:
            done.wait()
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()


def _reach(host: str, port: int, timeout_s: float = 2.0) -> str:
    """Why a TCP connection to host:port fails now (paho's connect-failure callback does not say)."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return "the port answers, but the MQTT connection failed"
    except OSError as exc:
        return f"{type(exc).__name__}: {exc.strerror or exc}"


def observed_mqtt_source(sink, settings, board: StatusBoard, name: str):
    """An MqttSource that logs every connection failure and loss, and keeps its state on the status board."""
    from collectors.sources.mqtt import MqttSource

    class ObservedMqttSource(MqttSource):
        status_name = name

        def __init__(self) -> None:
            super().__init__(sink, settings)

        def _make_client(self):
            client = super()._make_client()
            client.on_connect_fail = self._on_connect_fail
            return client

        def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
            super()._on_connect(client, userdata, flags, reason_code, properties)
            if reason_code.is_failure:
                board.error(name, f"broker refused the connection: {reason_code}")
            else:
                board.update(name, state="connected", connects=self.connects)

        def _on_connect_fail(self, client, userdata) -> None:
            reason = _reach(settings.host, settings.port)
            retries = next((s["retries"] for s in board.states() if s["source"] == name), 0) + 1
            # logged before the status file counts it, so a reader of the file finds the log line already there
            log.warning("cannot reach MQTT broker %s:%s (%s); attempt %d failed, retrying in %g-%g s",
                        settings.host, settings.port, reason, retries, settings.reconnect_min_s,
                        settings.reconnect_max_s)
            board.error(name, f"cannot connect: {reason}")

        def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
            super()._on_disconnect(client, userdata, flags, reason_code, properties)
            if not self._stop.is_set():
                board.error(name, f"connection lost: {reason_code}")

        def sample_status(self) -> None:
            last = self.last_message_ns
            at = datetime.fromtimestamp(last / 1e9, UTC).isoformat(timespec="milliseconds") if last else None
            board.update(name, write=False, readings=self.stats.submitted, messages=self.stats.received,
                         last_message_at=at)

    return ObservedMqttSource()


def run_receiver(park: Park, settings_kwargs: dict, index: int, spool_path: str, status_file: str, stop,
                 status_interval_s: float = 2.0) -> None:
    """One MQTT receiver process: a shared subscription, its own pipeline and spool, until `stop` is set."""
    from collectors.sources.mqtt import MqttSettings

    logging.basicConfig(level=logging.INFO,
                        format=f"%(asctime)s receiver {index} %(levelname)s %(name)s: %(message)s")
    base = MqttSettings(**settings_kwargs)
    settings = replace(base, topic=f"$share/parkcarbon/{base.topic}", client_id=f"{base.client_id}-r{index}")
    spool = Spool(spool_path)
    board = StatusBoard(status_file)
    name = f"mqtt {base.host}:{base.port} receiver {index}"
    board.add(name, "mqtt")
    src = observed_mqtt_source(Pipeline(park.catalog(), spool, on_events=log_events), settings, board, name).start()
    try:
        while not stop.wait(status_interval_s):
            src.sample_status()
            board.update(name, write=False)
            board.write()
    finally:
        src.stop()
        src.sample_status()
        spool.close()
        board.update(name, state="stopped")
