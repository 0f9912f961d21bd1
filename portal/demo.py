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


def start_live(park: Park, store: TimeSeriesStore, data_dir, interval_s: float = 15.0):
    """Simulated Modbus meters for the demo park's meters with a modbus:// address, polled by the real collector
    service into the store: the overview's live tile moves.  Returns a stop function; without a free port the
    demo runs on its history alone (and says so)."""
    import logging

    from collectors.service import CollectorService
    from collectors.simulator.modbus_meters import serve_park

    log = logging.getLogger("parkcarbon.demo")
    try:
        simulators = serve_park(park)
    except OSError as exc:
        log.warning("no live meters in the demo: cannot serve simulated Modbus meters (%s)", exc)
        return lambda: None
    service = CollectorService(park, store, data_dir / "spool.db",
                               {"modbus": {"interval_s": interval_s, "timeout_s": 3}}).start()

    def stop() -> None:
        service.stop()
        for sim in simulators:
            sim.stop()

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
              "period_end": pd.Timestamp(year + 1, 1, 1).date(), "reference": "demo GEC batch"}]), actor="demo")
