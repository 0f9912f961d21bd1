"""Product carbon footprint, ISO 14067 style: the cradle-to-gate share that the enterprise's own Scope 1 and 2
contribute to each product (gate-to-gate), allocated by output or by metered workshop.

Upstream materials and transport are outside this boundary: the result is labelled `boundary` so that nobody
mistakes it for a full cradle-to-gate footprint.  Allocation (docs/methodology.md section 5):

* by='output': each product's share of the enterprise's output in the period (products in one unit);
* by='workshop': each product takes its workshop's metered figures, split by output within the workshop;
  figures of enterprise-level meters and of workshops without products are shared out in proportion to what
  the products were directly given.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from carbon.emissions import Accounts
from carbon.errors import InputError
from carbon.inputs import check_product_output
from carbon.periods import Period, period_label, period_start

BOUNDARY = "gate-to-gate share of cradle-to-gate (Scope 1 + 2 of the enterprise)"
ALLOCATED = ["energy_tce", "scope1_t_co2e", "scope2_location_t_co2e", "scope2_market_t_co2e",
             "total_location_t_co2e", "total_market_t_co2e"]
ALLOCATION_METHODS = ("output", "workshop")


def product_output_per_period(product_output: pd.DataFrame, kind: Period, tz: str) -> pd.DataFrame:
    """Monthly product output summed into the reporting period, with the number of months recorded."""
    if kind is Period.DAY:
        raise InputError("product output is recorded per month: intensities and footprints need month, quarter or "
                         "year periods")
    p = check_product_output(product_output)
    p["period_start"] = period_start(pd.Series(pd.to_datetime(p["month"])).dt.tz_localize(tz), kind)
    p["workshop"] = p["workshop"].fillna("")
    grouped = p.groupby(["enterprise", "workshop", "product", "unit", "period_start"], sort=True)
    out = grouped["quantity"].sum().to_frame()  # each reduction on its own: a named .agg costs twice as much
    out["months"] = grouped["month"].nunique()
    out = out.reset_index()
    out["workshop"] = out["workshop"].replace("", None)
    out["period"] = period_label(out["period_start"], kind)
    return out


def allocate(accounts: Accounts, product_output: pd.DataFrame, by: str = "output") -> pd.DataFrame:
    """Energy and emissions of each enterprise allocated to its products, per period.

    Columns: enterprise, workshop, product, unit, period, period_start, quantity, share (of the enterprise's
    total), the ALLOCATED figures, coverage of the enterprise's inputs, and its `complete` flag and `reasons`.
    """
    if by not in ALLOCATION_METHODS:
        raise InputError(f"allocation {by!r} must be one of {', '.join(ALLOCATION_METHODS)}")
    ent = accounts.totals_at("enterprise")
    if ent.empty:
        return pd.DataFrame(columns=["enterprise", "workshop", "product", "unit", "period", "period_start",
                                     "quantity", "share", *ALLOCATED, "coverage", "complete", "reasons"])
    tz = str(ent["period_start"].dt.tz)
    prod = product_output_per_period(product_output, accounts.period, tz)
    prod = prod[prod["enterprise"].isin(ent["enterprise"])]
    if by == "output":
        units = prod.groupby(["enterprise", "period_start"])["unit"].nunique()
        if (units > 1).any():
            e, p = units[units > 1].index[0]
            raise InputError(f"enterprise {e} has products in several units in {p.date()}: allocation by output "
                             "needs one unit; allocate by='workshop' or record the products in one unit")
        prod["share"] = prod["quantity"] / prod.groupby(["enterprise", "period_start"])["quantity"].transform("sum")
        out = prod.merge(ent[["enterprise", "period_start", *ALLOCATED, "coverage", "complete", "reasons"]],
                         on=["enterprise", "period_start"], how="left")
        for col in ALLOCATED:
            out[col] = out[col] * out["share"]
    else:
        out = _by_workshop(accounts, prod, ent)
    cols = ["enterprise", "workshop", "product", "unit", "period", "period_start", "quantity", "share", *ALLOCATED,
            "coverage", "complete", "reasons"]
    return out[cols].sort_values(["enterprise", "period_start", "product"]).reset_index(drop=True)


def _by_workshop(accounts: Accounts, prod: pd.DataFrame, ent: pd.DataFrame) -> pd.DataFrame:
    if prod["workshop"].isna().any():
        row = prod[prod["workshop"].isna()].iloc[0]
        raise InputError(f"product {row['product']} of {row['enterprise']} has no workshop: allocation by "
                         "workshop needs the workshop that makes each product")
    ws = accounts.totals_at("workshop")
    keys = ["enterprise", "workshop", "period_start"]
    units = prod.groupby(keys)["unit"].nunique()
    if (units > 1).any():
        e, w, _ = units[units > 1].index[0]
        raise InputError(f"workshop {w} of {e} makes products in several units: split them by output is not "
                         "possible; record them in one unit")
    prod = prod.assign(ws_share=prod["quantity"] / prod.groupby(keys)["quantity"].transform("sum"))
    out = prod.merge(ws[[*keys, *ALLOCATED]], on=keys, how="left")
    for col in ALLOCATED:
        direct = out[col].fillna(0.0) * out["ws_share"]
        ekeys = ["enterprise", "period_start"]
        direct_sum = direct.groupby([out[k] for k in ekeys]).transform("sum")
        total = out[ekeys].merge(ent[[*ekeys, col]], on=ekeys, how="left")[col].to_numpy()
        rest = total - direct_sum.to_numpy()
        out[col] = direct + np.where(direct_sum > 0, rest * direct / direct_sum.replace(0.0, np.nan), 0.0)
    out = out.merge(ent[["enterprise", "period_start", "coverage", "complete", "reasons"]],
                    on=["enterprise", "period_start"], how="left")
    ent_total = out.groupby(["enterprise", "period_start"])["total_location_t_co2e"].transform("sum")
    out["share"] = out["total_location_t_co2e"] / ent_total.replace(0.0, np.nan)
    return out


def product_footprints(accounts: Accounts, product_output: pd.DataFrame, by: str = "output") -> pd.DataFrame:
    """Per product and period: kg CO2e per unit, location- and market-based, with its boundary and allocation."""
    a = allocate(accounts, product_output, by)
    q = a["quantity"].replace(0.0, np.nan)
    out = a[["enterprise", "workshop", "product", "unit", "period", "period_start", "quantity", "share"]].copy()
    out["t_co2e_location"] = a["total_location_t_co2e"]
    out["t_co2e_market"] = a["total_market_t_co2e"]
    out["kg_co2e_per_unit_location"] = a["total_location_t_co2e"] * 1000.0 / q
    out["kg_co2e_per_unit_market"] = a["total_market_t_co2e"] * 1000.0 / q
    out["allocation"] = by
    out["boundary"] = BOUNDARY
    out["coverage"] = a["coverage"]
    out["complete"], out["reasons"] = a["complete"], a["reasons"]  # the enterprise's (methodology 1.1)
    return out
