"""Trust tier of a figure (数据可信度), as green-loan evidence packs state it:

* 自证 (declared): stated by the enterprise itself (output value, production, manually entered fuel or a bill it
  typed in), or a figure whose cross-check failed;
* 互证 (cross-checked): an enterprise-provided figure that agrees, within a tolerance, with an independent record
  (its meter against the utility bill, the meter against the bracelets' estimate);
* 他证 (measured): measured by the park's own meters (the platform's metering, read by our collectors).

A figure derived from others (an intensity, a total over carriers) is as trustworthy as its weakest input.
The tiers and their meaning follow issue 12 (green-loan evidence packs) and the bank section of the project's
indicator notes (every figure traceable to metered data).  Pure: frames in, frames out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from carbon.errors import CarbonError

DECLARED, CROSS_CHECKED, MEASURED = "declared", "cross_checked", "measured"
TIERS = {DECLARED: "自证", CROSS_CHECKED: "互证", MEASURED: "他证"}
RANK = {DECLARED: 0, CROSS_CHECKED: 1, MEASURED: 2}
# Where a figure comes from -> its tier before any cross-check.
SOURCES = {
    "park_meter": MEASURED,  # the park's metering (activity source "store")
    "store": MEASURED,
    "enterprise_meter": DECLARED,  # a sub-meter or reading the enterprise reports itself
    "utility_bill": DECLARED,  # a bill the enterprise uploads or types in
    "declared": DECLARED,  # output value, production, manual activity (activity source "input", records "manual")
    "input": DECLARED,
    "manual": DECLARED,
    "bracelet_estimate": DECLARED,  # an estimate, never a measurement of energy
}
REASONS = {
    "park_meter": "measured by the park's meters", "store": "measured by the park's meters",
    "enterprise_meter": "the enterprise's own meter reading", "utility_bill": "the enterprise's utility bill",
    "declared": "declared by the enterprise", "input": "entered by the enterprise",
    "manual": "entered by the enterprise", "bracelet_estimate": "estimated from equipment bracelets",
}
BILL_TOLERANCE = 0.02  # meter vs bill: 2 % (meter class and billing-period edges)
BRACELET_TOLERANCE = 0.05  # bracelet estimates may exceed the meter by at most 5 % before they disagree
FIGURE_COLUMNS = ["figure", "value", "unit", "source", "derived_from"]
CHECK_COLUMNS = ["figure", "check", "reference", "difference", "relative_difference", "tolerance",
                 "within_tolerance"]


class TrustError(CarbonError, ValueError):
    """A figure whose trust cannot be classified (unknown source, missing input, a cycle)."""


# ---- cross-checks ----------------------------------------------------------------------------------------------
def meter_vs_bill(metered: pd.DataFrame, billed: pd.DataFrame, tolerance: float = BILL_TOLERANCE) -> pd.DataFrame:
    """Per billing period: the metered quantity against the utility bill.

    metered: period_start, metered (the meter's total over the billing period, canonical unit), optional coverage;
    billed: period_start, billed (same unit).  Out: period_start, metered, billed, difference (metered - billed),
    relative_difference (difference / billed), tolerance, within_tolerance, status: agree | differ | no_bill |
    no_meter | incomplete_meter (coverage below 1: the meter missed intervals, the difference is not a disagreement
    yet)."""
    m = metered.rename(columns={"value": "metered"})[[c for c in ("period_start", "metered", "coverage")
                                                       if c in metered.columns or c == "metered"]]
    b = billed.rename(columns={"value": "billed"})[["period_start", "billed"]]
    out = m.merge(b, on="period_start", how="outer").sort_values("period_start").reset_index(drop=True)
    out["difference"] = out["metered"] - out["billed"]
    out["relative_difference"] = out["difference"] / out["billed"].where(out["billed"] != 0)
    out["tolerance"] = tolerance
    agree = out["relative_difference"].abs() <= tolerance
    both_zero = (out["billed"] == 0) & (out["metered"] == 0)
    out["within_tolerance"] = (agree | both_zero).where(out["metered"].notna() & out["billed"].notna())
    incomplete = out["coverage"] < 1 if "coverage" in out.columns else pd.Series(False, index=out.index)
    out["status"] = np.select(
        [out["billed"].isna(), out["metered"].isna(), incomplete & ~(agree | both_zero), agree | both_zero],
        ["no_bill", "no_meter", "incomplete_meter", "agree"], "differ")
    return out


def meter_vs_bracelets(metered: pd.DataFrame, estimated: pd.DataFrame,
                       tolerance: float = BRACELET_TOLERANCE) -> pd.DataFrame:
    """Per day (or period): the enterprise's metered electricity against the sum of its bracelets' estimates
    (collectors.bracelet_analytics `energy.estimated_kwh`, before reconciliation).

    The bracelets cover only the machines they clip, so the estimate may be below the meter; it must not exceed it
    (docs/bracelets.md) by more than `tolerance`.  metered: period_start, metered_kwh; estimated: period_start,
    estimated_kwh (summed over devices here if given per device).  Out: period_start, metered_kwh,
    estimated_kwh, difference_kwh (metered - estimated: the load without bracelets), ratio (estimated / metered),
    tolerance, within_tolerance, status: agree | estimate_exceeds_meter | no_estimate | no_meter."""
    est = estimated.groupby("period_start", as_index=False)["estimated_kwh"].sum(min_count=1)
    out = metered[["period_start", "metered_kwh"]].merge(est, on="period_start", how="outer").sort_values(
        "period_start").reset_index(drop=True)
    out["difference_kwh"] = out["metered_kwh"] - out["estimated_kwh"]
    out["ratio"] = out["estimated_kwh"] / out["metered_kwh"].where(out["metered_kwh"] > 0)
    out["tolerance"] = tolerance
    exceeds = out["estimated_kwh"] > out["metered_kwh"] * (1 + tolerance)
    known = out["metered_kwh"].notna() & out["estimated_kwh"].notna()
    out["within_tolerance"] = (~exceeds).where(known)
    out["status"] = np.select([out["estimated_kwh"].isna(), out["metered_kwh"].isna(), exceeds],
                              ["no_estimate", "no_meter", "estimate_exceeds_meter"], "agree")
    return out


def check_rows(figure: str, check: str, reference: str, result: pd.DataFrame) -> pd.DataFrame:
    """One CHECK_COLUMNS row summarising a cross-check frame (`meter_vs_bill` or `meter_vs_bracelets`) for the
    figure it supports: differences summed over the periods, within tolerance only if every compared period is."""
    diff_col = "difference" if "difference" in result.columns else "difference_kwh"
    compared = result[result["within_tolerance"].notna()]
    base_col = "billed" if "billed" in result.columns else "metered_kwh"
    diff = float(compared[diff_col].sum()) if len(compared) else math.nan
    base = float(compared[base_col].sum()) if len(compared) else math.nan
    ok = bool(len(compared)) and bool(compared["within_tolerance"].astype(bool).all())
    tol = float(result["tolerance"].iloc[0]) if len(result) else math.nan
    return pd.DataFrame([{"figure": figure, "check": check, "reference": reference, "difference": diff,
                          "relative_difference": diff / base if base else math.nan, "tolerance": tol,
                          "within_tolerance": ok}], columns=CHECK_COLUMNS)


# ---- classification --------------------------------------------------------------------------------------------
def classify_figures(figures: pd.DataFrame, checks: pd.DataFrame | None = None) -> pd.DataFrame:
    """Each figure with its tier: `tier` (declared | cross_checked | measured), `tier_zh` (自证 | 互证 | 他证) and
    `reason` (a sentence for the report).

    figures: FIGURE_COLUMNS; `source` one of SOURCES (or empty for a derived figure), `derived_from` a list of
    other figures' names (or empty).  checks: CHECK_COLUMNS rows (`check_rows`).  A declared figure with a passing
    check becomes cross-checked; with a failing one it stays declared and says so; a measured figure keeps its
    tier and mentions its checks.  A derived figure takes the lowest tier of its inputs."""
    missing = [c for c in ("figure", "source") if c not in figures.columns]
    if missing:
        raise TrustError(f"figures need columns {', '.join(missing)}")
    f = figures.copy()
    if "derived_from" not in f.columns:
        f["derived_from"] = [[] for _ in range(len(f))]
    f["derived_from"] = [list(d) if isinstance(d, list | tuple) else ([] if not d or d != d else [d])
                         for d in f["derived_from"]]
    if f["figure"].duplicated().any():
        raise TrustError(f"figure {f.loc[f['figure'].duplicated(), 'figure'].iloc[0]!r} listed twice")
    checks = checks if checks is not None else pd.DataFrame(columns=CHECK_COLUMNS)
    by_fig: Mapping[str, pd.DataFrame] = {k: g for k, g in checks.groupby("figure")}
    rows = f.set_index("figure")
    done: dict[str, tuple[str, str]] = {}

    def tier_of(name: str, path: tuple[str, ...]) -> tuple[str, str]:
        if name in done:
            return done[name]
        if name in path:
            raise TrustError(f"figure {name!r} is derived from itself ({' -> '.join([*path, name])})")
        if name not in rows.index:
            raise TrustError(f"figure {path[-1]!r} is derived from {name!r}, which is not among the figures")
        row = rows.loc[name]
        inputs = row["derived_from"]
        if inputs:
            parts = [(i, *tier_of(i, (*path, name))) for i in inputs]
            weakest = min(parts, key=lambda p: RANK[p[1]])
            result = (weakest[1], f"derived from {', '.join(i for i, _, _ in parts)}; weakest input {weakest[0]} "
                                  f"({TIERS[weakest[1]]} {weakest[1]})")
        else:
            src = str(row["source"])
            if src not in SOURCES:
                raise TrustError(f"figure {name!r}: unknown source {src!r} (one of {', '.join(SOURCES)})")
            tier = SOURCES[src]
            result = (tier, _source_reason(src))
            own = by_fig.get(name)
            if own is not None and len(own):
                text = "; ".join(_check_text(c) for c in own.itertuples())
                passed = bool(own["within_tolerance"].astype(bool).all())
                if tier == DECLARED and passed:
                    result = (CROSS_CHECKED, f"{_source_reason(src)}, cross-checked: {text}")
                elif tier == DECLARED:
                    result = (DECLARED, f"{_source_reason(src)}; cross-check failed: {text}")
                else:
                    result = (tier, f"{_source_reason(src)}; also checked: {text}")
        done[name] = result
        return result

    tiers = [tier_of(n, ()) for n in f["figure"]]
    f["tier"] = [t for t, _ in tiers]
    f["tier_zh"] = f["tier"].map(TIERS)
    f["reason"] = [r for _, r in tiers]
    return f


def _source_reason(src: str) -> str:
    return REASONS[src]


def _check_text(c) -> str:
    rel = f" ({c.relative_difference:+.1%})" if isinstance(c.relative_difference, float) and math.isfinite(
        c.relative_difference) else ""
    verdict = "within" if bool(c.within_tolerance) else "outside"
    return f"{c.check} against {c.reference}, difference {c.difference:,.1f}{rel}, {verdict} {c.tolerance:.0%}"


def summary_figures(totals: Mapping[str, float], activity_sources: Mapping[str, str] | None = None,
                    output_value_10k_cny: float | None = None) -> pd.DataFrame:
    """The FIGURE_COLUMNS frame of one enterprise summary (carbon.summary.totals plus its output value), ready for
    `classify_figures`: energy and scopes come from the activity lines' sources (`activity_sources`: figure ->
    source, default every energy figure from the park's meters, "store"); output value is declared; the
    intensities derive from both."""
    srcs = dict(activity_sources or {})
    units = {"energy_tce": "tce", "coverage": "fraction"}
    rows = []
    for key, value in totals.items():
        if key == "coverage":
            continue
        rows.append({"figure": key, "value": value, "unit": units.get(key, "t_co2e"),
                     "source": srcs.get(key, "store"), "derived_from": []})
    if output_value_10k_cny is not None:
        rows.append({"figure": "output_value_10k_cny", "value": output_value_10k_cny, "unit": "10k_cny",
                     "source": "declared", "derived_from": []})
        ok = output_value_10k_cny and output_value_10k_cny > 0
        if "energy_tce" in totals:
            rows.append({"figure": "tce_per_10k_cny", "value": totals["energy_tce"] / output_value_10k_cny if ok
                         else math.nan, "unit": "tce/10k_cny", "source": "",
                         "derived_from": ["energy_tce", "output_value_10k_cny"]})
        if "total_location_t_co2e" in totals:
            rows.append({"figure": "t_co2e_per_10k_cny", "value": totals["total_location_t_co2e"] /
                         output_value_10k_cny if ok else math.nan, "unit": "t_co2e/10k_cny", "source": "",
                         "derived_from": ["total_location_t_co2e", "output_value_10k_cny"]})
    return pd.DataFrame(rows, columns=FIGURE_COLUMNS)
