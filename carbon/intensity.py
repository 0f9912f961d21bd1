"""Intensities, the emission grade (碳排放等级) and the carbon-efficiency ranking (碳效率排名).

* per output value (单位产值): tCO2e and tce per 10k CNY of output value;
* per product unit (单产能耗 / 单位产品碳排放): tce and tCO2e per unit, allocated as in carbon.footprint;
* year on year: the same period a year earlier;
* grade and ranking, the rule of docs/methodology.md section 4.3: an enterprise's carbon-efficiency index is
  its intensity per output value divided by its comparison group's (its industry in the park when at least
  `min_group` enterprises of it have data, else the whole park; the group's intensity is total emissions over
  total output value); grade 1 (leading) to 5 (poor) by the index, rank 1 the lowest index.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from carbon.emissions import Accounts
from carbon.errors import InputError
from carbon.footprint import allocate
from carbon.inputs import check_output_values
from carbon.periods import Period, period_start

# Upper bounds of the index for grades 1-4; above the last: grade 5.
GRADE_THRESHOLDS = (0.5, 0.8, 1.2, 2.0)
GRADE_NAMES = {1: ("领先", "leading"), 2: ("良好", "good"), 3: ("一般", "average"), 4: ("较差", "below average"),
               5: ("落后", "poor")}
MONTHS_IN = {Period.MONTH: 1, Period.QUARTER: 3, Period.YEAR: 12}
METHODS = ("location", "market")


def _method_column(method: str) -> str:
    if method not in METHODS:
        raise InputError(f"method {method!r} must be 'location' or 'market'")
    return f"total_{method}_t_co2e"


def intensities(accounts: Accounts, output_values: pd.DataFrame, method: str = "location",
                industries: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Per enterprise and period: emissions (Scope 1 + 2, `method`), energy, output value and the intensities.

    A period whose output value is not recorded for every month, or is zero, gets NaN intensities and a `flag`
    (output.missing, output.zero); a negative output value raises NegativeOutputError.
    """
    col = _method_column(method)
    kind = accounts.period
    if kind is Period.DAY:
        raise InputError("output value is recorded per month: intensities need month, quarter or year periods")
    ent = accounts.totals_at("enterprise")
    out_v = check_output_values(output_values)
    tz = str(ent["period_start"].dt.tz) if len(ent) else "Asia/Shanghai"
    out_v["period_start"] = period_start(pd.Series(pd.to_datetime(out_v["month"])).dt.tz_localize(tz), kind)
    # the sum and the distinct months per group, each its own group-by reduction (the same as a named .agg, at
    # less than half its fixed cost: the enterprise page asks four times per load)
    grouped = out_v.groupby(["enterprise", "period_start"], sort=True)
    per = grouped["output_value_10k_cny"].sum().to_frame()
    per["output_months"] = grouped["month"].nunique()
    per = per.reset_index()
    frame = ent[["enterprise", "period", "period_start", "energy_tce", col, "coverage", "complete", "reasons"]].rename(
        columns={col: "emissions_t_co2e"}).merge(per, on=["enterprise", "period_start"], how="left")
    frame["output_months"] = frame["output_months"].fillna(0).astype(int)
    full = frame["output_months"] == MONTHS_IN[kind]
    zero = full & (frame["output_value_10k_cny"] == 0)
    usable = full & ~zero
    value = frame["output_value_10k_cny"].where(usable)
    frame["output_value_10k_cny"] = frame["output_value_10k_cny"].where(full)
    frame["t_co2e_per_10k_cny"] = frame["emissions_t_co2e"] / value
    frame["tce_per_10k_cny"] = frame["energy_tce"] / value
    frame["flag"] = np.select([~full, zero, frame["emissions_t_co2e"].isna()],
                              ["output.missing", "output.zero", "activity.no_data"], "")
    frame["method"] = method
    known = dict(industries or {})
    frame["industry"] = [known.get(e, "") for e in frame["enterprise"]]
    return frame.reset_index(drop=True)


def unit_intensities(accounts: Accounts, product_output: pd.DataFrame, method: str = "location",
                     by: str = "output") -> pd.DataFrame:
    """Per enterprise, product and period: tce and tCO2e per unit of product (单产能耗), allocated `by` output or
    workshop (carbon.footprint)."""
    col = _method_column(method)
    a = allocate(accounts, product_output, by)
    q = a["quantity"].where(a["quantity"] > 0)
    out = a[["enterprise", "workshop", "product", "unit", "period", "period_start", "quantity"]].copy()
    out["energy_tce"] = a["energy_tce"]
    out["emissions_t_co2e"] = a[col]
    out["tce_per_unit"] = a["energy_tce"] / q
    out["t_co2e_per_unit"] = a[col] / q
    out["flag"] = np.where(q.isna(), "output.zero", "")
    out["complete"], out["reasons"] = a["complete"], a["reasons"]
    out["method"] = method
    return out


def year_on_year(frame: pd.DataFrame, columns: Sequence[str], keys: Sequence[str] = ("enterprise",)) -> pd.DataFrame:
    """`frame` with `<col>_last_year` (the same period a year earlier, from the same frame) and `<col>_yoy`
    (relative change; NaN when last year is missing or zero) for each of `columns`.  Pass a frame covering both
    years (e.g. intensities of accounts over two years)."""
    keys = list(keys)
    last = frame[[*keys, "period_start", *columns]].copy()
    last["period_start"] = last["period_start"] + pd.DateOffset(years=1)
    last = last.rename(columns={c: f"{c}_last_year" for c in columns})
    out = frame.merge(last, on=[*keys, "period_start"], how="left")
    for c in columns:
        prev = out[f"{c}_last_year"]
        out[f"{c}_yoy"] = (out[c] - prev) / prev.where(prev != 0)
    return out


def grade_enterprises(intensity: pd.DataFrame, thresholds: Sequence[float] = GRADE_THRESHOLDS,
                      min_group: int = 3) -> pd.DataFrame:
    """Emission grade and carbon-efficiency rank per enterprise and period (rule in the module doc).

    Enterprises without a usable intensity (flag set) get no grade and no rank but stay in the frame.
    Columns added: group, group_t_co2e_per_10k_cny, efficiency_index, grade, grade_zh, grade_en, rank, ranked.
    """
    if list(thresholds) != sorted(thresholds) or len(thresholds) != 4:
        raise InputError(f"grade thresholds {thresholds} must be four increasing index bounds")
    f = intensity.copy()
    ok = (f["flag"] == "") & f["t_co2e_per_10k_cny"].notna()
    sizes = f[ok].groupby(["period_start", "industry"])["enterprise"].transform("nunique")
    f["group"] = "park"
    big = pd.Series(False, index=f.index)
    big.loc[sizes.index] = (sizes >= min_group) & (f.loc[sizes.index, "industry"] != "")
    f.loc[big, "group"] = "industry:" + f.loc[big, "industry"]
    good = f[ok]
    park = good.groupby("period_start")[["emissions_t_co2e", "output_value_10k_cny"]].sum()
    park_bench = (park["emissions_t_co2e"] / park["output_value_10k_cny"]).rename("park_bench").reset_index()
    ind = good.groupby(["period_start", "industry"])[["emissions_t_co2e", "output_value_10k_cny"]].sum()
    ind_bench = (ind["emissions_t_co2e"] / ind["output_value_10k_cny"]).rename("industry_bench").reset_index()
    f = f.merge(park_bench, on="period_start", how="left").merge(ind_bench, on=["period_start", "industry"],
                                                                 how="left")
    f["group_t_co2e_per_10k_cny"] = np.where(f["group"] == "park", f["park_bench"], f["industry_bench"])
    f = f.drop(columns=["park_bench", "industry_bench"])
    f.loc[~ok.to_numpy(), "group_t_co2e_per_10k_cny"] = np.nan
    f["efficiency_index"] = f["t_co2e_per_10k_cny"] / f["group_t_co2e_per_10k_cny"]
    graded = f["efficiency_index"].notna()
    grade = np.searchsorted(np.asarray(thresholds), f["efficiency_index"].to_numpy(), side="left") + 1
    f["grade"] = pd.Series(grade, index=f.index).where(graded).astype("Int64")
    f["grade_zh"] = f["grade"].map(lambda g: GRADE_NAMES[int(g)][0] if pd.notna(g) else "")
    f["grade_en"] = f["grade"].map(lambda g: GRADE_NAMES[int(g)][1] if pd.notna(g) else "")
    f["rank"] = f.groupby("period_start")["efficiency_index"].rank(method="min").astype("Int64")
    f["ranked"] = f.groupby("period_start")["efficiency_index"].transform("count")
    return f

