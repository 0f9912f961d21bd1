"""The demo park: synthetic readings up to now, and the carbon records a real park would enter by hand
(monthly output value and product output, quota plans and allocations, a green-certificate purchase), so that
every page has something true to show.  Only `parkcarbon demo` calls this."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sqlalchemy import Engine

from carbon import records
from carbon.pipeline import account_park
from carbon.quota import QuotaPlan
from park.model import Park
from park.store import TimeSeriesStore

# Output value per kWh of electricity by industry (CNY/kWh): plausible orders of magnitude for the demo only.
VALUE_PER_KWH = {"steel_structures": 6.0, "textile_dyeing": 8.0, "food_processing": 15.0, "electronics": 30.0,
                 "chemicals": 7.0, "paper": 5.0, "auto_parts": 12.0, "cold_chain": 9.0}
# Allowances as a share of the year's projected emissions: some enterprises in surplus, one heading for deficit.
ALLOWANCE_SHARE = [1.25, 1.05, 0.92, 1.4, 0.85, 1.1, 1.0, 1.3]


def fill_readings(store: TimeSeriesStore, park: Park, days: int, now: pd.Timestamp | None = None) -> int:
    """Synthetic readings up to now for whatever of the last `days` days the store lacks."""
    from park.synth import synth_readings

    now = (now or pd.Timestamp.now(tz="UTC")).floor("15min")
    start = (now.tz_convert(park.tz) - pd.DateOffset(days=days)).floor("D")
    latest = store.latest("energy")
    if len(latest):
        start = max(start, latest["ts"].min() + pd.Timedelta("15min"))
    if start >= now:
        return 0  # already up to date
    written = 0
    for frame in synth_readings(park, start, now, seed=2024, gap_rate=0.002):
        written += store.write("energy", frame, source="demo").written
    return written + fill_currents(store, park, min(days, 14), now)


def fill_currents(store: TimeSeriesStore, park: Park, days: int, now: pd.Timestamp) -> int:
    """Synthetic bracelet currents (one a minute per device) for the last `days` days the store lacks."""
    from park.synth import synth_currents

    if not park.devices:
        return 0
    start = (now.tz_convert(park.tz) - pd.DateOffset(days=days)).floor("D")
    latest = store.latest("current")
    if len(latest):
        start = max(start, latest["ts"].min() + pd.Timedelta("1min"))
    if start >= now:
        return 0
    return sum(store.write("current", frame, source="demo").written
               for frame in synth_currents(park, start, now, seed=2024, gap_rate=0.001))


def _free_port(host: str) -> int:
    import socket

    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _modbus_meters(park: Park) -> list:
    return [m for m in park.meters if m.model and (m.address or "").startswith("modbus://")]


def _move_modbus(park: Park, port: int) -> Park:
    """The park with its Modbus meters' addresses moved to `port` (same host and unit)."""
    from dataclasses import replace

    from collectors.sources.modbus import ModbusAddress

    def moved(m):
        if m not in modbus:
            return m
        a = ModbusAddress.parse(m.address)
        return replace(m, address=f"modbus://{a.host}:{port}/{a.unit}")

    modbus = set(_modbus_meters(park))
    return replace(park, meters=tuple(moved(m) for m in park.meters))


def serve_modbus(park: Park, log) -> tuple[Park, list]:
    """Simulated Modbus meters for the park's Modbus meters: on their configured port, else (port taken) on a free
    one, with the park's addresses moved there (logged).  Returns the park the collector must poll and the
    simulators; ([], park) when no simulator can be served at all (the meters are then simulated like the others)."""
    from collectors.simulator.modbus_meters import serve_park

    if not _modbus_meters(park):
        return park, []
    try:
        return park, serve_park(park)
    except (OSError, RuntimeError, TimeoutError) as exc:
        hosts = {m.address.split("//", 1)[1].rsplit(":", 1)[0] for m in _modbus_meters(park)}
        if len(hosts) != 1:
            log.warning("demo: cannot serve the simulated Modbus meters (%s)", exc)
            return park, []
        port = _free_port(hosts.pop())
        log.warning("demo: the simulated Modbus meters' port is taken (%s); serving them on port %d instead", exc, port)
        moved = _move_modbus(park, port)
        try:
            return moved, serve_park(moved)
        except (OSError, RuntimeError, TimeoutError) as exc2:
            log.warning("demo: cannot serve the simulated Modbus meters on port %d either (%s)", port, exc2)
            return park, []


class LiveFeed:
    """Keeps every meter and bracelet of the demo live: every `interval_s` it writes the synthetic readings of the
    complete quarter hours (and currents of the complete minutes) since the last write, for the meters no
    collector polls and for every bracelet, through the store's validating write.  Same data as the history
    (park.synth, same seed), so the live figures continue the history seamlessly.

    `currents`: where the bracelets' currents go instead of the store (a frame ts, series, value each tick): the
    MQTT publisher when a broker runs (`MqttBracelets`), so they reach the store through the real MQTT source."""

    def __init__(self, park: Park, store: TimeSeriesStore, skip_meters: set[str], interval_s: float,
                 clock=None, currents=None) -> None:
        import threading

        self.park, self.store, self.interval_s = park, store, interval_s
        self.currents = currents or (lambda frame: self.store.write("current", frame, source="demo-live").written)
        self.meters = {m.id for m in park.meters} - skip_meters
        self.clock = clock or (lambda: pd.Timestamp.now(tz="UTC"))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-live-feed", daemon=True)
        now = self.clock()
        self.energy_since = self._since("energy", self.meters, now.floor("15min"), "15min")
        self.current_since = self._since("current", {d.id for d in park.devices}, now.floor("1min"), "1min")

    def _since(self, measurement: str, series: set[str], default: pd.Timestamp, step: str) -> pd.Timestamp:
        latest = self.store.latest(measurement)
        if len(latest):
            latest = latest[latest["series"].isin(series)]
        if not len(latest):
            return default
        return pd.Timestamp(latest["ts"].min()).tz_convert("UTC") + pd.Timedelta(step)

    def tick(self, now: pd.Timestamp | None = None) -> int:
        """Write what became complete since the last tick; returns the rows written."""
        from park.synth import synth_currents, synth_readings

        now = now or self.clock()
        written = 0
        end = now.floor("15min")
        if self.meters and end > self.energy_since:
            for frame in synth_readings(self.park, self.energy_since, end, seed=2024, chunk="day", gap_rate=0.002):
                frame = frame[frame["series"].astype(str).isin(self.meters)]
                if len(frame):
                    written += self.store.write("energy", frame, source="demo-live").written
            self.energy_since = end
        end = now.floor("1min")
        if self.park.devices and end > self.current_since:
            for frame in synth_currents(self.park, self.current_since, end, seed=2024, gap_rate=0.001):
                written += self.currents(frame)
            self.current_since = end
        return written

    def _run(self) -> None:
        import logging

        log = logging.getLogger("parkcarbon.demo")
        while not self._stop.wait(self.interval_s):
            try:
                self.tick()
            except Exception:  # keep the demo alive; the next tick writes what this one missed
                log.exception("demo: live feed failed; retrying at the next tick")

    def start(self) -> LiveFeed:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)


# Where the demo looks for an MQTT broker ("host:port"; "off" never uses one).  The demo never requires a broker:
# without one reachable its bracelets are simulated through the store's validating write instead.
DEMO_MQTT_ENV = "PARKCARBON_DEMO_MQTT"
DEFAULT_DEMO_MQTT = "127.0.0.1:1883"
DEMO_MQTT_CLIENT = "parkcarbon-demo-bracelets"  # the demo collector's persistent session at the broker


def mqtt_address(value: str | None = None) -> tuple[str, int] | None:
    """The broker the demo should try: `value`, else $PARKCARBON_DEMO_MQTT, else 127.0.0.1:1883; None for "off"
    (or "", "no", "none").  A value without a port means port 1883; a port that is not a number is an error."""
    import os

    value = (value if value is not None else os.environ.get(DEMO_MQTT_ENV, DEFAULT_DEMO_MQTT)).strip()
    if value.lower() in ("", "off", "no", "none"):
        return None
    host, sep, port = value.rpartition(":")
    if not sep:
        return value, 1883
    try:
        return host, int(port)
    except ValueError:
        raise ValueError(f"{DEMO_MQTT_ENV}={value!r}: expected host:port (or 'off')") from None


def broker_reachable(address: tuple[str, int] | None, timeout_s: float = 1.0) -> bool:
    """Whether something accepts TCP connections at the broker's address (a quick probe before subscribing)."""
    import socket

    if address is None:
        return False
    try:
        with socket.create_connection(address, timeout=timeout_s):
            return True
    except OSError:
        return False


class MqttBracelets:
    """The demo's bracelets on the real path: each tick's synthetic currents (the `LiveFeed`'s, park.synth) are
    published as telemetry (docs/bracelets.md: a JSON array of the device's readings, QoS 1, topic
    collectors.converters.bracelet.topic_for) to the broker, where the collector's MQTT source subscribes."""

    def __init__(self, park: Park, address: tuple[str, int], client_id: str = "parkcarbon-demo-publisher") -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.park = park
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
        self.client.connect(*address)
        self.client.loop_start()

    def __call__(self, frame: pd.DataFrame) -> int:
        """Publish a frame of currents (ts, series, value); returns how many readings the broker acknowledged."""
        from collectors.simulator.bracelets import publish

        payloads = ({"device": str(r.series), "ts": pd.Timestamp(r.ts).isoformat(), "current_a": float(r.value)}
                    for r in frame.itertuples() if pd.notna(r.value))
        return publish(self.client, self.park.id, payloads, batch=60)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def start_live(park: Park, store: TimeSeriesStore, data_dir, interval_s: float = 15.0, mqtt: str | None = None):
    """Keep the whole demo park live, over the real paths where they can run.  The park's Modbus meters are
    simulated Modbus servers polled by the real collector service (on a free port when theirs is taken, logged).
    When an MQTT broker is reachable (`mqtt` "host:port", else $PARKCARBON_DEMO_MQTT, else 127.0.0.1:1883; "off":
    never), every bracelet publishes its telemetry to it and the collector's MQTT source subscribes, so readings
    reach the store through the broker, the spool and the writer; otherwise (logged) the bracelets are simulated
    through the store's validating write.  Every other meter is simulated by a feed writing into the store
    (`LiveFeed`).  Returns a stop function."""
    import logging

    from collectors.service import CollectorService

    log = logging.getLogger("parkcarbon.demo")
    polled, simulators = serve_modbus(park, log)
    address = mqtt_address(mqtt)
    over_mqtt = bool(park.devices) and broker_reachable(address)
    config: dict = {}
    if simulators:
        config["modbus"] = {"interval_s": interval_s, "timeout_s": 3}
    if over_mqtt:
        config["mqtt"] = {"host": address[0], "port": address[1], "client_id": DEMO_MQTT_CLIENT}
    service = CollectorService(polled, store, data_dir / "spool.db", config).start() if config else None
    if simulators:
        log.info("demo: %d Modbus meters polled live by the collector service", len(_modbus_meters(polled)))
    publisher = None
    if over_mqtt:
        try:
            publisher = MqttBracelets(park, address)
        except OSError as exc:
            log.warning("demo: cannot publish to the MQTT broker at %s:%d (%s)", *address, exc)
    skip = {m.id for m in _modbus_meters(polled)} if simulators else set()
    feed = LiveFeed(park, store, skip, interval_s, currents=publisher).start()
    if publisher is not None:
        line = (f"demo: {len(park.devices)} bracelets publish over MQTT to the broker at {address[0]}:{address[1]}, "
                f"read by the collector's MQTT source; {len(feed.meters)} other meters simulated live through the "
                "store writer")
    else:
        why = ("MQTT off" if address is None else f"no MQTT broker reachable at {address[0]}:{address[1]}")
        line = (f"demo: {len(feed.meters)} other meters and {len(park.devices)} bracelets simulated live through "
                f"the store writer ({why}; set {DEMO_MQTT_ENV}=host:port to use a broker)")
    log.info("%s", line)

    def stop() -> None:
        feed.stop()
        if publisher is not None:
            publisher.close()
        if service is not None:
            service.stop()
        for sim in simulators:
            sim.stop()

    stop.description = line  # the startup line saying which path the bracelets take (for the command to print)
    return stop


def seed_carbon(engine: Engine, store: TimeSeriesStore, park: Park, now: pd.Timestamp) -> None:
    """Output values, product output, quota plans and allocations for the demo year (idempotent: recorded once)."""
    year = now.tz_convert(park.tz).year
    if records.load_ledger(engine, park.id, year).shape[0]:
        return
    start = pd.Timestamp(year, 1, 1, tz=park.tz)
    first = store.aggregate("energy", start - pd.DateOffset(years=1), now, "month", where={"carrier": "electricity"})
    first = first[first["count"] > 0]
    if first.empty:
        return
    data_start = first["start"].min()
    monthly = store.aggregate("energy", data_start, now.floor("D"), "month", by=["enterprise"],
                              where={"carrier": "electricity"})
    monthly = monthly[monthly["count"] > 0]
    industry = {e.id: e.industry for e in park.enterprises}
    month = monthly["start"].dt.tz_localize(None).dt.to_period("M").dt.to_timestamp().dt.date
    values = monthly["value"] * monthly["enterprise"].map(lambda e: VALUE_PER_KWH.get(industry[e], 8.0)) / 1e4
    records.record_output_values(engine, park.id, pd.DataFrame(
        {"enterprise": monthly["enterprise"], "month": month, "output_value_10k_cny": values.round(2)}),
        actor="demo", source="demo")
    records.record_product_output(engine, park.id, pd.DataFrame(
        {"enterprise": monthly["enterprise"], "month": month, "product": "main product",
         "quantity": (monthly["value"] / 350.0).round(1), "unit": "t", "workshop": None}), actor="demo")
    accounts = account_park(store, engine, park, data_start, now.floor("D"), "month", strict=False)
    ent = accounts.totals_at("enterprise")
    days = max((now.floor("D") - data_start).days, 1)
    per_year = ent.groupby("enterprise")["total_location_t_co2e"].sum() * 365.0 / days
    for i, e in enumerate(sorted(per_year.index)):
        allowances = float(np.round(per_year[e] * ALLOWANCE_SHARE[i % len(ALLOWANCE_SHARE)], -1))
        records.record_quota_plan(engine, park.id, QuotaPlan.absolute(e, year, allowances), actor="demo")
        records.record_movement(engine, park.id, e, year, "allocation", allowances, actor="demo",
                                reference=f"demo allocation {year}")
    if park.enterprises:
        e = park.enterprises[3 % len(park.enterprises)].id
        records.record_instruments(engine, park.id, pd.DataFrame(
            [{"enterprise": e, "kind": "gec", "quantity_mwh": 200.0, "period_start": start.date(),
              "period_end": pd.Timestamp(year + 1, 1, 1).date(), "reference": "demo GEC batch", "vintage": year}]),
            actor="demo")


# The jobs the demo runs once at start (for their latest due time), so that its forecasts, quota deficits, anomaly
# warnings and an archived monthly report appear within a minute or two; afterwards they run on their schedule.
DEMO_FIRST_RUNS = ("forecast.nightly", "reports.monthly")


def demo_job_settings(settings):
    """The demo's settings for its jobs: the monthly report due on day 1 at 00:00 (unless the settings file says
    otherwise), so the month just ended is the one the demo produces at start; a real park keeps [reports]
    monthly_day (default 5: late readings and bills come in first)."""
    from dataclasses import replace

    return replace(settings, reports={"monthly_day": 1, "hour": 0, "minute": 0, **(settings.reports or {})})


def start_jobs(settings, engine: Engine, store: TimeSeriesStore, park: Park):
    """The scheduled jobs in the demo's process (park.jobs.JobsHost: the demo's embedded store is held by this
    process, so no `parkcarbon jobs` could open it), sharing its store; DEMO_FIRST_RUNS run at once in the
    jobs thread, without delaying the portal.  A job's failure is in the run log; a scheduler that cannot start
    is logged and the demo serves without it.  Returns a stop function (waits a few seconds for a run in
    progress: one interrupted there is run again at the next start)."""
    import logging

    from park.jobs import JobsHost

    log = logging.getLogger("parkcarbon.demo")
    try:
        host = JobsHost(demo_job_settings(settings), engine, store, park, first_runs=DEMO_FIRST_RUNS,
                        role="demo").start()
    except Exception:  # noqa: BLE001 (the demo serves without its jobs rather than not at all)
        log.exception("demo: the scheduled jobs cannot start; the portal runs without forecasts and reports")
        return lambda: None
    return lambda: host.stop(timeout=10)


DEMO_CONSENT = ("bank", "E001")  # the demo bank's consent from 江南钢构 (E001)


def seed_consent(engine: Engine, park: Park, now: pd.Timestamp) -> str:
    """The demo bank holds a consent in force from E001 (post-loan monitoring, every data kind but measured savings:
    the demo has no financed project with a year of baseline; January to last month, a year's expiry) unless one
    exists, so the bank's pages show a consent and a pack to download."""
    from portal.evidence import consent

    bank, enterprise = DEMO_CONSENT
    if consent.consents(engine, park.id, bank=bank, enterprise=enterprise):
        return "demo consent: kept"
    local = now.tz_convert(park.tz)
    last_month = (local.normalize().replace(day=1) - pd.Timedelta(days=1)).date()
    first = last_month.replace(month=1, day=1)
    made = consent.request(engine, park.id, bank, enterprise, "post_loan_monitoring",
                           tuple(d for d in consent.DATA if d != "savings"),
                           first, last_month, (now + pd.Timedelta(days=365)).to_pydatetime(), actor=bank,
                           note="demo", now=now.to_pydatetime())
    consent.grant(engine, made.id, enterprise, now=now.to_pydatetime(), reason="demo")
    return f"demo consent: {bank} may see {enterprise} {first:%Y-%m}..{last_month:%Y-%m}"
