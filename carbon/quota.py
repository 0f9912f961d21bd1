"""Carbon quotas (碳配额): allocation plans, the movements of the ledger, and the position of an enterprise.

Allocation (docs/methodology.md section 6):
* absolute: a fixed number of allowances for the year;
* intensity-based: benchmark (t per unit of product) x output x correction factor; a pre-allocation of
  `pre_share` (e.g. 70 %) of benchmark x base output early in the year, and a true-up once the year's actual
  output is verified (final - pre-allocated; negative when output fell).

The ledger is a list of movements; the balance and the position are always derived from it (carbon.records
keeps it append-only).  CCER offsets count towards compliance only up to `CCER_CAP` of the allowances due.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from carbon.errors import InputError, LedgerError
from carbon.factors import FactorPolicy

CCER_CAP = 0.05
# kind -> (sign of its effect on the holdings, whether the amount may be negative, meaning)
MOVEMENTS: dict[str, tuple[int, bool, str]] = {
    "allocation": (1, False, "allowances allocated (pre-allocation, or the whole of an absolute plan)"),
    "true_up": (1, True, "final allocation minus pre-allocation, after the output is verified"),
    "adjustment": (1, True, "a correction by the authority or of an earlier entry (signed)"),
    "purchase": (1, False, "allowances bought"),
    "sale": (-1, False, "allowances sold"),
    "ccer_offset": (0, False, "CCER surrendered for compliance (counts up to the cap, not as allowances)"),
    "surrender": (-1, False, "allowances surrendered for compliance (清缴)"),
}
LEDGER_COLUMNS = ["id", "enterprise", "year", "kind", "amount_t", "price_cny_per_t", "reference", "note",
                  "corrects_id", "recorded_at", "actor"]
DEFAULT_THRESHOLDS = (0.8, 1.0)
# What the allowances are compared with (a setting per quota plan):
# basis -> (factor policy, accounts column, meaning)
QUOTA_BASES: dict[str, tuple[FactorPolicy, str, str]] = {
    "ets": (FactorPolicy(location_basis="ets"), "total_location_t_co2e",
            "national ETS rules: fuel combustion plus net purchased electricity at the ETS grid factor and net "
            "purchased heat at 0.11 tCO2/GJ, for the whole enterprise"),
    "location": (FactorPolicy(), "total_location_t_co2e",
                 "location-based Scope 1 + 2 on the statistical grid average (a park or provincial scheme)"),
    "market": (FactorPolicy(), "total_market_t_co2e", "market-based Scope 1 + 2 (certificates count)"),
}
DEFAULT_QUOTA_BASIS = "ets"  # quota plans are for sectors the national ETS covers unless the plan says otherwise


def quota_basis_policy(basis: str) -> tuple[FactorPolicy, str]:
    """(factor policy, accounts totals column) of a quota basis."""
    if basis not in QUOTA_BASES:
        raise InputError(f"quota basis {basis!r} must be one of {', '.join(QUOTA_BASES)}")
    policy, column, _ = QUOTA_BASES[basis]
    return policy, column


@dataclass(frozen=True)
class QuotaPlan:
    """How an enterprise's allowances for a year are allocated."""

    enterprise: str
    year: int
    method: str  # "absolute" or "intensity"
    absolute_t: float | None = None
    benchmark_t_per_unit: float | None = None
    unit: str = ""
    base_output: float | None = None  # output the pre-allocation is based on (usually the previous year's)
    pre_share: float = 0.7
    correction: float = 1.0
    basis: str = DEFAULT_QUOTA_BASIS  # what the allowances are compared with (QUOTA_BASES)

    def __post_init__(self) -> None:
        if self.basis not in QUOTA_BASES:
            raise InputError(f"quota basis {self.basis!r} of {self.enterprise} {self.year} must be one of "
                             f"{', '.join(QUOTA_BASES)}")
        if self.method == "absolute":
            if self.absolute_t is None or self.absolute_t < 0:
                raise InputError(f"absolute plan of {self.enterprise} {self.year} needs absolute_t >= 0")
        elif self.method == "intensity":
            if self.benchmark_t_per_unit is None or self.benchmark_t_per_unit <= 0:
                raise InputError(f"intensity plan of {self.enterprise} {self.year} needs benchmark_t_per_unit > 0")
            if self.base_output is None or self.base_output < 0:
                raise InputError(f"intensity plan of {self.enterprise} {self.year} needs base_output >= 0")
            if not 0 < self.pre_share <= 1:
                raise InputError(f"pre_share {self.pre_share} must be in (0, 1]")
            if self.correction <= 0:
                raise InputError(f"correction {self.correction} must be > 0")
        else:
            raise InputError(f"plan method {self.method!r} must be 'absolute' or 'intensity'")

    @classmethod
    def absolute(cls, enterprise: str, year: int, allowances_t: float, basis: str = DEFAULT_QUOTA_BASIS) -> QuotaPlan:
        return cls(enterprise, year, "absolute", absolute_t=allowances_t, basis=basis)

    @classmethod
    def intensity(cls, enterprise: str, year: int, benchmark_t_per_unit: float, unit: str, base_output: float,
                  pre_share: float = 0.7, correction: float = 1.0, basis: str = DEFAULT_QUOTA_BASIS) -> QuotaPlan:
        return cls(enterprise, year, "intensity", None, benchmark_t_per_unit, unit, base_output, pre_share,
                   correction, basis)


def intensity_allocation(benchmark_t_per_unit: float, output: float, correction: float = 1.0) -> float:
    """Allowances of an intensity-based plan: benchmark x output x correction."""
    if output < 0:
        raise InputError(f"output {output} is negative")
    return benchmark_t_per_unit * output * correction


def pre_allocation(plan: QuotaPlan) -> float:
    """Allowances allocated at the start: pre_share x benchmark x base output x correction, or the absolute amount."""
    if plan.method == "absolute":
        return float(plan.absolute_t)
    return plan.pre_share * intensity_allocation(plan.benchmark_t_per_unit, plan.base_output, plan.correction)


def final_allocation(plan: QuotaPlan, actual_output: float | None = None) -> float:
    """Allowances due for the year once output is verified (absolute plans: the absolute amount)."""
    if plan.method == "absolute":
        return float(plan.absolute_t)
    if actual_output is None:
        raise InputError(f"the final allocation of {plan.enterprise} {plan.year} needs the verified output")
    return intensity_allocation(plan.benchmark_t_per_unit, actual_output, plan.correction)


def true_up(plan: QuotaPlan, actual_output: float | None = None) -> float:
    """The true-up movement: final allocation - pre-allocation (negative: allowances to be returned)."""
    return final_allocation(plan, actual_output) - pre_allocation(plan)


def check_movement(kind: str, amount_t: float) -> None:
    """LedgerError for an unknown kind, or a negative amount where only positive ones make sense."""
    if kind not in MOVEMENTS:
        raise LedgerError(f"unknown movement {kind!r}; kinds: {', '.join(MOVEMENTS)}")
    if not np.isfinite(amount_t):
        raise LedgerError(f"{kind} amount {amount_t} is not a finite number of tonnes")
    if amount_t < 0 and not MOVEMENTS[kind][1]:
        raise LedgerError(f"a {kind} is a positive amount of tonnes (got {amount_t}); to undo an entry, record an "
                          "adjustment that reverses it")


def balances(ledger: pd.DataFrame) -> pd.DataFrame:
    """Per enterprise and year: tonnes by movement kind, and the holdings (allowances on the account)."""
    cols = ["enterprise", "year", *MOVEMENTS, "allocated_t", "holdings_t"]
    if ledger.empty:
        return pd.DataFrame(columns=cols)
    unknown = set(ledger["kind"]) - set(MOVEMENTS)
    if unknown:
        raise LedgerError(f"ledger has unknown movement kind(s) {', '.join(sorted(unknown))}")
    pivot = ledger.pivot_table(index=["enterprise", "year"], columns="kind", values="amount_t", aggfunc="sum",
                               fill_value=0.0).reindex(columns=list(MOVEMENTS), fill_value=0.0)
    pivot.columns.name = None
    pivot["allocated_t"] = pivot["allocation"] + pivot["true_up"] + pivot["adjustment"]
    pivot["holdings_t"] = sum(MOVEMENTS[k][0] * pivot[k] for k in MOVEMENTS)
    return pivot.reset_index()[cols]


def position(ledger: pd.DataFrame, emissions: pd.DataFrame, carbon_price_cny_per_t: float,
             plans: Sequence[QuotaPlan] | pd.DataFrame | None = None,
             thresholds: Sequence[float] = DEFAULT_THRESHOLDS, projection: pd.DataFrame | None = None,
             ccer_cap: float = CCER_CAP) -> pd.DataFrame:
    """The quota position of each enterprise and year.

    ledger: movements (LEDGER_COLUMNS; carbon.records.load_ledger); emissions: enterprise, year (optional when
    one year), emissions_t_co2e to date; projection (optional, from the forecasting module): enterprise, year,
    projected_t_co2e and optionally projected_low_t_co2e / projected_high_t_co2e for the year end.

    Derived columns: allowances_t (allocated + purchased - sold), ccer_usable_t (capped at `ccer_cap` of the
    emissions, the allowances due), used_share = emissions / (allowances + usable CCER), remaining_t, status
    (surplus / deficit), value_cny (remaining x price: a deficit is a cost), threshold (highest crossed),
    warning, and the projected year-end figures when a projection is given.
    """
    if carbon_price_cny_per_t < 0:
        raise InputError(f"carbon price {carbon_price_cny_per_t} CNY/t is negative")
    if list(thresholds) != sorted(thresholds):
        raise InputError(f"thresholds {thresholds} must be increasing")
    em = emissions.copy()
    if "year" not in em.columns:
        years = ledger["year"].unique() if len(ledger) else []
        if len(years) != 1:
            raise InputError("emissions without a year need a ledger of exactly one year")
        em["year"] = int(years[0])
    if "emissions_t_co2e" not in em.columns:
        raise InputError("emissions need a column emissions_t_co2e (Scope 1 + 2 to date)")
    keys = ["enterprise", "year"]
    bal = balances(ledger)
    carried = [c for c in ("basis", "complete", "reasons") if c in em.columns]  # carbon.pipeline.quota_emissions
    out = em[[*keys, "emissions_t_co2e", *carried]].merge(bal, on=keys, how="outer")
    for k in [*MOVEMENTS, "allocated_t", "holdings_t"]:
        out[k] = out[k].fillna(0.0)
    out["allowances_t"] = out["allocated_t"] + out["purchase"] - out["sale"]
    cap = ccer_cap * out["emissions_t_co2e"]
    out["ccer_usable_t"] = np.minimum(out["ccer_offset"], cap.fillna(0.0))
    out["ccer_over_cap_t"] = out["ccer_offset"] - out["ccer_usable_t"]
    cover = out["allowances_t"] + out["ccer_usable_t"]
    out["used_share"] = out["emissions_t_co2e"] / cover.where(cover > 0)
    out["remaining_t"] = cover - out["emissions_t_co2e"]
    out["status"] = np.where(out["remaining_t"].isna(), "unknown",
                             np.where(out["remaining_t"] >= 0, "surplus", "deficit"))
    out["value_cny"] = out["remaining_t"] * carbon_price_cny_per_t
    used = out["used_share"].fillna(np.inf).where(out["emissions_t_co2e"].notna(), np.nan)
    out["threshold"] = np.nan
    for t in thresholds:
        out.loc[used >= t, "threshold"] = t
    out["warning"] = [_warning(t, u, r) for t, u, r in zip(out["threshold"], out["used_share"], out["remaining_t"],
                                                         strict=True)]
    out["surrendered_t"] = out["surrender"]
    out["compliant"] = (out["surrender"] + out["ccer_usable_t"] >= out["emissions_t_co2e"]) & out[
        "emissions_t_co2e"].notna()
    out["has_plan"] = _has_plan(out, plans)
    if projection is not None:
        out = _projected(out, projection, carbon_price_cny_per_t, ccer_cap)
    out["carbon_price_cny_per_t"] = carbon_price_cny_per_t
    return out.sort_values(keys).reset_index(drop=True)


def _warning(threshold: float, used: float, remaining: float) -> str:
    if np.isnan(threshold):
        return ""
    if np.isnan(used):
        return "emissions without any allowances"
    state = f"{used:.0%} of the allowances used"
    return f"{state}; deficit {-remaining:,.1f} t" if remaining < 0 else state


def _has_plan(out: pd.DataFrame, plans: Sequence[QuotaPlan] | pd.DataFrame | None) -> pd.Series:
    if plans is None:
        return pd.Series(np.nan, index=out.index)
    if isinstance(plans, pd.DataFrame):
        known = set(zip(plans["enterprise"], plans["year"], strict=True))
    else:
        known = {(p.enterprise, p.year) for p in plans}
    return pd.Series([(e, y) in known for e, y in zip(out["enterprise"], out["year"], strict=True)], index=out.index)


def _projected(out: pd.DataFrame, projection: pd.DataFrame, price: float, ccer_cap: float) -> pd.DataFrame:
    """Year-end figures from a projection of the year's emissions (the forecasting module's output)."""
    if "projected_t_co2e" not in projection.columns:
        raise InputError("a projection needs a column projected_t_co2e (year-end Scope 1 + 2)")
    p = projection.copy()
    if "year" not in p.columns:
        p["year"] = out["year"].iloc[0]
    cols = [c for c in ("projected_t_co2e", "projected_low_t_co2e", "projected_high_t_co2e") if c in p.columns]
    out = out.merge(p[["enterprise", "year", *cols]], on=["enterprise", "year"], how="left")
    for c in cols:
        suffix = c.removeprefix("projected").removesuffix("_t_co2e")
        ccer = np.minimum(out["ccer_offset"], ccer_cap * out[c])
        out[f"projected{suffix}_remaining_t"] = out["allowances_t"] + ccer - out[c]
    out["projected_status"] = np.where(out["projected_remaining_t"].isna(), "unknown",
                                       np.where(out["projected_remaining_t"] >= 0, "surplus", "deficit"))
    out["projected_value_cny"] = out["projected_remaining_t"] * price
    return out
