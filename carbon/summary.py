"""One enterprise's figures over a period, from its accounts: totals by scope, by carrier and by workshop with
coverage, intensities against the same months a year earlier, per-unit figures, and the daily burn-down.

Pure: accounts (carbon.emissions.Accounts) and recorded output come in, frames come out.  Periods run to the last
complete quarter hour in park-local time (intervals still to come are not missing).  The portal's scope reads the
inputs; this module only computes.
"""

from __future__ import annotations

import math

import pandas as pd

from carbon.emissions import Accounts
from carbon.intensity import intensities, unit_intensities, year_on_year
from park.units import canonical_unit, lookup_unit

SCOPE_COLUMNS = ["energy_tce", "scope1_t_co2e", "scope2_location_t_co2e", "scope2_market_t_co2e",
                 "total_location_t_co2e", "total_market_t_co2e"]
PERIODS = ("month", "year", "12m")  # this month, this year, the last 12 months (with the current one)
INTENSITY_METRICS = ["emissions_t_co2e", "energy_tce", "output_value_10k_cny", "t_co2e_per_10k_cny",
                     "tce_per_10k_cny"]
UNIT_INTENSITY_COLUMNS = ["product", "unit", "quantity", "months", "tce_per_unit", "t_co2e_per_unit",
                          "quantity_last_year", "tce_per_unit_last_year", "t_co2e_per_unit_last_year",
                          "tce_per_unit_yoy", "t_co2e_per_unit_yoy"]


# ---- periods -------------------------------------------------------------------------------------------------
def period_bounds(kind: str, now, tz) -> tuple[pd.Timestamp, pd.Timestamp]:
    """[start, end) of a period in park-local time, ending at the last complete quarter hour: this month, this
    year, or the last 12 calendar months including the current one.  Right after midnight on the first of a month,
    "this month" is empty (end == start)."""
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


def month_end(t: pd.Timestamp) -> pd.Timestamp:
    """The first instant of the month after the one holding `t` (t itself when it starts a month)."""
    first = pd.Timestamp(t.year, t.month, 1, tz=t.tz)
    return first if first == t else first + pd.DateOffset(months=1)


def last_year(start: pd.Timestamp, end: pd.Timestamp) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The comparison period a year earlier: the same months in full, so that a month to date compares with a
    whole month's output value."""
    return start - pd.DateOffset(years=1), month_end(end) - pd.DateOffset(years=1)


# ---- totals --------------------------------------------------------------------------------------------------
def coverage(measured: pd.Series, expected: pd.Series) -> float:
    """Measured over expected intervals (capped at 1); NaN when nothing was expected."""
    exp = float(expected.sum())
    return min(float(measured.sum()) / exp, 1.0) if exp > 0 else math.nan


def sums(frame: pd.DataFrame, keys: list[str], columns: list[str]) -> pd.DataFrame:
    """Sums per group (NaN when a group has no value at all), with the coverage of its metered intervals."""
    g = frame.groupby(keys, dropna=False, sort=True)
    out = g[columns].sum(min_count=1)
    counts = g[["measured", "expected"]].sum()
    out["coverage"] = (counts["measured"] / counts["expected"].where(counts["expected"] > 0)).clip(upper=1.0)
    return out.reset_index()


def totals(accounts: Accounts) -> dict[str, float]:
    """The enterprise level's SCOPE_COLUMNS summed over the periods, and their coverage."""
    ent = accounts.totals_at("enterprise")
    out = {c: float(ent[c].sum(min_count=1)) for c in SCOPE_COLUMNS}
    out["coverage"] = coverage(ent["measured"], ent["expected"])
    return out


def by_workshop(accounts: Accounts) -> pd.DataFrame:
    """Per workshop (NaN: enterprise-level meters): SCOPE_COLUMNS and coverage."""
    return sums(accounts.totals_at("workshop").astype({"workshop": object}), ["workshop"], SCOPE_COLUMNS)


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
    out = sums(lines, ["carrier"], ["quantity_canonical", *SCOPE_COLUMNS]).rename(
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


def intensity_summary(this: Accounts, last: Accounts, output_values: pd.DataFrame, start: pd.Timestamp,
                      ly_start: pd.Timestamp) -> tuple[pd.DataFrame, tuple[str, str]]:
    """Emissions (Scope 1 + 2, location-based) and energy per 10k CNY output value this period and the same
    months a year earlier (carbon.intensity.intensities per month, year_on_year for the change), and the flags
    of (this period, last year): metric (INTENSITY_METRICS, then "coverage"), this_period, last_year, change."""
    sides = pd.DataFrame([_side(intensities(acc, output_values), s) for acc, s in ((this, start), (last, ly_start))])
    sides["coverage"] = [coverage(t["measured"], t["expected"]) for t in (this.totals_at("enterprise"),
                                                                          last.totals_at("enterprise"))]
    yoy = year_on_year(sides, INTENSITY_METRICS).iloc[0]
    frame = pd.DataFrame({"metric": [*INTENSITY_METRICS, "coverage"],
                          "this_period": [yoy[m] for m in INTENSITY_METRICS] + [sides["coverage"].iloc[0]],
                          "last_year": [yoy[f"{m}_last_year"] for m in INTENSITY_METRICS] + [sides["coverage"].iloc[1]],
                          "change": [yoy[f"{m}_yoy"] for m in INTENSITY_METRICS] + [math.nan]})
    return frame, (sides["flag"].iloc[0], sides["flag"].iloc[1])


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
        grouped = u.groupby(["product", "unit"], sort=True)  # reductions, not a named .agg with lambdas (costly)
        g = grouped["quantity"].sum().to_frame()
        g["months"] = grouped["period"].nunique()
        g["energy"] = grouped["energy_tce"].sum(min_count=1)
        g["emissions"] = grouped["emissions_t_co2e"].sum(min_count=1)
        q = g["quantity"].where(g["quantity"] > 0)
        sides.append(pd.DataFrame({"quantity": g["quantity"], "months": g["months"], "tce_per_unit": g["energy"] / q,
                                   "t_co2e_per_unit": g["emissions"] / q}))
    now, before = sides
    out = now.join(before.drop(columns="months").add_suffix("_last_year"), how="left")
    for c in ("tce_per_unit", "t_co2e_per_unit"):
        prev = out[f"{c}_last_year"]
        out[f"{c}_yoy"] = (out[c] - prev) / prev.where(prev != 0)
    return out.reset_index()[UNIT_INTENSITY_COLUMNS]


# ---- burn-down -----------------------------------------------------------------------------------------------
def daily_burn(day_totals: pd.DataFrame, column: str = "total_location_t_co2e") -> pd.DataFrame:
    """Scope 1 + 2 per day (`column`: location-based unless a quota basis says otherwise) and cumulated, from
    enterprise totals per day (period_start, the column, coverage): day, t_co2e, cumulative_t_co2e, coverage.
    Days without data stay NaN."""
    return pd.DataFrame({"day": day_totals["period_start"], "t_co2e": day_totals[column],
                         "cumulative_t_co2e": day_totals[column].cumsum(),
                         "coverage": day_totals["coverage"]}).reset_index(drop=True)
