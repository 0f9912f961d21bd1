"""The figures of one enterprise for the enterprise and equipment pages, computed through the access layer.

Authorisation: `resolve_enterprise` says which enterprise a request may read (an enterprise user: its own and
nothing else, whatever the browser sent), and `EnterpriseScope` binds the access layer
(portal.access.DataAccess) to that user and enterprise: every store read, account, ledger and output value goes
through `DataAccess` with the user, and each answer is cut to the enterprise (an admin's park-wide answers too).

Calculations are carbon.* and collectors.bracelet; this module picks the periods, reads, and sums.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime

import pandas as pd
from sqlalchemy import Engine

from carbon.activity import load_activity
from carbon.emissions import Accounts, compute_accounts
from carbon.errors import InputError
from carbon.factors import DEFAULT_POLICY
from carbon.intensity import intensities, unit_intensities, year_on_year
from carbon.periods import Period
from carbon.pipeline import park_registry
from carbon.regions import enterprise_regions
from collectors.bracelet import (
    DEFAULT_CALENDAR,
    DEFAULT_PARAMS,
    UNKNOWN,
    Reconciliation,
    ShiftCalendar,
    reconcile,
    states,
    utilisation,
)
from park.model import Device, Park
from park.units import canonical_unit, lookup_unit
from portal.access import DataAccess
from portal.auth import User

# The carbon price every page values allowances and emissions at (CNY/t): the national ETS close at the end of 2024
# (docs/methodology.md), until the park records its own price.
CARBON_PRICE_CNY_PER_T = 97.49
SCOPE_COLUMNS = ["energy_tce", "scope1_t_co2e", "scope2_location_t_co2e", "scope2_market_t_co2e",
                 "total_location_t_co2e", "total_market_t_co2e"]
PERIODS = ("month", "year", "12m")  # this month, this year, the last 12 months (with the current one)
POWER_CARRIERS = ("electricity", "pv")
INTERVAL_H = 0.25  # the 15-minute interval of the real-time power, in hours


@dataclass(frozen=True)
class Tariff:
    """An energy price: CNY per `unit` of the carrier."""

    cny: float
    unit: str


# Demo defaults, not a park's contracts: flat industrial prices of the right order for Jiangsu in 2024 (no
# time-of-use periods).  A park passes its own tariffs to `cost_structure`.
DEFAULT_TARIFFS: dict[str, Tariff] = {
    "electricity": Tariff(0.70, "kWh"),
    "natural_gas": Tariff(3.60, "m3"),
    "steam": Tariff(230.0, "t"),
    "heat": Tariff(60.0, "GJ"),
    "diesel": Tariff(7800.0, "t"),
}


# ---- authorisation -------------------------------------------------------------------------------------------
def resolve_enterprise(access: DataAccess, user: User, asked: str | None) -> str | None:
    """The enterprise a request may read: `asked` when the user's scope holds it, else None (refused).  An
    enterprise user asking for nothing gets its own enterprise."""
    allowed = [e.id for e in access.enterprises(user)]
    if asked is None and len(allowed) == 1:
        return allowed[0]
    return asked if asked in allowed else None


def _cut(acc: Accounts, enterprise: str) -> Accounts:
    """Accounts restricted to one enterprise (its workshop and enterprise rows; no park totals)."""
    def only(frame: pd.DataFrame) -> pd.DataFrame:
        if "enterprise" not in frame.columns:
            return frame.iloc[0:0]
        return frame[frame["enterprise"] == enterprise].reset_index(drop=True)

    totals = acc.totals[(acc.totals["level"] != "park") & (acc.totals["enterprise"] == enterprise)]
    return replace(acc, lines=only(acc.lines), totals=totals.reset_index(drop=True), issues=only(acc.issues),
                   fallbacks=only(acc.fallbacks))


@dataclass(frozen=True)
class EnterpriseScope:
    """The access layer bound to one user and one enterprise it may read (see `resolve_enterprise`): every read of
    the pages goes through here, and each answer is cut to the enterprise."""

    access: DataAccess
    user: User
    enterprise: str

    def _where(self, where: dict | None) -> dict:
        return {**(where or {}), "enterprise": self.enterprise}

    def aggregate(self, measurement: str, start: datetime, end: datetime, window: str, by=(), agg: str | None = None,
                  where: dict | None = None) -> pd.DataFrame:
        return self.access.aggregate(self.user, measurement, start, end, window, by=by, agg=agg,
                                     where=self._where(where))

    def points(self, measurement: str, start: datetime, end: datetime, where: dict | None = None) -> pd.DataFrame:
        return self.access.points(self.user, measurement, start, end, where=self._where(where))

    def latest(self, measurement: str, where: dict | None = None) -> pd.DataFrame:
        return self.access.latest(self.user, measurement, where=self._where(where))

    def accounts(self, start: datetime, end: datetime, kind: str = "month") -> Accounts:
        return _cut(self.access.accounts(self.user, start, end, kind), self.enterprise)

    def ledger(self, year: int) -> pd.DataFrame:
        ledger = self.access.ledger(self.user, year)
        return ledger[ledger["enterprise"] == self.enterprise].reset_index(drop=True)

    def output_values(self, start: datetime, end: datetime) -> pd.DataFrame:
        ov = self.access.output_values(self.user, start, end)
        return ov[ov["enterprise"] == self.enterprise].reset_index(drop=True)

    def product_output(self, start: datetime, end: datetime) -> pd.DataFrame:
        po = self.access.product_output(self.user, start, end)
        return po[po["enterprise"] == self.enterprise].reset_index(drop=True)

    def quota_position(self, year: int, now: datetime, carbon_price_cny_per_t: float) -> dict | None:
        """This enterprise's row of carbon.quota.position; None when nothing is in its ledger for the year."""
        if self.ledger(year).empty:
            return None
        pos = self.access.quota_positions(self.user, year, now, carbon_price_cny_per_t)
        return pos[pos["enterprise"] == self.enterprise].iloc[0].to_dict()


# ---- periods -------------------------------------------------------------------------------------------------
def period_bounds(kind: str, now: datetime, tz) -> tuple[pd.Timestamp, pd.Timestamp]:
    """[start, end) of a period in park-local time, ending at the last complete quarter hour (intervals still to
    come are not missing): this month, this year, or the last 12 calendar months including the current one.
    Right after midnight on the first of a month, "this month" is empty (end == start)."""
    local = pd.Timestamp(now).tz_convert(tz)
    end = local.floor("15min")
    month = pd.Timestamp(local.year, local.month, 1, tz=tz)
    if kind == "month":
        return month, end
    if kind == "year":
        return pd.Timestamp(local.year, 1, 1, tz=tz), end
    if kind == "12m":
        return month - pd.DateOffset(months=11), end
    raise ValueError(f"period {kind!r} must be one of {', '.join(PERIODS)}")


def _month_end(t: pd.Timestamp) -> pd.Timestamp:
    """The first instant of the month after the one holding `t` (t itself when it starts a month)."""
    first = pd.Timestamp(t.year, t.month, 1, tz=t.tz)
    return first if first == t else first + pd.DateOffset(months=1)


# ---- energy and emissions ------------------------------------------------------------------------------------
def _coverage(measured: pd.Series, expected: pd.Series) -> float:
    exp = float(expected.sum())
    return min(float(measured.sum()) / exp, 1.0) if exp > 0 else math.nan


def _sums(frame: pd.DataFrame, keys: list[str], columns: list[str]) -> pd.DataFrame:
    """Sums per group (NaN when a group has no value at all), with the coverage of its metered intervals."""
    g = frame.groupby(keys, dropna=False, sort=True)
    out = g[columns].sum(min_count=1)
    counts = g[["measured", "expected"]].sum()
    out["coverage"] = (counts["measured"] / counts["expected"].where(counts["expected"] > 0)).clip(upper=1.0)
    return out.reset_index()


@dataclass
class EnterpriseFigures:
    """Energy, emissions, intensities and cost of one enterprise over one period (park-local [start, end))."""

    enterprise: str
    start: pd.Timestamp
    end: pd.Timestamp
    totals: dict[str, float]  # SCOPE_COLUMNS and coverage
    by_carrier: pd.DataFrame  # carrier, quantity, unit, SCOPE_COLUMNS (scopes of that carrier), coverage
    by_workshop: pd.DataFrame  # workshop (NaN: enterprise-level meters), SCOPE_COLUMNS, coverage
    intensity: pd.DataFrame  # metric (INTENSITY_METRICS, then "coverage"), this_period, last_year, change
    intensity_flags: tuple[str, str]  # carbon.intensity flags of (this period, last year): why a figure is missing
    unit_intensity: pd.DataFrame  # UNIT_INTENSITY_COLUMNS
    unit_intensity_problem: str  # why per-unit figures could not be allocated (carbon's message), else ""
    cost: pd.DataFrame  # item, quantity, unit, price_cny, price_unit, cost_cny, coverage, share
    last_year: tuple[pd.Timestamp, pd.Timestamp]  # the comparison period of the intensities


def enterprise_figures(scope: EnterpriseScope, engine: Engine, park: Park, kind: str, now: datetime,
                       tariffs: dict[str, Tariff] | None = None,
                       carbon_price_cny_per_t: float = CARBON_PRICE_CNY_PER_T) -> EnterpriseFigures | None:
    """The figures of `kind` (PERIODS) to now; None while the period has no complete interval yet."""
    start, end = period_bounds(kind, now, park.tz)
    if end <= start:
        return None
    accounts = scope.accounts(start, end)
    # Last year: the same months in full, so that a month to date compares with a whole month's output value.
    ly_start, ly_end = start - pd.DateOffset(years=1), _month_end(end) - pd.DateOffset(years=1)
    last = scope.accounts(ly_start, ly_end)
    ent = accounts.totals_at("enterprise")
    totals = {c: float(ent[c].sum(min_count=1)) for c in SCOPE_COLUMNS}
    totals["coverage"] = _coverage(ent["measured"], ent["expected"])
    by_carrier = carrier_figures(accounts)
    intensity, flags = intensity_summary(accounts, last, scope.output_values(ly_start, end), start, ly_start)
    try:
        unit = unit_intensity_summary(accounts, last, scope.product_output(ly_start, end))
        problem = ""
    except InputError as exc:  # products in several units cannot be allocated by output
        unit, problem = pd.DataFrame(columns=UNIT_INTENSITY_COLUMNS), str(exc)
    return EnterpriseFigures(
        enterprise=scope.enterprise, start=start, end=end, totals=totals, by_carrier=by_carrier,
        by_workshop=_sums(accounts.totals_at("workshop").astype({"workshop": object}), ["workshop"],
                          SCOPE_COLUMNS),
        intensity=intensity, intensity_flags=flags, unit_intensity=unit, unit_intensity_problem=problem,
        cost=cost_structure(by_carrier, totals["total_location_t_co2e"], totals["coverage"],
                            tariffs or DEFAULT_TARIFFS, carbon_price_cny_per_t),
        last_year=(ly_start, ly_end),
    )


def carrier_figures(accounts: Accounts) -> pd.DataFrame:
    """Per carrier: quantity in its canonical unit (exports negative), tce, the scopes, coverage."""
    lines = accounts.lines
    if lines.empty:
        return pd.DataFrame(columns=["carrier", "quantity", "unit", *SCOPE_COLUMNS, "coverage"])
    lines = lines.assign(
        quantity_canonical=lines["q_base"] * lines["sign"]
        / lines["carrier"].map(lambda c: lookup_unit(canonical_unit(c)).to_base),
        energy_tce=lines["tce"],
        total_location_t_co2e=lines["scope1_t_co2e"] + lines["scope2_location_t_co2e"],
        total_market_t_co2e=lines["scope1_t_co2e"] + lines["scope2_market_t_co2e"])
    out = _sums(lines, ["carrier"], ["quantity_canonical", *SCOPE_COLUMNS]).rename(
        columns={"quantity_canonical": "quantity"})
    out["unit"] = out["carrier"].map(canonical_unit)
    return out[["carrier", "quantity", "unit", *SCOPE_COLUMNS, "coverage"]]


# ---- intensities ---------------------------------------------------------------------------------------------
def _side(monthly: pd.DataFrame, period_start: pd.Timestamp) -> dict:
    """One period's intensities from monthly ones: totals over the months; NaN unless every month has its output
    value (then `flag` names what is missing)."""
    flags = sorted(set(monthly["flag"]) - {""})
    emissions = float(monthly["emissions_t_co2e"].sum(min_count=1))
    energy = float(monthly["energy_tce"].sum(min_count=1))
    value = float(monthly["output_value_10k_cny"].sum(min_count=1)) if not flags else math.nan
    usable = not flags and len(monthly) > 0 and value > 0
    return {"enterprise": "", "period_start": period_start, "emissions_t_co2e": emissions, "energy_tce": energy,
            "output_value_10k_cny": value, "t_co2e_per_10k_cny": emissions / value if usable else math.nan,
            "tce_per_10k_cny": energy / value if usable else math.nan, "flag": ", ".join(flags)}


INTENSITY_METRICS = ["emissions_t_co2e", "energy_tce", "output_value_10k_cny", "t_co2e_per_10k_cny",
                     "tce_per_10k_cny"]


def intensity_summary(this: Accounts, last: Accounts, output_values: pd.DataFrame, start: pd.Timestamp,
                      ly_start: pd.Timestamp) -> tuple[pd.DataFrame, tuple[str, str]]:
    """Emissions (Scope 1 + 2, location-based) and energy per 10k CNY output value this period and the same
    months a year earlier (carbon.intensity.intensities per month, year_on_year for the change), and the flags
    of (this period, last year)."""
    sides = pd.DataFrame([_side(intensities(acc, output_values), s) for acc, s in ((this, start), (last, ly_start))])
    sides["coverage"] = [_coverage(t["measured"], t["expected"]) for t in (this.totals_at("enterprise"),
                                                                           last.totals_at("enterprise"))]
    yoy = year_on_year(sides, INTENSITY_METRICS).iloc[0]
    frame = pd.DataFrame({"metric": [*INTENSITY_METRICS, "coverage"],
                          "this_period": [yoy[m] for m in INTENSITY_METRICS] + [sides["coverage"].iloc[0]],
                          "last_year": [yoy[f"{m}_last_year"] for m in INTENSITY_METRICS] + [sides["coverage"].iloc[1]],
                          "change": [yoy[f"{m}_yoy"] for m in INTENSITY_METRICS] + [math.nan]})
    return frame, (sides["flag"].iloc[0], sides["flag"].iloc[1])


UNIT_INTENSITY_COLUMNS = ["product", "unit", "quantity", "months", "tce_per_unit", "t_co2e_per_unit",
                          "quantity_last_year", "tce_per_unit_last_year", "t_co2e_per_unit_last_year",
                          "tce_per_unit_yoy", "t_co2e_per_unit_yoy"]


def unit_intensity_summary(this: Accounts, last: Accounts, product_output: pd.DataFrame) -> pd.DataFrame:
    """Per product: tce and tCO2e (location-based) per unit this period and the same months last year, allocated
    by output (carbon.intensity.unit_intensities), over the months with recorded output (`months`)."""
    if product_output.empty:
        return pd.DataFrame(columns=UNIT_INTENSITY_COLUMNS)
    sides = []
    for acc in (this, last):
        u = unit_intensities(acc, product_output)
        # This side's months with energy data only: a month without either figure would skew the ratio.
        u = u[u["period_start"].isin(acc.totals_at("enterprise")["period_start"]) & u["energy_tce"].notna()]
        g = u.groupby(["product", "unit"]).agg(quantity=("quantity", "sum"), months=("period", "nunique"),
                                               energy=("energy_tce", lambda v: v.sum(min_count=1)),
                                               emissions=("emissions_t_co2e", lambda v: v.sum(min_count=1)))
        q = g["quantity"].where(g["quantity"] > 0)
        sides.append(pd.DataFrame({"quantity": g["quantity"], "months": g["months"], "tce_per_unit": g["energy"] / q,
                                   "t_co2e_per_unit": g["emissions"] / q}))
    now, before = sides
    out = now.join(before.drop(columns="months").add_suffix("_last_year"), how="left")
    for c in ("tce_per_unit", "t_co2e_per_unit"):
        prev = out[f"{c}_last_year"]
        out[f"{c}_yoy"] = (out[c] - prev) / prev.where(prev != 0)
    return out.reset_index()[UNIT_INTENSITY_COLUMNS]


# ---- cost ----------------------------------------------------------------------------------------------------
def cost_structure(by_carrier: pd.DataFrame, emissions_t_co2e: float, coverage: float, tariffs: dict[str, Tariff],
                   carbon_price_cny_per_t: float) -> pd.DataFrame:
    """Energy cost per carrier at `tariffs` and the carbon cost (location-based Scope 1 + 2 at the carbon price),
    with each item's share of the total and the coverage of its quantity (`coverage`: of the emissions).  A carrier
    without a tariff (on-site PV: not bought) has no cost."""
    rows = []
    for r in by_carrier.itertuples():
        tariff = tariffs.get(r.carrier)
        if tariff is None:
            rows.append((r.carrier, r.quantity, r.unit, math.nan, "", math.nan, r.coverage))
            continue
        qty = r.quantity * lookup_unit(r.unit).to_base / lookup_unit(tariff.unit).to_base
        rows.append((r.carrier, qty, tariff.unit, tariff.cny, f"CNY/{tariff.unit}", qty * tariff.cny, r.coverage))
    rows.append(("carbon", emissions_t_co2e, "tCO2e", carbon_price_cny_per_t, "CNY/t",
                 emissions_t_co2e * carbon_price_cny_per_t, coverage))
    out = pd.DataFrame(rows, columns=["item", "quantity", "unit", "price_cny", "price_unit", "cost_cny", "coverage"])
    total = out["cost_cny"].sum(min_count=1)
    out["share"] = out["cost_cny"] / total if total > 0 else math.nan
    return out


# ---- real-time power -----------------------------------------------------------------------------------------
def realtime_power(scope: EnterpriseScope, park: Park, now: datetime) -> pd.DataFrame:
    """Average power (kW) of each 15-minute interval of today up to the last complete one, per carrier (grid
    electricity, on-site PV), from the metered energy; columns start, carrier, kw, coverage."""
    local = pd.Timestamp(now).tz_convert(park.tz)
    today, end = local.floor("D"), local.floor("15min")
    cols = ["start", "carrier", "kw", "coverage"]
    if end <= today:
        return pd.DataFrame(columns=cols)
    agg = scope.aggregate("energy", today, end, "15min", by=["carrier"], where={"carrier": list(POWER_CARRIERS)})
    agg["kw"] = agg["value"] / INTERVAL_H
    return agg[cols]


# ---- quota ---------------------------------------------------------------------------------------------------
@dataclass
class QuotaView:
    """The year's quota burn-down of one enterprise: cumulative emissions against its allowances."""

    year: int
    start: pd.Timestamp
    end: pd.Timestamp
    daily: pd.DataFrame  # day, t_co2e, cumulative_t_co2e, coverage (metered, location-based Scope 1 + 2)
    emissions_t_co2e: float  # year to date, location-based, metered and recorded (the position's figure)
    coverage: float
    position: dict | None  # this enterprise's row of carbon.quota.position; None without a ledger for the year


def daily_emissions(scope: EnterpriseScope, engine: Engine, park: Park, start: datetime, end: datetime) -> pd.DataFrame:
    """Location-based Scope 1 + 2 per park-local day from metered activity (bills are monthly, so they are not in
    it), read through the access layer: day, t_co2e, cumulative_t_co2e, coverage.  Days without data stay NaN."""
    activity = load_activity(scope, start, end, "day", [scope.enterprise])
    if activity.empty:  # an enterprise without meters
        empty = pd.Series([], dtype=float)
        return pd.DataFrame({"day": pd.Series([], dtype=f"datetime64[ns, {park.timezone}]"), "t_co2e": empty,
                             "cumulative_t_co2e": empty, "coverage": empty})
    day = compute_accounts(activity, park_registry(engine, park.id), enterprise_regions(park), DEFAULT_POLICY,
                           Period.DAY, strict=False).totals_at("enterprise")
    return pd.DataFrame({"day": day["period_start"], "t_co2e": day["total_location_t_co2e"],
                         "cumulative_t_co2e": day["total_location_t_co2e"].cumsum(), "coverage": day["coverage"]})


def quota_view(scope: EnterpriseScope, engine: Engine, park: Park, now: datetime,
               carbon_price_cny_per_t: float = CARBON_PRICE_CNY_PER_T) -> QuotaView | None:
    """The burn-down of this year to now; None in the first quarter hour of the year."""
    start, end = period_bounds("year", now, park.tz)
    if end <= start:
        return None
    ent = scope.accounts(start, end).totals_at("enterprise")
    return QuotaView(start.year, start, end, daily_emissions(scope, engine, park, start, end),
                     float(ent["total_location_t_co2e"].sum(min_count=1)), _coverage(ent["measured"], ent["expected"]),
                     scope.quota_position(start.year, now, carbon_price_cny_per_t))


# ---- equipment -----------------------------------------------------------------------------------------------
def devices_of(park: Park, enterprise: str) -> list[Device]:
    return [d for d in park.devices if d.enterprise == enterprise]


def _readings(points: pd.DataFrame, device: str) -> pd.DataFrame:
    return points.loc[points["series"] == device, ["ts", "value"]]


def device_status(scope: EnterpriseScope, devices: list[Device], now: datetime,
                  gap_intervals: float = DEFAULT_PARAMS.gap_intervals) -> pd.DataFrame:
    """Per device: last seen, latest current (A), state at the last reading, and whether it is silent (no reading
    for more than `gap_intervals` intervals, or never)."""
    now = pd.Timestamp(now)
    latest = scope.latest("current").set_index("series")
    recent = scope.points("current", now - pd.Timedelta("1h"), now + pd.Timedelta("1s"))
    rows = []
    for d in devices:
        seen = latest["ts"].get(d.id)
        silent = seen is None or (now - seen).total_seconds() > gap_intervals * d.interval_s
        state = UNKNOWN
        if not silent:
            runs = states(_readings(recent, d.id), d, now - pd.Timedelta("1h"), now)
            known = runs[runs["state"] != UNKNOWN]
            state = known["state"].iloc[-1] if len(known) else UNKNOWN
        rows.append({"device": d.id, "name": d.name, "workshop": d.workshop, "last_seen": seen,
                     "current_a": latest["value"].get(d.id, math.nan), "state": state, "silent": silent,
                     "silent_min": (now - seen).total_seconds() / 60 if seen is not None else math.nan})
    return pd.DataFrame(rows, columns=["device", "name", "workshop", "last_seen", "current_a", "state", "silent",
                                       "silent_min"])


@dataclass
class EquipmentDay:
    """One enterprise's bracelets on one park-local day (to now when it is today), with the week before it."""

    enterprise: str
    start: pd.Timestamp
    end: pd.Timestamp
    has_readings: bool  # any reading on this day
    timeline: pd.DataFrame  # device, start, end, state, seconds
    by_day: pd.DataFrame  # day, device, Utilisation fields (the 7 days ending on this day)
    by_shift: pd.DataFrame  # shift_start, shift_end, device, Utilisation fields
    energy: pd.DataFrame  # device, estimated_kwh, factor, reconciled_kwh, coverage
    metered_kwh: float  # the enterprise's grid electricity over the same time
    metered_coverage: float
    reconciliation: Reconciliation | None  # None without metered electricity


def equipment_day(scope: EnterpriseScope, park: Park, day: str, now: datetime,
                  calendar: ShiftCalendar = DEFAULT_CALENDAR) -> EquipmentDay | None:
    """States, utilisation by day and by shift, estimated energy and its reconciliation with the meter, up to the
    last complete quarter hour (the meter's); None while the day has no complete quarter hour."""
    devices = devices_of(park, scope.enterprise)
    tz = park.tz
    start = pd.Timestamp(day).tz_localize(tz)
    end = min(start + pd.DateOffset(days=1), pd.Timestamp(now).tz_convert(tz).floor("15min"))
    if end <= start:
        return None
    week = start - pd.DateOffset(days=6)
    lead = pd.Timedelta(seconds=DEFAULT_PARAMS.gap_intervals * max((d.interval_s for d in devices), default=60))
    points = scope.points("current", week - lead, end)
    on_day = points[points["ts"] >= start - lead]
    timeline, by_day, by_shift, energy = [], [], [], {}
    for d in devices:
        r = _readings(points, d.id)
        day_r = _readings(on_day, d.id)
        timeline.append(states(day_r, d, start, end).assign(device=d.id))
        for offset in range(7):
            a = week + pd.DateOffset(days=offset)
            b = min(a + pd.DateOffset(days=1), end)
            span = r[(r["ts"] >= a - lead) & (r["ts"] < b)]  # the day's readings (and a gap limit before it)
            by_day.append({"day": a, **utilisation(span, d, a, b, calendar).__dict__})
        for a, b in calendar.planned(start, end):
            by_shift.append({"shift_start": a, "shift_end": b, **utilisation(day_r, d, a, b, calendar).__dict__})
        u = utilisation(day_r, d, start, end, calendar)
        energy[d.id] = (u.energy_kwh, u.coverage)
    metered = scope.aggregate("energy", start, end, "day", where={"carrier": "electricity"})
    metered_kwh = float(metered["value"].sum(min_count=1))
    metered_cov = _coverage(metered["measured"], metered["expected"])
    est = {k: v[0] for k, v in energy.items()}
    rec = reconcile(est, metered_kwh) if math.isfinite(metered_kwh) else None
    energy_frame = pd.DataFrame({
        "device": list(est), "estimated_kwh": list(est.values()),
        "factor": [rec.factors[k] if rec else math.nan for k in est],
        "reconciled_kwh": [rec.reconciled_kwh[k] if rec else math.nan for k in est],
        "coverage": [v[1] for v in energy.values()]})
    tl_cols = ["device", "start", "end", "state", "seconds"]
    return EquipmentDay(
        enterprise=scope.enterprise, start=start, end=end, has_readings=bool(len(on_day[on_day["ts"] >= start])),
        timeline=pd.concat(timeline, ignore_index=True)[tl_cols] if timeline else pd.DataFrame(columns=tl_cols),
        by_day=pd.DataFrame(by_day), by_shift=pd.DataFrame(by_shift), energy=energy_frame, metered_kwh=metered_kwh,
        metered_coverage=metered_cov, reconciliation=rec)


def recent_days(now: datetime, tz, n: int = 14) -> list[str]:
    """The last `n` park-local dates, newest first, as ISO strings."""
    today = pd.Timestamp(now).tz_convert(tz).floor("D")
    return [(today - pd.DateOffset(days=i)).date().isoformat() for i in range(n)]

