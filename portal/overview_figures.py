"""The park overview's figures, read through the request's scope: energy today and this month by carrier (and per
enterprise), daily electricity, this month's carbon accounts, the last complete month's ranking with grades, the
year's quota positions and the live load.  The calculations are the wings' (carbon.intensity for grades); this
module sums what the scope reads."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pandas as pd

from carbon.costs import CARBON_PRICE_CNY_PER_T
from carbon.emissions import Accounts
from park.model import Park
from park.units import canonical_unit

NO_QUOTA = "none"  # quota status of an enterprise without a plan or allowances for the year: not in the scheme


@dataclass
class Overview:
    """What the overview shows of energy, computed for one moment."""

    today: pd.DataFrame  # carrier, value, unit, coverage
    month: pd.DataFrame  # carrier, value, unit, coverage
    daily: pd.DataFrame  # start, value, coverage, partial (electricity, last 30 days; today partial)
    by_enterprise: pd.DataFrame  # enterprise, carrier, value, unit, coverage (this month)
    period_month: tuple[pd.Timestamp, pd.Timestamp]


def _by_carrier(read, start: pd.Timestamp, end: pd.Timestamp, by: list[str]) -> pd.DataFrame:
    agg = read("energy", start, end, "day", by=by)
    grouped = agg.groupby(by, dropna=False)
    out = grouped[["measured", "expected"]].sum()
    out["value"] = grouped["value"].sum(min_count=1)  # no data stays NaN, never 0
    out["coverage"] = out["measured"] / out["expected"].where(out["expected"] > 0)
    out = out.reset_index()
    out["unit"] = out["carrier"].map(canonical_unit)
    return out


def compute_overview(read, park: Park, now: datetime) -> Overview:
    """`read` is an aggregate (the scope's, bound to the user; a store's in tools and tests)."""
    local_now = pd.Timestamp(now).tz_convert(park.tz)
    today = local_now.floor("D")
    # Periods run to now (the last complete quarter hour): intervals still to come are not "missing".
    tomorrow = local_now.floor("15min")
    month = pd.Timestamp(today.year, today.month, 1, tz=park.tz)
    daily = read("energy", today - pd.DateOffset(days=29), tomorrow, "day", where={"carrier": "electricity"})
    daily = daily.assign(value=daily["value"].where(daily["coverage"] > 0),  # a day without data is a gap
                         partial=daily["start"] == today)  # today runs to now: its bar is partial
    return Overview(
        today=_by_carrier(read, today, tomorrow, ["carrier"]),
        month=_by_carrier(read, month, tomorrow, ["carrier"]),
        daily=daily[["start", "value", "coverage", "partial"]],
        by_enterprise=_by_carrier(read, month, tomorrow, ["enterprise", "carrier"]),
        period_month=(month, tomorrow),
    )


@dataclass
class CarbonOverview:
    """Carbon figures of the overview: this month to date, the last complete month's ranking, the year's quotas."""

    month: pd.Series  # the park's totals row (energy_tce, scope1/2, totals, coverage)
    mix: pd.DataFrame  # carrier, tce, coverage
    ranking: pd.DataFrame  # enterprise, emissions_t_co2e, energy_tce, output_value_10k_cny, intensity, grade, rank
    ranking_period: str
    quota: pd.DataFrame  # enterprise, used_share, remaining_t, status (surplus, deficit, unknown or NO_QUOTA), ...
    live: pd.DataFrame  # start, kw, coverage (park electricity, the latest complete quarter hours)
    accounts: Accounts | None = None  # this month's (completeness and issues shown beside the figures)
    ranking_accounts: Accounts | None = None  # the ranked month's


def quota_status(positions: pd.DataFrame) -> pd.DataFrame:
    """Positions with `status` NO_QUOTA (and no used share) for enterprises without a plan or allowances for the
    year: an enterprise outside the scheme has no quota, not a deficit."""
    from portal.alerts import in_quota_scheme

    if positions.empty:
        return positions
    out = positions.copy()
    outside = ~in_quota_scheme(out)
    out.loc[outside, "status"] = NO_QUOTA
    out.loc[outside, "used_share"] = float("nan")
    return out


def live_load(frame: pd.DataFrame) -> pd.DataFrame:
    """Average kW of each quarter hour from its energy (kWh per 0.25 h); a quarter hour without any reading is a
    gap (NaN), never a figure."""
    return frame.assign(kw=(frame["value"] * 4.0).where(frame["coverage"] > 0))[["start", "kw", "coverage"]]


def compute_carbon(scope) -> CarbonOverview:
    from carbon.intensity import grade_enterprises, intensities

    now = scope.now()
    to_now = now.floor("15min")
    month = pd.Timestamp(now.year, now.month, 1, tz=scope.park.tz)
    acc = scope.accounts(month, to_now, "month")
    park = acc.totals_at("park")
    month_row = park.iloc[0] if len(park) else pd.Series(dtype=object)
    lines = acc.lines
    if len(lines):
        grouped = lines.groupby("carrier")
        mix = grouped[["measured", "expected"]].sum()
        mix["tce"] = grouped["tce"].sum(min_count=1)
        mix = mix.reset_index()
    else:
        mix = pd.DataFrame(columns=["carrier", "tce", "measured", "expected"])
    mix["coverage"] = mix["measured"] / mix["expected"].where(mix["expected"] > 0)
    last_start = month - pd.DateOffset(months=1)
    last = scope.accounts(last_start, month, "month")
    outputs = scope.output_values(last_start, month)
    industries = {e.id: e.industry for e in scope.park.enterprises}
    ranked = grade_enterprises(intensities(last, outputs, "location", industries)) if len(
        last.totals_at("enterprise")) else pd.DataFrame()
    quota = quota_status(scope.quota_positions(now.year, now, CARBON_PRICE_CNY_PER_T))
    live = live_load(scope.aggregate("energy", to_now - pd.Timedelta("2h"), to_now, "15min",
                                     where={"carrier": "electricity"}))
    return CarbonOverview(month_row, mix[["carrier", "tce", "coverage"]], ranked, f"{last_start:%Y-%m}", quota, live,
                          acc, last)


def overview(scope) -> tuple[Overview, CarbonOverview]:
    """The overview's figures at the current quarter hour, shared briefly by users of the same scope."""
    now = scope.now()
    return scope.memo(f"overview@{now.floor('15min').isoformat()}",
                      lambda: (compute_overview(scope.aggregate, scope.park, now), compute_carbon(scope)))


def live(scope) -> pd.DataFrame:
    now = scope.now().floor("15min")
    return live_load(scope.aggregate("energy", now - pd.Timedelta("2h"), now, "15min",
                                     where={"carrier": "electricity"}))


# ---- the big screen (驾驶舱) ------------------------------------------------------------------------------------
@dataclass
class Cockpit:
    """What the control-room screen shows, computed for one moment (park-local)."""

    now: pd.Timestamp  # when it was computed
    to: pd.Timestamp  # the last complete quarter hour: today's figures run to it
    load: pd.DataFrame  # start, kw, coverage: park electricity per quarter hour today (a gap is NaN)
    energy_today: pd.DataFrame  # carrier, value, unit, coverage
    today: pd.Series  # the park's accounts totals row of today (energy_tce, total_location_t_co2e, coverage...)
    month: pd.Series  # the park's accounts totals row of this month to date
    top: pd.DataFrame  # enterprise, total_location_t_co2e, coverage: this month's top emitters, largest first
    quota: pd.DataFrame  # enterprise, used_share, status: enterprises at or beyond 80 % of their allowances
    coverage_today: float  # measured / expected intervals of every metered carrier today
    complete: bool  # today's and this month's accounts complete


def compute_cockpit(scope, top_n: int = 8) -> Cockpit:
    """The big screen's figures through the scope: today's load curve, energy and emissions, this month's top
    emitters, the enterprises at or beyond 80 % of their allowances, and data completeness."""
    now = pd.Timestamp(scope.now()).tz_convert(scope.park.tz)
    to = now.floor("15min")
    today = now.floor("D")
    month = pd.Timestamp(now.year, now.month, 1, tz=scope.park.tz)
    load = live_load(scope.aggregate("energy", today, to, "15min", where={"carrier": "electricity"})) if to > today \
        else pd.DataFrame(columns=["start", "kw", "coverage"])
    energy = _by_carrier(scope.aggregate, today, to, ["carrier"]) if to > today else pd.DataFrame(
        columns=["carrier", "value", "unit", "coverage", "measured", "expected"])
    empty = pd.Series(dtype=object)
    day_acc = scope.accounts(today, to, "day") if to > today else None
    day_park = day_acc.totals_at("park") if day_acc is not None else pd.DataFrame()
    month_acc = scope.accounts(month, to, "month") if to > month else None
    month_park = month_acc.totals_at("park") if month_acc is not None else pd.DataFrame()
    ent = month_acc.totals_at("enterprise") if month_acc is not None else pd.DataFrame(
        columns=["enterprise", "total_location_t_co2e", "coverage"])
    top = (ent.dropna(subset=["total_location_t_co2e"]).sort_values(["total_location_t_co2e", "enterprise"],
                                                                     ascending=[False, True])
           [["enterprise", "total_location_t_co2e", "coverage"]].head(top_n).reset_index(drop=True))
    quota = quota_status(scope.quota_positions(now.year, now, CARBON_PRICE_CNY_PER_T))
    if len(quota):
        quota = (quota[quota["used_share"] >= 0.8].sort_values("used_share", ascending=False)
                 [["enterprise", "used_share", "status"]].reset_index(drop=True))
    else:
        quota = pd.DataFrame(columns=["enterprise", "used_share", "status"])
    exp = float(energy["expected"].sum()) if len(energy) else 0.0
    complete = all(a is None or a.complete for a in (day_acc, month_acc))
    return Cockpit(now, to, load, energy[["carrier", "value", "unit", "coverage"]],
                   day_park.iloc[0] if len(day_park) else empty, month_park.iloc[0] if len(month_park) else empty,
                   top, quota, float(energy["measured"].sum()) / exp if exp > 0 else float("nan"), complete)


def cockpit(scope) -> Cockpit:
    """The big screen's figures at the current minute, shared briefly by users of the same scope."""
    now = pd.Timestamp(scope.now())
    return scope.memo(f"cockpit@{now.floor('1min').isoformat()}", lambda: compute_cockpit(scope))
