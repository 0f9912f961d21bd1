"""Energy in tonnes of standard coal equivalent (吨标准煤, tce), GB/T 2589-2020.

tce = quantity x coefficient (kgce per unit) / 1000.  Electricity and on-site PV use the equivalent (calorific)
value 0.1229 kgce/kWh by default (当量值), or the equal-value / generation basis (等价值) when the policy
says so; fuels have one coefficient (basis 'all'); heat and steam convert from their heat in GJ (steam by mass
through its enthalpy, the same heat content its emissions use).  Exports count negative: comprehensive
energy consumption is what the enterprise used, net of what it sent out.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from carbon.errors import InputError
from carbon.factors import DEFAULT_POLICY, LOOKUP_COLUMNS, FactorLookup, FactorPolicy, FactorRegistry
from carbon.inputs import check_activity

RENEWABLE = frozenset({"pv"})  # on-site renewable electricity consumed on site
NOT_ENERGY = frozenset({"water"})
GJ_PER_TCE = 29.307  # 1 kgce = 29 307 kJ


def prepare_lines(activity: pd.DataFrame, regions: pd.DataFrame) -> pd.DataFrame:
    """Checked activity with each enterprise's region chain (`regions`) and the lookup dates: `on`, the first
    park-local day of the line's window, and `until`, its exclusive end (carbon.split splits a window where a
    factor changes)."""
    chains = dict(zip(regions["enterprise"].tolist(), regions["regions"].tolist(), strict=True))
    codes, names = pd.factorize(activity["enterprise"])
    unknown = sorted(set(names.tolist()) - set(chains))
    if unknown:
        raise InputError(f"no region for enterprise(s) {', '.join(map(str, unknown[:5]))}: pass "
                         "carbon.regions.enterprise_regions(park) for the park they belong to")
    out = activity.copy(deep=False)
    per_name = np.empty(len(names) + 1, dtype=object)  # the chain of each distinct enterprise (last: none)
    per_name[:-1] = [chains[n] for n in names.tolist()]
    out["regions"] = (pd.Series(per_name[codes], index=out.index, dtype=object) if len(out)
                      else out["enterprise"].map(chains))
    out["on"] = _dates(out["period_start"])
    out["until"] = _dates(out["period_end"])
    return out


def _dates(stamps: pd.Series) -> pd.Series:
    """`stamps.dt.date` (local calendar dates as datetime.date), made once per distinct timestamp."""
    codes, uniques = pd.factorize(stamps)
    if (codes < 0).any() or len(uniques) * 2 > len(stamps):
        return stamps.dt.date
    return pd.Series(np.asarray(pd.Series(uniques).dt.date, dtype=object)[codes], index=stamps.index, dtype=object)


def add_heat_gj(lines: pd.DataFrame, lookup: FactorLookup) -> pd.DataFrame:
    """Add `heat_gj` (unsigned) to heat and steam lines: heat in GJ as given; steam in GJ as given, or by mass x
    (enthalpy - feedwater enthalpy).  This one heat content drives both the steam's tce and its emissions."""
    out = lines.copy(deep=False)
    heat_gj = np.full(len(out), np.nan)
    ids = np.full(len(out), "", dtype=object)
    role = out["carrier"].to_numpy()
    by_heat = np.isin(role, ["heat", "steam"]) & (out["dimension"] == "heat").to_numpy()
    heat_gj[by_heat] = out.loc[by_heat, "q_base"].to_numpy()
    by_mass = (role == "steam") & (out["dimension"] == "mass").to_numpy()
    if by_mass.any():
        sub = out.loc[by_mass, [*LOOKUP_COLUMNS, "q_base"]]
        key = pd.Series("steam", index=sub.index)
        h, i1 = lookup.per_base("heat", "enthalpy", sub, key=key)
        hw, i2 = lookup.per_base("heat", "feedwater_enthalpy", sub, key=key)
        heat_gj[by_mass] = sub["q_base"].to_numpy() * (h - hw)  # kg x GJ/kg
        ids[by_mass] = join_ids(i1, i2)
    out["heat_gj"] = heat_gj
    out["heat_factors"] = ids
    return out


def add_tce(lines: pd.DataFrame, lookup: FactorLookup) -> pd.DataFrame:
    """Add `tce` (signed) and `tce_factor` to prepared lines (q_base, dimension, sign, carrier, regions, on,
    enterprise).

    Heat and steam convert from their heat in GJ (`add_heat_gj`, added here if missing) with the heat coefficient;
    a fuel without a coefficient in the standard-coal table converts through its NCV: GJ / 29.307 (the definition
    of the tce), and its `tce_factor` names the NCV row.  A coefficient for one enterprise wins over the park's.
    """
    out = lines if "heat_gj" in lines.columns else add_heat_gj(lines, lookup)
    out = out.copy(deep=False)
    registry, basis = lookup.registry, lookup.policy.energy_basis
    carriers = out["carrier"].unique()
    heat_like = out["carrier"].isin(["heat", "steam"]).to_numpy()
    tabled = [c for c in carriers if c not in ("heat", "steam")
              and (registry.has("tce", c, basis) or registry.has("tce", c, "all"))]
    by_ncv = [c for c in carriers if c not in tabled and c not in NOT_ENERGY and c not in ("heat", "steam")
              and registry.has("fuel", c, "ncv")]
    per_base = np.full(len(out), np.nan)
    amount = out["q_base"].to_numpy(dtype=float).copy()
    ids = np.full(len(out), "", dtype=object)
    table = (~out["carrier"].isin([*by_ncv, *NOT_ENERGY]).to_numpy()) & ~heat_like
    if table.any():
        per_base[table], ids[table] = lookup.per_base("tce", basis, out.loc[table, LOOKUP_COLUMNS], alternative="all",
                                                      dimension=out.loc[table, "dimension"])
    ncv_mask = out["carrier"].isin(by_ncv).to_numpy()
    if ncv_mask.any():
        ncv, ncv_ids = lookup.per_base("fuel", "ncv", out.loc[ncv_mask, LOOKUP_COLUMNS],
                                       dimension=out.loc[ncv_mask, "dimension"])
        per_base[ncv_mask] = ncv / GJ_PER_TCE
        ids[ncv_mask] = ncv_ids
    if heat_like.any():
        sub = out.loc[heat_like, [*LOOKUP_COLUMNS, "heat_gj", "heat_factors"]]
        f, i = lookup.per_base("tce", "all", sub, key=pd.Series("heat", index=sub.index))
        per_base[heat_like] = f
        amount[heat_like] = sub["heat_gj"].to_numpy()
        ids[heat_like] = join_ids(sub["heat_factors"].to_numpy(), i)
    out["tce"] = amount * out["sign"].to_numpy() * per_base
    out["tce_factor"] = ids
    return out


def join_ids(*ids: np.ndarray) -> np.ndarray:
    """Element-wise 'a|b|c' of factor-id arrays, skipping empty ids."""
    out = pd.Series(ids[0], dtype=object).fillna("").reset_index(drop=True)
    for more in ids[1:]:
        more = pd.Series(more, dtype=object).fillna("").reset_index(drop=True)
        out = out + np.where((out != "") & (more != ""), "|", "") + more
    return out.to_numpy(dtype=object)


def energy_tce(activity: pd.DataFrame, registry: FactorRegistry, regions: pd.DataFrame,
               policy: FactorPolicy = DEFAULT_POLICY) -> pd.DataFrame:
    """The activity frame with `tce` per row (exports negative) and the coefficient's row id, for energy
    statistics without emissions.  `regions`: enterprise -> region chain (carbon.regions.enterprise_regions)."""
    lines = prepare_lines(check_activity(activity), regions)
    return add_tce(lines, FactorLookup(registry, policy)).drop(columns=["regions", "on", "until", "heat_factors"])
