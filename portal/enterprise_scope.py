"""A scope bound to one enterprise the user may read (portal.scope.Scope.enterprise): every read goes through the
scope's access layer and each answer is cut to the enterprise (an administrator's park-wide answers too); the
figures are the wings' (carbon.summary, carbon.costs, collectors.bracelet_analytics), this module only reads and
hands over.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import pandas as pd

from carbon import compare
from carbon.costs import CARBON_PRICE_CNY_PER_T, DEFAULT_TARIFFS, Tariff, cost_structure
from carbon.emissions import Accounts
from carbon.errors import InputError
from carbon.quota import DEFAULT_QUOTA_BASIS, quota_basis_policy
from carbon.summary import (
    UNIT_INTENSITY_COLUMNS,
    by_workshop,
    carrier_figures,
    coverage,
    daily_burn,
    intensity_summary,
    period_bounds,
    totals,
    unit_intensity_summary,
)
from collectors import bracelet_analytics as bracelets
from park.model import Device

POWER_CARRIERS = ("electricity", "pv")
INTERVAL_H = 0.25  # the 15-minute interval of the real-time power, in hours


def cut(acc: Accounts, enterprise: str) -> Accounts:
    """Accounts restricted to one enterprise (its workshop and enterprise rows; no park totals)."""
    def keep(frame: pd.DataFrame, mask: pd.Series) -> pd.DataFrame:
        # The access layer has usually cut already: a frame of this enterprise's rows alone is kept as it is.
        mask = mask.fillna(False).to_numpy(dtype=bool)
        if mask.all() and frame.index.equals(pd.RangeIndex(len(frame))):
            return frame
        return frame[mask].reset_index(drop=True)

    def only(frame: pd.DataFrame) -> pd.DataFrame:
        if "enterprise" not in frame.columns:
            return frame.iloc[0:0]
        return keep(frame, frame["enterprise"] == enterprise)

    t = acc.totals
    return replace(acc, lines=only(acc.lines), totals=keep(t, (t["level"] != "park") & (t["enterprise"] == enterprise)),
                   issues=only(acc.issues), fallbacks=only(acc.fallbacks))


@dataclass
class EnterpriseFigures:
    """Energy, emissions, intensities and cost of one enterprise over one period (park-local [start, end))."""

    enterprise: str
    start: pd.Timestamp
    end: pd.Timestamp
    totals: dict[str, float]  # carbon.summary.SCOPE_COLUMNS and coverage
    by_carrier: pd.DataFrame  # carrier, quantity, unit, SCOPE_COLUMNS (scopes of that carrier), coverage
    by_workshop: pd.DataFrame  # workshop (NaN: enterprise-level meters), SCOPE_COLUMNS, coverage
    intensity: pd.DataFrame  # metric (INTENSITY_METRICS, then "coverage"), this_period, last_year, change,
    #                          previous, change_previous (a change is NaN when its base is covered too thinly)
    intensity_flags: tuple[str, str]  # carbon.intensity flags of (this period, last year): why a figure is missing
    unit_intensity: pd.DataFrame  # UNIT_INTENSITY_COLUMNS
    unit_intensity_problem: str  # why per-unit figures could not be allocated (carbon's message), else ""
    cost: pd.DataFrame  # carbon.costs.COST_COLUMNS
    last_year: tuple[pd.Timestamp, pd.Timestamp]  # the comparison bases: the same local days a year earlier
    accounts: Accounts  # the period's accounts (completeness and issues shown beside the figures)
    previous: tuple[pd.Timestamp, pd.Timestamp] | None = None  # ... and one period earlier
    comparison_flags: tuple[str, str] = ("", "")  # carbon.compare.LOW_BASE of (last year, previous), else ""


@dataclass
class QuotaView:
    """The year's quota burn-down of one enterprise: cumulative emissions against its allowances."""

    year: int
    start: pd.Timestamp
    end: pd.Timestamp
    daily: pd.DataFrame  # day, t_co2e, cumulative_t_co2e, coverage (metered Scope 1 + 2 on the quota basis)
    emissions_t_co2e: float  # year to date on the quota basis, metered and recorded (the position's figure)
    coverage: float
    position: dict | None  # this enterprise's row of carbon.quota.position; None without a ledger for the year
    accounts: Accounts | None = None
    basis: str = DEFAULT_QUOTA_BASIS  # carbon.quota.QUOTA_BASES


METER_COLUMNS = ["meter", "name", "carrier", "workshop", "value", "unit", "coverage", "estimated", "quarantined"]


@dataclass
class MeterView:
    """One meter over park-local [start, end): its readings, their quality, and what was quarantined."""

    meter: object  # park.model.Meter
    start: pd.Timestamp
    end: pd.Timestamp
    readings: pd.DataFrame  # ts (park-local), value, quality
    value: float  # the sum of the readings (NaN without any), in `unit`
    unit: str
    expected: int  # intervals expected over the period
    measured: int  # intervals read as measured
    qualities: dict[str, int]  # quality -> readings
    quarantined: pd.DataFrame  # received, ts, value, code, severity, sentence, reason, source, line

    @property
    def coverage(self) -> float:
        return self.measured / self.expected if self.expected else float("nan")


@dataclass(frozen=True)
class EnterpriseScope:
    """The request's scope bound to one enterprise it may read."""

    scope: object  # portal.scope.Scope
    enterprise: str

    # ---- reads, cut to the enterprise ----------------------------------------------------------------------
    def _where(self, where: dict | None) -> dict:
        return {**(where or {}), "enterprise": self.enterprise}

    def aggregate(self, measurement: str, start, end, window: str, by=(), agg: str | None = None,
                  where: dict | None = None) -> pd.DataFrame:
        return self.scope.aggregate(measurement, start, end, window, by=by, agg=agg, where=self._where(where))

    def points(self, measurement: str, start, end, where: dict | None = None) -> pd.DataFrame:
        return self.scope.points(measurement, start, end, where=self._where(where))

    def latest(self, measurement: str, where: dict | None = None) -> pd.DataFrame:
        return self.scope.latest(measurement, where=self._where(where))

    def accounts(self, start, end, kind: str = "month", quota_basis: str | None = None) -> Accounts:
        # accounted for this enterprise alone (portal.access), and cut again here: never a foreign row
        return cut(self.scope.accounts(start, end, kind, quota_basis, enterprises=(self.enterprise,)), self.enterprise)

    def ledger(self, year: int) -> pd.DataFrame:
        ledger = self.scope.ledger(year)
        return ledger[ledger["enterprise"] == self.enterprise].reset_index(drop=True)

    def output_values(self, start, end) -> pd.DataFrame:
        ov = self.scope.output_values(start, end)
        return ov[ov["enterprise"] == self.enterprise].reset_index(drop=True)

    def product_output(self, start, end) -> pd.DataFrame:
        po = self.scope.product_output(start, end)
        return po[po["enterprise"] == self.enterprise].reset_index(drop=True)

    def quota_position(self, year: int, now, carbon_price_cny_per_t: float = CARBON_PRICE_CNY_PER_T) -> dict | None:
        """This enterprise's row of carbon.quota.position; None when nothing is in its ledger for the year."""
        if self.ledger(year).empty:
            return None
        pos = self.scope.quota_positions(year, now, carbon_price_cny_per_t, enterprises=(self.enterprise,))
        return pos[pos["enterprise"] == self.enterprise].iloc[0].to_dict()

    def memo(self, name: str, compute):
        return self.scope.memo(f"{name}:{self.enterprise}", compute)

    # ---- carbon figures ------------------------------------------------------------------------------------
    def figures(self, kind: str, now=None, tariffs: dict[str, Tariff] | None = None,
                carbon_price_cny_per_t: float = CARBON_PRICE_CNY_PER_T,
                bounds: tuple[pd.Timestamp, pd.Timestamp] | None = None) -> EnterpriseFigures | None:
        """The figures of `kind` (carbon.summary.PERIODS) to now, or of a picked range `bounds` (park-local
        [start, end)); None while the period has no complete interval."""
        now = self.scope.now() if now is None else now
        start, end = bounds if bounds is not None else period_bounds(kind, now, self.scope.park.tz)
        if end <= start:
            return None
        accounts = self.accounts(start, end)
        # Like with like (carbon.compare): the same local days a year and a period earlier, output prorated.
        # A picked range (kind None for carbon.compare.bases): the same days a year earlier, and the span just
        # before it.
        based = compare.bases(start, end, None if bounds is not None else kind)
        (ly_start, ly_end), (pv_start, pv_end) = based["last_year"], based["previous"]
        last = self.accounts(ly_start, ly_end)
        prev = last if (pv_start, pv_end) == (ly_start, ly_end) else self.accounts(pv_start, pv_end)
        tot = totals(accounts)
        carriers = carrier_figures(accounts)
        values = self.output_values(min(ly_start, pv_start), end)
        products = self.product_output(min(ly_start, pv_start), end)

        values_now = compare.prorate_output(values, start, end)  # the current side once, for both bases

        def output(frame: pd.DataFrame, base: tuple, column: str = "output_value_10k_cny",
                   now: pd.DataFrame | None = None) -> pd.DataFrame:
            now = compare.prorate_output(frame, start, end, column) if now is None else now
            return pd.concat([now, compare.prorate_output(frame, *base, column)], ignore_index=True)

        intensity, flags = intensity_summary(accounts, last, output(values, (ly_start, ly_end), now=values_now), start,
                                             ly_start)
        # intensity_summary pairs its two sides by a year's distance; the previous period's side is labelled so.
        on_prev, _ = intensity_summary(accounts, prev, output(values, (pv_start, pv_end), now=values_now), start,
                                       start - pd.DateOffset(years=1))
        intensity["previous"], intensity["change_previous"] = on_prev["last_year"], on_prev["change"]
        threshold = getattr(self.scope.park, "coverage_threshold", 0.9)
        intensity, low_ly = compare.guard(intensity, "last_year", "change", threshold)
        intensity, low_prev = compare.guard(intensity, "previous", "change_previous", threshold)
        products = output(products, (ly_start, ly_end), "quantity")
        try:
            unit = unit_intensity_summary(accounts, last, products)
            problem = ""
        except InputError as exc:  # products in several units cannot be allocated by output
            unit, problem = pd.DataFrame(columns=UNIT_INTENSITY_COLUMNS), str(exc)
        return EnterpriseFigures(
            enterprise=self.enterprise, start=start, end=end, totals=tot, by_carrier=carriers,
            by_workshop=by_workshop(accounts), intensity=intensity, intensity_flags=flags, unit_intensity=unit,
            unit_intensity_problem=problem,
            cost=cost_structure(carriers, tot["total_location_t_co2e"], tot["coverage"], tariffs or DEFAULT_TARIFFS,
                                carbon_price_cny_per_t),
            last_year=(ly_start, ly_end), accounts=accounts, previous=(pv_start, pv_end),
            comparison_flags=(low_ly, low_prev))

    def realtime_power(self, now=None) -> pd.DataFrame:
        """Average power (kW) of each 15-minute interval of today up to the last complete one, per carrier (grid
        electricity, on-site PV), from the metered energy; columns start, carrier, kw, coverage."""
        local = pd.Timestamp(self.scope.now() if now is None else now).tz_convert(self.scope.park.tz)
        today, end = local.floor("D"), local.floor("15min")
        cols = ["start", "carrier", "kw", "coverage"]
        if end <= today:
            return pd.DataFrame(columns=cols)
        agg = self.aggregate("energy", today, end, "15min", by=["carrier"], where={"carrier": list(POWER_CARRIERS)})
        # A quarter hour with no reading is a gap, never a figure (whatever the store's sum of nothing says).
        agg["kw"] = (agg["value"] / INTERVAL_H).where(agg["coverage"] > 0)
        return agg[cols]

    def daily_emissions(self, start, end, quota_basis: str | None = None) -> pd.DataFrame:
        """Scope 1 + 2 per park-local day from metered activity (bills are monthly, so they are not in it),
        location-based or on a quota basis: day, t_co2e, cumulative_t_co2e, coverage.  Days without data stay NaN."""
        column = quota_basis_policy(quota_basis)[1] if quota_basis else "total_location_t_co2e"
        return daily_burn(self.accounts(start, end, "day", quota_basis).totals_at("enterprise"), column)

    def quota_view(self, now=None, carbon_price_cny_per_t: float = CARBON_PRICE_CNY_PER_T) -> QuotaView | None:
        """The burn-down of this year to now; None in the first quarter hour of the year."""
        now = self.scope.now() if now is None else now
        start, end = period_bounds("year", now, self.scope.park.tz)
        if end <= start:
            return None
        position = self.quota_position(start.year, now, carbon_price_cny_per_t)
        # The burn-down is on the basis the quota plan compares with its allowances (the ETS rules by default).
        basis = (position or {}).get("basis")
        basis = basis if isinstance(basis, str) else DEFAULT_QUOTA_BASIS
        # the year's accounting the position was computed from (one accounting, shared): its total and badge
        acc = self.accounts(start, end, "year", quota_basis=basis)
        ent = acc.totals_at("enterprise")
        column = quota_basis_policy(basis)[1]
        return QuotaView(start.year, start, end, self.daily_emissions(start, end, basis),
                         float(ent[column].sum(min_count=1)), coverage(ent["measured"], ent["expected"]),
                         position, acc, basis)

    # ---- equipment -----------------------------------------------------------------------------------------
    def devices(self) -> list[Device]:
        return [d for d in self.scope.park.devices if d.enterprise == self.enterprise]

    def device_status(self, now=None) -> pd.DataFrame:
        now = pd.Timestamp(self.scope.now() if now is None else now)
        recent = self.points("current", now - pd.Timedelta("1h"), now + pd.Timedelta("1s"))
        return bracelets.device_status(self.latest("current"), recent, self.devices(), now)

    def equipment_day(self, day: str, now=None) -> bracelets.EquipmentDay | None:
        """States, utilisation by day and by shift, estimated energy and its reconciliation with the meter, up to
        the last complete quarter hour (the meter's); None while the day has no complete quarter hour."""
        tz = self.scope.park.tz
        now = self.scope.now() if now is None else now
        start = pd.Timestamp(day).tz_localize(tz)
        end = min(start + pd.DateOffset(days=1), pd.Timestamp(now).tz_convert(tz).floor("15min"))
        if end <= start:
            return None
        devices = self.devices()
        points = self.points("current", start - pd.DateOffset(days=6) - bracelets.lead_time(devices), end)
        metered = self.aggregate("energy", start, end, "day", where={"carrier": "electricity"})
        return bracelets.equipment_day(self.enterprise, devices, points, metered, start, end)

    # ---- meters (drill down: workshop -> its meters -> one meter's readings and quality codes) --------------
    def meters(self, workshop: str | None = None) -> list:
        """The enterprise's meters (of one workshop when given), in park order."""
        return [m for m in self.scope.park.meters if m.enterprise == self.enterprise
                and (workshop is None or m.workshop == workshop)]


    def meter_table(self, start, end, workshop: str | None = None) -> pd.DataFrame:
        """Each meter's energy (in its carrier's unit), coverage, estimated readings and quarantined rows over
        [start, end)."""
        from park.units import canonical_unit

        meters = self.meters(workshop)
        if not meters:
            return pd.DataFrame(columns=METER_COLUMNS)
        ids = [m.id for m in meters]
        cov = self.scope.coverage("energy", start, end, by=("series",), where=self._where({"series": ids}))
        cov = cov.set_index("series") if len(cov) else pd.DataFrame(columns=["expected", "measured"])
        pts = self.points("energy", start, end, where={"series": ids})
        value = pts.groupby("series")["value"].sum(min_count=1) if len(pts) else pd.Series(dtype=float)
        estimated = (pts[pts["quality"] != "measured"].groupby("series").size() if len(pts)
                     else pd.Series(dtype=int))
        q = self._quarantined(ids, start, end)
        bad = q.groupby("series").size() if len(q) else pd.Series(dtype=int)
        rows = []
        for m in meters:
            exp = float(cov["expected"].get(m.id, 0) or 0)
            rows.append({"meter": m.id, "name": m.name, "carrier": m.carrier.value, "workshop": m.workshop,
                         "value": float(value.get(m.id, float("nan"))), "unit": canonical_unit(m.carrier.value),
                         "coverage": float(cov["measured"].get(m.id, 0) or 0) / exp if exp else float("nan"),
                         "estimated": int(estimated.get(m.id, 0)), "quarantined": int(bad.get(m.id, 0))})
        return pd.DataFrame(rows, columns=METER_COLUMNS)


    def _quarantined(self, ids: list[str], start, end) -> pd.DataFrame:
        """Quarantined rows of these meters whose reading time (else time received) falls in [start, end)."""
        q = self.scope.quarantined()
        q = q[q["series"].isin(ids)].copy()
        if q.empty:
            return q
        tz = self.scope.park.tz
        when = pd.to_datetime(q["ts"], utc=True, errors="coerce").fillna(pd.to_datetime(q["received"], utc=True))
        when = when.dt.tz_convert(tz)
        return q[(when >= pd.Timestamp(start)) & (when < pd.Timestamp(end))].reset_index(drop=True)


    def meter_view(self, meter_id: str, start, end) -> MeterView:
        """One meter of this enterprise over [start, end); Forbidden for a meter of another enterprise."""
        from park import findings
        from park.units import canonical_unit
        from portal.access import Forbidden

        meter = next((m for m in self.meters() if m.id == meter_id), None)
        if meter is None:
            raise Forbidden(f"meter {meter_id!r} is not a meter of enterprise {self.enterprise}")
        pts = self.points("energy", start, end, where={"series": [meter.id]})
        cov = self.scope.coverage("energy", start, end, by=("series",), where=self._where({"series": [meter.id]}))
        expected = int(cov["expected"].sum()) if len(cov) else 0
        measured = int(cov["measured"].sum()) if len(cov) else 0
        q = self._quarantined([meter.id], start, end)
        if len(q):
            q["severity"] = [findings.CATALOGUE[c].severity if c in findings.CATALOGUE else "" for c in q["code"]]
            q["sentence"] = [findings.CATALOGUE[c].sentence if c in findings.CATALOGUE else "" for c in q["code"]]
        cols = ["received", "ts", "value", "code", "severity", "sentence", "reason", "source", "line"]
        q = q.reindex(columns=cols)
        return MeterView(meter, pd.Timestamp(start), pd.Timestamp(end), pts[["ts", "value", "quality"]],
                         float(pts["value"].sum(min_count=1)) if len(pts) else float("nan"),
                         canonical_unit(meter.carrier.value), expected, measured,
                         pts["quality"].value_counts().sort_index().to_dict() if len(pts) else {}, q)

    # ---- trend -------------------------------------------------------------------------------------------------
    def monthly_trend(self, now=None, months: int = 12) -> pd.DataFrame:
        """Energy and emissions per calendar month, the last `months` months to now: month (park-local start),
        energy_tce, total_location_t_co2e, total_market_t_co2e, coverage, complete, partial (the running month,
        to the last complete quarter hour).  A month without data has NaN figures, never 0."""
        tz = self.scope.park.tz
        local = pd.Timestamp(self.scope.now() if now is None else now).tz_convert(tz)
        end = local.floor("15min")
        first = pd.Timestamp(local.year, local.month, 1, tz=tz) - pd.DateOffset(months=months - 1)
        ent = self.accounts(first, end, "month").totals_at("enterprise")
        cols = ["month", "energy_tce", "total_location_t_co2e", "total_market_t_co2e", "coverage", "complete",
                "partial"]
        if ent.empty:
            return pd.DataFrame(columns=cols)
        out = ent.assign(month=ent["period_start"],
                         coverage=(ent["measured"] / ent["expected"].where(ent["expected"] > 0)).clip(upper=1.0))
        out["partial"] = out["month"] == pd.Timestamp(local.year, local.month, 1, tz=tz)
        return out.sort_values("month")[cols].reset_index(drop=True)
