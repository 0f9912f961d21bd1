"""The park overview's figures, read through the request's scope: energy today and this month by carrier (and per
enterprise), daily electricity, this month's carbon accounts, the last complete month's ranking with grades, the
year's quota positions and the live load.  The calculations are the wings' (carbon.intensity for grades); this
module sums what the scope reads."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pandas as pd

from carbon import compare
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
    daily: pd.DataFrame  # start, value, coverage, partial (electricity per day: the last 30 days by default, the
    #                      chosen period's days otherwise; today partial)
    by_enterprise: pd.DataFrame  # enterprise, carrier, value, unit, coverage (the period)
    period_month: tuple[pd.Timestamp, pd.Timestamp]  # the period: this month to now by default, else the chosen


def _by_carrier(read, start: pd.Timestamp, end: pd.Timestamp, by: list[str]) -> pd.DataFrame:
    agg = read("energy", start, end, "day", by=by)
    grouped = agg.groupby(by, dropna=False)
    out = grouped[["measured", "expected"]].sum()
    out["value"] = grouped["value"].sum(min_count=1)  # no data stays NaN, never 0
    out["coverage"] = out["measured"] / out["expected"].where(out["expected"] > 0)
    out = out.reset_index()
    out["unit"] = out["carrier"].map(canonical_unit)
    return out


def compute_overview(read, park: Park, now: datetime,
                     period: tuple[pd.Timestamp, pd.Timestamp] | None = None) -> Overview:
    """`read` is an aggregate (the scope's, bound to the user; a store's in tools and tests).  `period`: park-local
    [start, end) chosen on the page (portal.components.picked_period); None: this month to now."""
    local_now = pd.Timestamp(now).tz_convert(park.tz)
    today = local_now.floor("D")
    # Periods run to now (the last complete quarter hour): intervals still to come are not "missing".
    tomorrow = local_now.floor("15min")
    if period is None:
        start, end = pd.Timestamp(today.year, today.month, 1, tz=park.tz), tomorrow
        days = (today - pd.DateOffset(days=29), tomorrow)
    else:
        start, end = period
        days = (start.floor("D"), end)
    daily = read("energy", *days, "day", where={"carrier": "electricity"})
    daily = daily.assign(value=daily["value"].where(daily["coverage"] > 0),  # a day without data is a gap
                         partial=(daily["start"] == today) & (days[1] > today))  # today runs to now: partial
    return Overview(
        today=_by_carrier(read, today, tomorrow, ["carrier"]),
        month=_by_carrier(read, start, end, ["carrier"]),
        daily=daily[["start", "value", "coverage", "partial"]],
        by_enterprise=_by_carrier(read, start, end, ["enterprise", "carrier"]),
        period_month=(start, end),
    )


@dataclass
class CarbonOverview:
    """Carbon figures of the overview: the period (this month to date by default), the last complete month's
    ranking, the year's quotas (its comparisons: `Comparison`)."""

    month: pd.Series  # the park's totals over the period (energy_tce, scope1/2, totals, coverage)
    mix: pd.DataFrame  # carrier, tce, coverage
    ranking: pd.DataFrame  # enterprise, emissions_t_co2e, energy_tce, output_value_10k_cny, intensity, grade, rank
    ranking_period: str
    quota: pd.DataFrame  # enterprise, used_share, remaining_t, status (surplus, deficit, unknown or NO_QUOTA), ...
    live: pd.DataFrame  # start, kw, coverage (park electricity, the latest complete quarter hours)
    accounts: Accounts | None = None  # this month's (completeness and issues shown beside the figures)
    ranking_accounts: Accounts | None = None  # the ranked month's
    period: tuple[pd.Timestamp, pd.Timestamp] | None = None  # [start, end) of `month`


@dataclass
class Comparison:
    """The period's park figures beside the previous period, the same days last year and the year to date."""

    period: tuple[pd.Timestamp, pd.Timestamp]
    comparison: pd.DataFrame  # COMPARED rows: this_period, previous, change_previous, last_year, change
    #                           (carbon.compare.guard: a change is NaN when its base is covered too thinly)
    ytd: pd.DataFrame  # COMPARED rows: this_period (year to date), last_year, change
    bases: dict  # "previous", "last_year", "ytd", "ytd_last_year" -> [start, end)
    flags: dict  # "previous", "last_year", "ytd" -> carbon.compare.LOW_BASE or ""
    coverage: float  # the period's


COMPARED = ["energy_tce", "total_location_t_co2e", "total_market_t_co2e"]  # then a "coverage" row


def park_totals(acc: Accounts) -> pd.Series:
    """The park level's figures summed over the accounts' periods, with their coverage (NaN without rows)."""
    from carbon.summary import SCOPE_COLUMNS, coverage

    park = acc.totals_at("park")
    if park.empty:
        return pd.Series({**{c: float("nan") for c in SCOPE_COLUMNS}, "coverage": float("nan")})
    return pd.Series({**{c: float(park[c].sum(min_count=1)) for c in SCOPE_COLUMNS},
                      "coverage": coverage(park["measured"], park["expected"])})


def comparison_frame(current: pd.Series, bases: dict[str, pd.Series], threshold: float) -> tuple[pd.DataFrame, dict]:
    """Rows COMPARED and "coverage": this_period and each base (column named after it), with each change
    computed and guarded by carbon.compare (the same rule as the enterprise page's): a change whose base is
    covered below `threshold` is NaN and flagged LOW_BASE.  Returns the frame and the flags by base."""
    rows = [*COMPARED, "coverage"]
    frame = pd.DataFrame({"metric": rows, "this_period": [float(current.get(m, float("nan"))) for m in rows],
                          **{name: [float(b.get(m, float("nan"))) for m in rows] for name, b in bases.items()}})
    flags = {}
    for name in bases:
        frame, flags[name] = compare.guard(frame, name, "change" if name == "last_year" else f"change_{name}",
                                           threshold)
    return frame, flags


def ranking_month(end: pd.Timestamp) -> pd.Timestamp:
    """The first day of the latest calendar month that ends at or before `end` (the ranking's month)."""
    first = pd.Timestamp(end.year, end.month, 1, tz=end.tz)
    return first - pd.DateOffset(months=1)


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


def compute_carbon(scope, period: tuple[pd.Timestamp, pd.Timestamp] | None = None) -> CarbonOverview:
    """`period`: park-local [start, end) chosen on the page; None: this month to now (compared as a month)."""
    from carbon.intensity import grade_enterprises, intensities

    now = scope.now().tz_convert(scope.park.tz)
    to_now = now.floor("15min")
    start, end, _ = _bounds(scope, period)
    acc = scope.accounts(start, end, "month")
    month_row = park_totals(acc)
    lines = acc.lines
    if len(lines):
        grouped = lines.groupby("carrier")
        mix = grouped[["measured", "expected"]].sum()
        mix["tce"] = grouped["tce"].sum(min_count=1)
        mix = mix.reset_index()
    else:
        mix = pd.DataFrame(columns=["carrier", "tce", "measured", "expected"])
    mix["coverage"] = mix["measured"] / mix["expected"].where(mix["expected"] > 0)
    rank_start = ranking_month(end)
    rank_end = rank_start + pd.DateOffset(months=1)
    last = scope.accounts(rank_start, rank_end, "month")
    outputs = scope.output_values(rank_start, rank_end)
    industries = {e.id: e.industry for e in scope.park.enterprises}
    ranked = grade_enterprises(intensities(last, outputs, "location", industries)) if len(
        last.totals_at("enterprise")) else pd.DataFrame()
    quota = quota_status(scope.quota_positions(now.year, now, CARBON_PRICE_CNY_PER_T))
    live = live_load(scope.aggregate("energy", to_now - pd.Timedelta("2h"), to_now, "15min",
                                     where={"carrier": "electricity"}))
    return CarbonOverview(month_row, mix[["carrier", "tce", "coverage"]], ranked, f"{rank_start:%Y-%m}", quota, live,
                          acc, last, (start, end))


def _bounds(scope, period) -> tuple[pd.Timestamp, pd.Timestamp, str | None]:
    """[start, end) and kind (carbon.summary.PERIODS; None for a picked range) of the overview's period."""
    now = scope.now().tz_convert(scope.park.tz)
    if period is None:
        return pd.Timestamp(now.year, now.month, 1, tz=scope.park.tz), now.floor("15min"), "month"
    return period[0], period[1], None


def compute_comparison(scope, period: tuple[pd.Timestamp, pd.Timestamp] | None = None) -> Comparison:
    """Like with like (carbon.compare): the period's park totals beside the same local days one period and one
    year earlier, and the year to date beside the same days of last year; each change guarded by the base's
    coverage against the park's threshold.  The accountings are the scope's (shared with the rest of the page)."""
    start, end, kind = _bounds(scope, period)
    bases = compare.bases(start, end, kind)
    ytd = compare.year_to_date(end)
    bases["ytd"] = ytd
    bases["ytd_last_year"] = compare.base_period(*ytd, "year", "last_year")

    def totals(span) -> pd.Series:
        return park_totals(scope.accounts(*span, "month"))

    current = totals((start, end))
    threshold = getattr(scope.park, "coverage_threshold", 0.9)
    frame, flags = comparison_frame(current, {"previous": totals(bases["previous"]),
                                              "last_year": totals(bases["last_year"])}, threshold)
    ytd_frame, ytd_flags = comparison_frame(totals(ytd), {"last_year": totals(bases["ytd_last_year"])}, threshold)
    flags["ytd"] = ytd_flags["last_year"]
    return Comparison((start, end), frame, ytd_frame, bases, flags, float(current["coverage"]))


def comparison(scope, period: tuple[pd.Timestamp, pd.Timestamp] | None = None) -> Comparison:
    """`compute_comparison` at the current quarter hour, shared briefly by users of the same scope."""
    now = scope.now()
    return scope.memo(f"overview-compare@{now.floor('15min').isoformat()}:{period_key(period)}",
                      lambda: compute_comparison(scope, period))


def period_key(period: tuple[pd.Timestamp, pd.Timestamp] | None) -> str:
    """The part of a cache key that names the period ("default": this month to now)."""
    return "default" if period is None else f"{period[0].isoformat()}/{period[1].isoformat()}"


def overview(scope, period: tuple[pd.Timestamp, pd.Timestamp] | None = None) -> tuple[Overview, CarbonOverview]:
    """The overview's figures of `period` (None: this month) at the current quarter hour, shared briefly by users
    of the same scope."""
    now = scope.now()
    return scope.memo(f"overview@{now.floor('15min').isoformat()}:{period_key(period)}",
                      lambda: (compute_overview(scope.aggregate, scope.park, now, period),
                               compute_carbon(scope, period)))


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
