"""Energy in tonnes of standard coal equivalent (吨标准煤, tce), GB/T 2589-2020.

tce = quantity x coefficient (kgce per unit) / 1000.  Electricity and on-site PV use the equivalent (calorific)
value 0.1229 kgce/kWh by default (当量值), or the equal-value / generation basis (等价值) when the policy
says so; fuels, heat and steam have one coefficient (basis 'all').  Exports count negative: comprehensive
energy consumption is what the enterprise used, net of what it sent out.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from carbon.errors import InputError
from carbon.factors import DEFAULT_POLICY, FactorLookup, FactorPolicy, FactorRegistry
from carbon.inputs import check_activity

RENEWABLE = frozenset({"pv"})  # on-site renewable electricity consumed on site
NOT_ENERGY = frozenset({"water"})
GJ_PER_TCE = 29.307  # 1 kgce = 29 307 kJ


def prepare_lines(activity: pd.DataFrame, regions: pd.DataFrame) -> pd.DataFrame:
    """Checked activity with each enterprise's region chain (`regions`) and the lookup date (`on`, the window's
    first park-local day: factors are resolved per window)."""
    chains = dict(zip(regions["enterprise"], regions["regions"], strict=True))
    unknown = sorted(set(activity["enterprise"]) - set(chains))
    if unknown:
        raise InputError(f"no region for enterprise(s) {', '.join(map(str, unknown[:5]))}: pass "
                         "carbon.regions.enterprise_regions(park) for the park they belong to")
    out = activity.copy()
    out["regions"] = out["enterprise"].map(chains)
    out["on"] = out["period_start"].dt.date
    return out


def add_tce(lines: pd.DataFrame, lookup: FactorLookup) -> pd.DataFrame:
    """Add `tce` (signed) and `tce_factor` to prepared lines (q_base, sign, carrier, regions, on, enterprise).

    A fuel without a coefficient in the standard-coal table converts through its NCV: GJ / 29.307 (the definition
    of the tce), and its `tce_factor` names the NCV row.
    """
    out = lines.copy()
    registry, basis = lookup.registry, lookup.policy.energy_basis
    carriers = out["carrier"].unique()
    tabled = [c for c in carriers if registry.has("tce", c, basis) or registry.has("tce", c, "all")]
    by_ncv = [c for c in carriers if c not in tabled and c not in NOT_ENERGY and registry.has("fuel", c, "ncv")]
    per_base = np.full(len(out), np.nan)
    ids = np.full(len(out), "", dtype=object)
    for mask, how in ((~out["carrier"].isin([*by_ncv, *NOT_ENERGY]), "table"), (out["carrier"].isin(by_ncv), "ncv")):
        m = mask.to_numpy()
        if not m.any():
            continue
        if how == "table":
            per_base[m], ids[m] = lookup.per_base("tce", basis, out[m], alternative="all")
        else:
            ncv, ncv_ids = lookup.per_base("fuel", "ncv", out[m])
            per_base[m] = ncv / GJ_PER_TCE
            ids[m] = ncv_ids
    out["tce"] = out["q_base"] * out["sign"] * per_base
    out["tce_factor"] = ids
    return out


def energy_tce(activity: pd.DataFrame, registry: FactorRegistry, regions: pd.DataFrame,
               policy: FactorPolicy = DEFAULT_POLICY) -> pd.DataFrame:
    """The activity frame with `tce` per row (exports negative) and the coefficient's row id, for energy
    statistics without emissions.  `regions`: enterprise -> region chain (carbon.regions.enterprise_regions)."""
    lines = prepare_lines(check_activity(activity), regions)
    return add_tce(lines, FactorLookup(registry, policy)).drop(columns=["regions", "on"])
