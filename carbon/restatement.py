"""Restatements (重述): when a factor changes, the figures it affects are recomputed and every changed figure is
recorded with its old and new value, the reason and the factor rows on both sides.

`diff_accounts` compares two computations of the same activity (old factors, new factors) and returns the
changed figures; `changed_factor_rows` lists what differs between two registries.  Both are pure; recording
is carbon.records.record_restatements, and carbon.pipeline.restate_factor_import wires them together.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from carbon.emissions import Accounts
from carbon.factors import FactorRegistry
from carbon.periods import period_start

RESTATED_METRICS = ("energy_tce", "scope1_t_co2e", "scope2_location_t_co2e", "scope2_market_t_co2e",
                    "total_location_t_co2e", "total_market_t_co2e", "biogenic_t_co2")
RESTATEMENT_COLUMNS = ["level", "enterprise", "period", "period_start", "metric", "old_value", "new_value", "delta",
                       "old_factors", "new_factors", "old_registry", "new_registry"]


def _factors_by_entity(accounts: Accounts) -> pd.DataFrame:
    """Per enterprise and period: the factor ids its lines used, sorted and '|'-joined."""
    lines = accounts.lines
    ids = lines[["enterprise", "period_start", "tce_factor", "emission_factors", "market_factors"]].melt(
        id_vars=["enterprise", "period_start"], value_name="ids")["ids"]
    keys = lines[["enterprise", "period_start"]]
    long = pd.concat([keys] * 3, ignore_index=True).assign(ids=ids.to_numpy())
    long = long.assign(ids=long["ids"].str.split("|")).explode("ids")
    long = long[long["ids"].fillna("") != ""]
    long["period_start"] = period_start(long["period_start"], accounts.period)
    return long.drop_duplicates().sort_values("ids").groupby(["enterprise", "period_start"])["ids"].agg(
        "|".join).reset_index()


def diff_accounts(old: Accounts, new: Accounts, metrics: Sequence[str] = RESTATED_METRICS,
                  levels: Sequence[str] = ("enterprise", "park"), tolerance_t: float = 1e-6) -> pd.DataFrame:
    """Figures that differ between two computations of the same activity (RESTATEMENT_COLUMNS), per level,
    entity, period and metric.  A figure that appears or disappears (NaN on one side) counts as changed."""
    keys = ["level", "enterprise", "period", "period_start"]
    frames = []
    for side, acc in (("old", old), ("new", new)):
        t = acc.totals[acc.totals["level"].isin(levels)]
        long = t.melt(id_vars=keys, value_vars=list(metrics), var_name="metric", value_name=f"{side}_value")
        long["enterprise"] = long["enterprise"].fillna("")
        frames.append(long)
    both = frames[0].merge(frames[1], on=[*keys, "metric"], how="outer")
    o, n = both["old_value"], both["new_value"]
    changed = (o - n).abs().gt(tolerance_t) | (o.isna() != n.isna())
    out = both[changed].copy()
    out["delta"] = out["new_value"] - out["old_value"]
    for side, acc in (("old", old), ("new", new)):
        f = _factors_by_entity(acc).rename(columns={"ids": f"{side}_factors"})
        out = out.merge(f, on=["enterprise", "period_start"], how="left")
        park_ids = "|".join(sorted(acc.factors["id"])) if len(acc.factors) else ""
        out[f"{side}_factors"] = np.where(out["level"] == "park", park_ids, out[f"{side}_factors"].fillna(""))
        out[f"{side}_registry"] = acc.registry_fingerprint
    out["enterprise"] = out["enterprise"].replace("", None)
    return out[RESTATEMENT_COLUMNS].sort_values(["level", "enterprise", "period_start", "metric"],
                                                na_position="first").reset_index(drop=True)


def changed_factor_rows(old: FactorRegistry, new: FactorRegistry) -> pd.DataFrame:
    """Rows added, removed or changed (value, unit or validity) between two registries: id, change, old, new."""
    a = {(r.id, r.origin.split(" ")[0]): r for r in old.rows}
    b = {(r.id, r.origin.split(" ")[0]): r for r in new.rows}
    rows = []
    for k in sorted(set(a) | set(b)):
        ra, rb = a.get(k), b.get(k)
        if ra is None:
            rows.append((k[0], "added", None, rb.value, rb.unit))
        elif rb is None:
            rows.append((k[0], "removed", ra.value, None, ra.unit))
        elif (ra.value, ra.unit, ra.valid_to) != (rb.value, rb.unit, rb.valid_to):
            rows.append((k[0], "changed", ra.value, rb.value, rb.unit))
    return pd.DataFrame(rows, columns=["id", "change", "old_value", "new_value", "unit"])
