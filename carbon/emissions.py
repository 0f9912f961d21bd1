"""Scope 1 and Scope 2 emissions (GB/T 32150, GHG Protocol), location- and market-based side by side.

Pipeline (`compute_accounts`), each step documented in docs/methodology.md section 3:

1. check the activity frame and attach each enterprise's region chain;
2. energy in tce per line (carbon.energy);
3. Scope 1, fuels: activity x NCV x carbon content x oxidation x 44/12; a fuel's biogenic share is reported
   as `biogenic_t_co2`, outside the scopes;
4. Scope 2, location-based: net grid electricity (purchased - exported) x the grid average factor; purchased
   heat in GJ (steam: tonnes x (enthalpy - feedwater enthalpy)) x the heat factor; on-site PV carries none;
5. Scope 2, market-based: green certificates and PPAs (1 certificate = 1 MWh) cover grid electricity at zero,
   the remainder at the residual factor; heat as location-based;
6. roll the windows up to the period (day, month, quarter, year) and to workshop, enterprise and park, with
   the coverage of the inputs, the factor rows used, the fall-backs and the issues.

Nothing here reads a store or a database: frames and the registry come in, an `Accounts` goes out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from carbon.energy import NOT_ENERGY, RENEWABLE, add_tce, prepare_lines
from carbon.errors import InputError
from carbon.factors import CO2_PER_C, DEFAULT_POLICY, FactorLookup, FactorPolicy, FactorRegistry
from carbon.inputs import IMPORT, check_activity, check_instruments
from carbon.issues import Issue, issue_frame
from carbon.periods import Period, coarser_or_equal, native_period, period, period_end, period_label, period_start

GRID, ONSITE, HEAT, STEAM, FUEL, OTHER = "grid_electricity", "onsite_renewable", "purchased_heat", "purchased_steam", \
    "fuel", "not_energy"
METRICS = ["energy_tce", "renewable_tce", "scope1_t_co2e", "scope2_location_t_co2e", "scope2_market_t_co2e",
           "biogenic_t_co2", "grid_net_kwh", "green_kwh", "pv_kwh"]
TOTAL_COLUMNS = ["level", "enterprise", "workshop", "period", "period_start", "period_end", *METRICS,
                 "total_location_t_co2e", "total_market_t_co2e", "coverage", "measured", "expected", "complete",
                 "missing_carriers", "carriers"]


@dataclass
class Accounts:
    """Result of `compute_accounts`: figures with their provenance.

    lines: one row per entity, carrier, flow and period with activity, tce, emissions and factor ids;
    totals: one row per level (workshop, enterprise, park), entity and period (TOTAL_COLUMNS);
    factors: the factor rows used; fallbacks: where a lookup fell back and why; issues: what is missing.
    """

    lines: pd.DataFrame
    totals: pd.DataFrame
    factors: pd.DataFrame
    fallbacks: pd.DataFrame
    issues: pd.DataFrame
    period: Period
    policy: FactorPolicy
    registry_fingerprint: str

    def totals_at(self, level: str) -> pd.DataFrame:
        """Totals of one level: 'workshop', 'enterprise' or 'park'."""
        return self.totals[self.totals["level"] == level].reset_index(drop=True)


def role_of(carrier: str) -> str:
    """What a carrier is for the accounting: grid electricity, on-site renewable, heat, steam, fuel, or not energy."""
    if carrier == "electricity":
        return GRID
    if carrier in RENEWABLE:
        return ONSITE
    if carrier == "heat":
        return HEAT
    if carrier == "steam":
        return STEAM
    if carrier in NOT_ENERGY:
        return OTHER
    return FUEL  # anything else burns; its NCV must be in the registry (FactorNotFoundError otherwise)


def compute_accounts(activity: pd.DataFrame, registry: FactorRegistry, regions: pd.DataFrame,
                     policy: FactorPolicy = DEFAULT_POLICY, period_kind: Period | str = Period.MONTH,
                     instruments: pd.DataFrame | None = None, coverage_threshold: float = 0.9,
                     strict: bool = True) -> Accounts:
    """Energy, Scope 1 and Scope 2 (both methods) for every workshop, enterprise and the park, per period.

    activity: carbon.inputs.ACTIVITY_COLUMNS in windows of whole days or months (carbon.activity gives them);
    regions: enterprise -> region chain (carbon.regions.enterprise_regions); instruments: green certificates and
    PPAs (carbon.inputs.INSTRUMENT_COLUMNS).  `strict`: a missing factor raises FactorNotFoundError; otherwise
    the line's figures are NaN and the issue `factor.missing` says which.
    """
    kind = period(period_kind)
    act = check_activity(activity)
    native = native_period(act["period_start"], act["period_end"])
    if not coarser_or_equal(kind, native):
        raise InputError(f"cannot report per {kind.value} from activity in {native.value} windows: load the activity "
                    f"with window '{kind.value}' or finer")
    lookup = FactorLookup(registry, policy, strict)
    lines = prepare_lines(act, regions)
    lines["role"] = lines["carrier"].map(role_of)
    issues = [Issue("activity.not_energy", f"carrier {c} is not energy: not accounted", carrier=c)
              for c in sorted(lines.loc[lines["role"] == OTHER, "carrier"].unique())]
    lines = lines[lines["role"] != OTHER].reset_index(drop=True)
    lines = add_tce(lines, lookup)
    lines = _scope1(lines, lookup)
    lines = _scope2_location(lines, lookup)
    lines, inst_issues = _scope2_market(lines, lookup, check_instruments(instruments))
    issues += inst_issues
    lines["period"] = period_label(lines["period_start"], native)
    totals = _totals(lines, kind)
    issues += _activity_issues(lines, totals, kind, coverage_threshold)
    issues += [Issue("factor.missing", str(exc), carrier=key) for exc, key in lookup.missing]
    for fb in lookup.fallback_frame().itertuples():
        issues.append(Issue(fb.code, f"{fb.reason} (enterprises: {fb.enterprises})", carrier=fb.key,
                            period=fb.on.isoformat()))
    unverified = [r for r in lookup.used.values() if not r.verified]
    issues += [Issue("factor.unverified", f"factor {r.id} = {r.value} {r.unit} ({r.source}) is not verified: "
                     f"{r.note or 'check it against the primary source'}", carrier=r.key) for r in unverified]
    return Accounts(lines, totals, registry.frame(lookup.used.values()),
                    lookup.fallback_frame(), issue_frame(issues), kind, policy, registry.fingerprint())


def _has_data(lines: pd.DataFrame) -> pd.Series:
    return lines["quantity"].notna()


def _zero_where_data(lines: pd.DataFrame, values: pd.Series | np.ndarray, mask: pd.Series) -> pd.Series:
    """`values` on the lines of `mask`; 0 on the other lines that have data; NaN where there is no data."""
    out = pd.Series(np.where(mask, values, 0.0), index=lines.index, dtype=float)
    return out.where(_has_data(lines))


def _scope1(lines: pd.DataFrame, lookup: FactorLookup) -> pd.DataFrame:
    """t CO2 of fuels: q x NCV x carbon content x oxidation x 44/12, split by the fuel's biogenic share."""
    fuel = lines["role"] == FUEL
    co2 = np.full(len(lines), np.nan)
    bio_share = np.zeros(len(lines))
    ids = np.full(len(lines), "", dtype=object)
    if fuel.any():
        sub = lines[fuel]
        ncv, i1 = lookup.per_base("fuel", "ncv", sub)
        cc, i2 = lookup.per_base("fuel", "carbon_content", sub)
        ox, i3 = lookup.per_base("fuel", "oxidation", sub)
        bio_fuels = [c for c in sub["carrier"].unique() if lookup.registry.has("fuel", c, "biogenic_fraction")]
        has_bio = sub["carrier"].isin(bio_fuels).to_numpy()
        bio, i4 = np.zeros(len(sub)), np.full(len(sub), "", dtype=object)
        if has_bio.any():
            bio[has_bio], i4[has_bio] = lookup.per_base("fuel", "biogenic_fraction", sub[has_bio])
        mask = fuel.to_numpy()
        co2[mask] = sub["q_base"].to_numpy() * ncv * cc * ox * CO2_PER_C
        bio_share[mask] = bio
        ids[mask] = _join_ids(i1, i2, i3, i4)
    out = lines.copy()
    out["scope1_t_co2e"] = _zero_where_data(out, co2 * (1.0 - bio_share), fuel)
    out["biogenic_t_co2"] = _zero_where_data(out, co2 * bio_share, fuel)
    out["emission_factors"] = ids
    return out


def _scope2_location(lines: pd.DataFrame, lookup: FactorLookup) -> pd.DataFrame:
    """Location-based Scope 2 of grid electricity, heat and steam (exports negative); the heat in GJ."""
    out = lines.copy()
    loc = np.full(len(out), np.nan)
    heat_gj = np.full(len(out), np.nan)
    ids = out["emission_factors"].to_numpy().copy()
    grid = (out["role"] == GRID).to_numpy()
    if grid.any():
        f, i = lookup.per_base("grid", lookup.policy.location_basis, out[grid])
        loc[grid] = out.loc[grid, "q_base"].to_numpy() * out.loc[grid, "sign"].to_numpy() * f
        ids[grid] = i
    heat = (out["role"] == HEAT).to_numpy()
    heat_gj[heat] = out.loc[heat, "q_base"].to_numpy()
    steam = (out["role"] == STEAM).to_numpy()
    if steam.any():
        sub = out[steam]
        key = pd.Series("steam", index=sub.index)
        h, i1 = lookup.per_base("heat", "enthalpy", sub, key=key)
        hw, i2 = lookup.per_base("heat", "feedwater_enthalpy", sub, key=key)
        heat_gj[steam] = sub["q_base"].to_numpy() * (h - hw)  # kg x GJ/kg
        ids[steam] = _join_ids(i1, i2)
    hs = heat | steam
    if hs.any():
        sub = out[hs]
        f, i = lookup.per_base("heat", "emission", sub, key=pd.Series("heat", index=sub.index))
        loc[hs] = heat_gj[hs] * out.loc[hs, "sign"].to_numpy() * f
        ids[hs] = _join_ids(ids[hs], i)
    out["heat_gj"] = heat_gj * out["sign"]
    out["scope2_location_t_co2e"] = _zero_where_data(out, loc, pd.Series(grid | hs, index=out.index))
    out["emission_factors"] = ids
    return out


def _scope2_market(lines: pd.DataFrame, lookup: FactorLookup,
                   instruments: pd.DataFrame) -> tuple[pd.DataFrame, list[Issue]]:
    """Market-based Scope 2: instruments cover net grid electricity at zero, the rest at the residual factor."""
    out = lines.copy()
    grid = (out["role"] == GRID).to_numpy()
    residual = np.full(len(out), np.nan)
    rid = np.full(len(out), "", dtype=object)
    if grid.any():
        residual[grid], rid[grid] = lookup.per_base("grid", "residual", out[grid])
    kwh = out["q_base"].where(grid)
    out["grid_kwh"] = kwh * out["sign"]
    keys = ["enterprise", "period_start"]
    # Lines without data count as nothing here; their absence is reported (carrier_missing, low_coverage).
    g = out[grid].assign(imp=lambda f: f["q_base"].where(f["flow"] == IMPORT, 0.0),
                         net=lambda f: f["q_base"] * f["sign"])
    per_window = g.groupby(keys, sort=False).agg(imp=("imp", "sum"), net=("net", "sum"),
                                                 period_end=("period_end", "first")).reset_index()
    alloc, issues = _allocate_instruments(instruments, per_window)
    per_window["instrument_kwh"] = alloc
    per_window["covered_kwh"] = np.minimum(per_window["instrument_kwh"], per_window["net"].clip(lower=0.0))
    excess = per_window["instrument_kwh"] - per_window["covered_kwh"]
    for r in per_window[excess > 1e-6].itertuples():
        issues.append(Issue("instrument.excess", f"{r.instrument_kwh / 1000:.3f} MWh of instruments against "
                            f"{max(r.net, 0) / 1000:.3f} MWh of net grid electricity: "
                            f"{(r.instrument_kwh - r.covered_kwh) / 1000:.3f} MWh unused", enterprise=r.enterprise,
                            period=r.period_start.date().isoformat(), carrier="electricity"))
    merged = out[keys].merge(per_window[[*keys, "imp", "covered_kwh"]], on=keys, how="left")
    share = np.where((out["flow"] == IMPORT).to_numpy() & grid,
                     out["q_base"].to_numpy() / merged["imp"].replace(0.0, np.nan).to_numpy(), 0.0)
    covered_line = np.nan_to_num(share) * merged["covered_kwh"].fillna(0.0).to_numpy()
    market = (out["grid_kwh"].to_numpy() - covered_line) * residual
    heat_like = out["role"].isin([HEAT, STEAM]).to_numpy()
    market = np.where(heat_like, out["scope2_location_t_co2e"].to_numpy(), market)
    out["green_kwh"] = pd.Series(np.where(grid, covered_line, 0.0), index=out.index).where(_has_data(out))
    out["scope2_market_t_co2e"] = _zero_where_data(out, market, pd.Series(grid | heat_like, index=out.index))
    out["market_factors"] = np.where(grid, rid, np.where(heat_like, out["emission_factors"], ""))
    return out, issues


def _allocate_instruments(instruments: pd.DataFrame, windows: pd.DataFrame) -> tuple[np.ndarray, list[Issue]]:
    """kWh of instruments per enterprise window (docs/methodology.md 3.5): the share of each instrument whose
    claim period falls in the computed range, spread over the windows it overlaps by their grid purchases."""
    alloc = np.zeros(len(windows))
    issues: list[Issue] = []
    if instruments.empty or windows.empty:
        return alloc, issues
    tz = windows["period_start"].dt.tz
    w0 = pd.DatetimeIndex(windows["period_start"]).as_unit("ns").asi8
    w1 = pd.DatetimeIndex(windows["period_end"]).as_unit("ns").asi8
    lo, hi = w0.min(), w1.max()
    owner = windows["enterprise"].to_numpy()
    imp = windows["imp"].fillna(0.0).to_numpy()
    for inst in instruments.itertuples():
        c0 = pd.Timestamp(inst.period_start).tz_localize(tz).as_unit("ns").value
        c1 = pd.Timestamp(inst.period_end).tz_localize(tz).as_unit("ns").value
        inside = max(min(c1, hi) - max(c0, lo), 0) / (c1 - c0)
        if inside < 1.0:
            issues.append(Issue("instrument.outside_range",
                                f"{inst.kind} {inst.reference or ''} claims {inst.period_start} to {inst.period_end}; "
                                f"{inside:.1%} of it lies in the computed range, so "
                                f"{inst.quantity_mwh * inside:.3f} of {inst.quantity_mwh:.3f} MWh apply",
                                enterprise=inst.enterprise, carrier="electricity"))
        overlap = np.clip(np.minimum(w1, c1) - np.maximum(w0, c0), 0, None) / (w1 - w0)
        weight = np.where(owner == inst.enterprise, imp * overlap, 0.0)
        if weight.sum() > 0:
            alloc += inst.quantity_mwh * 1000.0 * inside * weight / weight.sum()
        elif inside > 0:
            issues.append(Issue("instrument.excess", f"{inst.kind} {inst.reference or ''}: no grid purchases of "
                                f"{inst.enterprise} in its claim period within the range: unused",
                                enterprise=inst.enterprise, carrier="electricity"))
    return alloc, issues


def _join_ids(*ids: np.ndarray) -> np.ndarray:
    """Element-wise 'a|b|c' of factor-id arrays, skipping empty ids."""
    out = pd.Series(ids[0], dtype=object).fillna("")
    for more in ids[1:]:
        more = pd.Series(more, dtype=object).fillna("")
        out = out + np.where((out != "") & (more != ""), "|", "") + more
    return out.to_numpy(dtype=object)


def _carrier_lists(f: pd.DataFrame, groups: list[str]) -> pd.DataFrame:
    """Per group: the carriers with data and the carriers without any, as ', '-joined text (vectorised)."""
    has = f.assign(has=f["quantity"].notna()).groupby([*groups, "carrier"], sort=True)["has"].any().unstack(
        "carrier")
    present = np.full(len(has), "", dtype=object)
    missing = np.full(len(has), "", dtype=object)
    for carrier in has.columns:  # columns are sorted: the lists come out sorted
        col = has[carrier]
        yes, no = (col == True).to_numpy(), (col == False).to_numpy()  # noqa: E712 (NaN: not metered)
        present = np.where(yes, present + np.where(present == "", "", ", ") + carrier, present)
        missing = np.where(no, missing + np.where(missing == "", "", ", ") + carrier, missing)
    index = has.index.to_frame(index=False)
    return index.assign(carriers=present, missing_carriers=missing)


def _totals(lines: pd.DataFrame, kind: Period) -> pd.DataFrame:
    """Totals per workshop, enterprise and park and reporting period (TOTAL_COLUMNS)."""
    f = lines.assign(
        energy_tce=lines["tce"],
        renewable_tce=lines["tce"].where(lines["role"] == ONSITE, 0.0).where(lines["quantity"].notna()),
        grid_net_kwh=lines["grid_kwh"].where(lines["role"] == GRID),
        pv_kwh=lines["q_base"].where(lines["role"] == ONSITE),
    )
    f["period_start"] = period_start(f["period_start"], kind)
    f["workshop"] = f["workshop"].fillna("")
    out = []
    for level, keys in (("workshop", ["enterprise", "workshop"]), ("enterprise", ["enterprise"]), ("park", [])):
        groups = [*keys, "period_start"]
        t = f.groupby(groups, sort=True)[[*METRICS, "measured", "expected"]].sum(min_count=1).reset_index()
        lists = _carrier_lists(f, groups)
        t = t.merge(lists, on=groups, how="left")
        t["level"] = level
        for k in ("enterprise", "workshop"):
            if k not in t.columns:
                t[k] = None
        out.append(t)
    totals = pd.concat(out, ignore_index=True)
    totals["workshop"] = totals["workshop"].replace("", None)
    totals["period_end"] = period_end(totals["period_start"], kind)
    totals["period"] = period_label(totals["period_start"], kind)
    totals["total_location_t_co2e"] = totals["scope1_t_co2e"] + totals["scope2_location_t_co2e"]
    totals["total_market_t_co2e"] = totals["scope1_t_co2e"] + totals["scope2_market_t_co2e"]
    totals["coverage"] = (totals["measured"] / totals["expected"].replace(0, np.nan)).clip(upper=1.0)
    totals["complete"] = (totals["missing_carriers"] == "") & totals["energy_tce"].notna()
    return totals[TOTAL_COLUMNS]


def _activity_issues(lines: pd.DataFrame, totals: pd.DataFrame, kind: Period, threshold: float) -> list[Issue]:
    """No data, missing carriers and low coverage, per enterprise (and carrier) and period."""
    issues = []
    ent = totals[totals["level"] == "enterprise"]
    for r in ent[ent["energy_tce"].isna()].itertuples():
        issues.append(Issue("activity.no_data", f"no metered or recorded energy for {r.enterprise} in {r.period}: "
                            "its figures are missing, not zero; check the meters' connection or record the bills",
                            enterprise=r.enterprise, period=r.period))
    for r in ent[(ent["missing_carriers"] != "") & ent["energy_tce"].notna()].itertuples():
        issues.append(Issue("activity.carrier_missing", f"{r.enterprise} has no {r.missing_carriers} data in "
                            f"{r.period}: its totals leave them out", enterprise=r.enterprise, period=r.period,
                            carrier=r.missing_carriers))
    per_carrier = lines.assign(period=period_label(period_start(lines["period_start"], kind), kind)).groupby(
        ["enterprise", "carrier", "period"])[["measured", "expected"]].sum().reset_index()
    per_carrier["coverage"] = per_carrier["measured"] / per_carrier["expected"].replace(0, np.nan)
    low = per_carrier[per_carrier["coverage"] < threshold]
    for r in low.itertuples():
        issues.append(Issue("activity.low_coverage", f"{r.carrier} data of {r.enterprise} in {r.period} covers "
                            f"{r.coverage:.1%} of the expected intervals (threshold {threshold:.0%})",
                            enterprise=r.enterprise, period=r.period, carrier=r.carrier))
    return issues

