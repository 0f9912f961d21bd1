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

from carbon.energy import NOT_ENERGY, RENEWABLE, add_heat_gj, add_tce, join_ids, prepare_lines
from carbon.errors import InputError
from carbon.factors import CO2_PER_C, DEFAULT_POLICY, LOOKUP_COLUMNS, FactorLookup, FactorPolicy, FactorRegistry
from carbon.inputs import IMPORT, check_activity, check_instruments, require_instrument_columns
from carbon.issues import INCOMPLETE, Issue, issue_frame
from carbon.periods import Period, coarser_or_equal, native_period, period, period_end, period_label, period_start
from carbon.split import split_lines

GRID, ONSITE, HEAT, STEAM, FUEL, OTHER = "grid_electricity", "onsite_renewable", "purchased_heat", "purchased_steam", \
    "fuel", "not_energy"
METRICS = ["energy_tce", "renewable_tce", "scope1_t_co2e", "scope2_location_t_co2e", "scope2_market_t_co2e",
           "biogenic_t_co2", "grid_net_kwh", "grid_export_kwh", "green_kwh", "pv_kwh"]
TOTAL_COLUMNS = ["level", "enterprise", "workshop", "period", "period_start", "period_end", *METRICS,
                 "total_location_t_co2e", "total_market_t_co2e", "coverage", "measured", "expected", "complete",
                 "reasons", "missing_carriers", "carriers"]


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

    @property
    def complete(self) -> bool:
        """Whether every figure is complete (no totals row has a reason not to be)."""
        return bool(self.totals["complete"].all())

    def reasons(self, enterprise: str | None = None, period: str | None = None) -> pd.DataFrame:
        """The issues that make figures incomplete (codes of carbon.issues.INCOMPLETE), optionally of one
        enterprise (park-wide issues included) and one period label ('2024', '2024Q1', '2024-03', '2024-03-05'):
        what a page shows beside a flagged figure."""
        i = self.issues[self.issues["code"].isin(INCOMPLETE)]
        if enterprise is not None:
            i = i[i["enterprise"].isna() | (i["enterprise"] == enterprise)]
        if period is not None:
            if "Q" in period:  # '2024Q1' -> its months
                year, q = period.split("Q")
                prefixes = tuple(f"{year}-{m:02d}" for m in range(3 * int(q) - 2, 3 * int(q) + 1))
            else:
                prefixes = (period,)
            i = i[i["period"].isna() | i["period"].astype(str).str.startswith(prefixes)]
        return i.reset_index(drop=True)


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
                     strict: bool = True, instrument_basis: pd.DataFrame | None = None) -> Accounts:
    """Energy, Scope 1 and Scope 2 (both methods) for every workshop, enterprise and the park, per period.

    activity: carbon.inputs.ACTIVITY_COLUMNS in windows of whole days or months (carbon.activity gives them);
    regions: enterprise -> region chain (carbon.regions.enterprise_regions); instruments: green certificates and
    PPAs (carbon.inputs.INSTRUMENT_COLUMNS); instrument_basis: grid purchases per enterprise and window over the
    instruments' whole claim periods (`grid_purchases` of that activity; default: the activity given), which the
    instruments are allocated over (section 3.5).  `strict`: a missing factor raises FactorNotFoundError;
    otherwise the line's figures are NaN and the issue `factor.missing` says which.  Every totals row says whether
    it is `complete` and, if not, why (`reasons`, codes of carbon.issues.INCOMPLETE).
    """
    kind = period(period_kind)
    act = check_activity(activity)
    native = native_period(act["period_start"], act["period_end"])
    if not coarser_or_equal(kind, native):
        raise InputError(f"cannot report per {kind.value} from activity in {native.value} windows: load the activity "
                    f"with window '{kind.value}' or finer")
    lookup = FactorLookup(registry, policy, strict)
    lines = prepare_lines(act, regions)
    lines["role"] = lines["carrier"].map({c: role_of(c) for c in lines["carrier"].unique()})
    issues = [Issue("activity.not_energy", f"carrier {c} is not energy: not accounted", carrier=c)
              for c in sorted(lines.loc[lines["role"] == OTHER, "carrier"].unique())]
    lines = lines[lines["role"] != OTHER].reset_index(drop=True)
    lines = split_lines(lines, registry, policy)
    split = (lines["share"] < 1.0).to_numpy()  # few windows are split: no frame work when none is
    if split.any():
        for r in lines[split].drop_duplicates(["enterprise", "carrier", "period_start", "on"]).itertuples():
            issues.append(Issue("factor.split", f"a factor for {r.carrier} changes inside the window from "
                                f"{r.period_start.date().isoformat()}: the part from {r.on.isoformat()} "
                                f"({r.share:.1%} of the window's time and quantity) uses the factor in force then",
                                enterprise=r.enterprise, period=r.period_start.date().isoformat(), carrier=r.carrier))
    lines = add_heat_gj(lines, lookup)
    lines = add_tce(lines, lookup)
    lines = _scope1(lines, lookup)
    lines = _scope2_location(lines, lookup)
    basis = None
    if instruments is not None and instruments.empty:  # nothing to allocate: no basis (every window gets 0 kWh)
        require_instrument_columns(instruments)
        instruments = None
    elif instruments is not None:
        instruments = check_instruments(instruments)
        if instrument_basis is None:
            basis = grid_purchases(act)
        elif "import_kwh" in instrument_basis.columns:
            basis = instrument_basis
        else:
            basis = grid_purchases(instrument_basis)
    lines, inst_issues, inst_codes = _scope2_market(lines, lookup, instruments, basis)
    issues += inst_issues
    lines["period"] = period_label(lines["period_start"], native)
    lines["reasons"] = _line_reasons(lines, lookup.line_codes, inst_codes)
    starts = period_start(lines["period_start"], kind).reset_index(drop=True)  # each line's reporting period
    totals = _totals(lines, kind, coverage_threshold, starts)
    issues += _activity_issues(lines, totals, kind, coverage_threshold, starts)
    issues += [Issue("factor.missing", str(exc), carrier=key) for exc, key in lookup.missing]
    fallbacks = lookup.fallback_frame()
    for code, reason, names, key, on in zip(*(fallbacks[c].tolist() for c in ("code", "reason", "enterprises", "key",
                                                                            "on")), strict=True):
        issues.append(Issue(code, f"{reason} (enterprises: {names})", carrier=key, period=on.isoformat()))
    unverified = [r for r in lookup.used.values() if not r.verified]
    issues += [Issue("factor.unverified", f"factor {r.id} = {r.value} {r.unit} ({r.source}) is not verified: "
                     f"{r.note or 'check it against the primary source'}", carrier=r.key) for r in unverified]
    return Accounts(lines, totals, registry.frame(lookup.used.values()), fallbacks, issue_frame(issues), kind,
                    policy, registry.fingerprint())


def grid_purchases(activity: pd.DataFrame) -> pd.DataFrame:
    """Grid electricity purchased (imports, kWh) per enterprise and window, windows without data left out: the
    basis instruments are allocated over (columns enterprise, period_start, period_end, import_kwh)."""
    cols = ["enterprise", "period_start", "period_end", "import_kwh"]
    if activity is None or len(activity) == 0:
        return pd.DataFrame(columns=cols)
    act = activity if "q_base" in activity.columns else check_activity(activity)
    g = act[(act["carrier"] == "electricity") & (act["flow"] == IMPORT) & act["quantity"].notna()]
    out = g.groupby(["enterprise", "period_start", "period_end"], sort=True)["q_base"].sum().reset_index()
    return out.rename(columns={"q_base": "import_kwh"})[cols]


def _line_reasons(lines: pd.DataFrame, factor_codes: dict, instrument_codes: dict) -> pd.Series:
    """Per line, the '|'-joined codes that make its figures incomplete (factors and instruments)."""
    out = [""] * len(lines)
    coded = [idx for idx in {**factor_codes, **instrument_codes} if idx in lines.index]  # few lines have codes
    if coded:
        has_data = lines["quantity"].notna().to_numpy()
        for idx, i in zip(coded, lines.index.get_indexer(coded).tolist(), strict=True):
            codes = set(factor_codes.get(idx, ())) | set(instrument_codes.get(idx, ()))
            if not has_data[i]:
                codes.discard("factor.missing")  # no data is reported as such, not as a missing factor
            out[i] = "|".join(sorted(codes))
    return pd.Series(out, index=lines.index, dtype=object)


def _codes(frame: pd.DataFrame, keys: list[str]) -> np.ndarray:
    """One number per distinct combination of `keys`, in order of first appearance."""
    out = np.zeros(len(frame), dtype=np.int64)
    for k in keys:
        c = pd.factorize(frame[k])[0].astype(np.int64) + 1  # missing: 0
        out = pd.factorize(out * (int(c.max(initial=0)) + 1) + c)[0].astype(np.int64)
    return out


def _has_data(lines: pd.DataFrame) -> pd.Series:
    return lines["quantity"].notna()


def _zero_where_data(lines: pd.DataFrame, values: pd.Series | np.ndarray, mask: pd.Series) -> pd.Series:
    """`values` on the lines of `mask`; 0 on the other lines that have data; NaN where there is no data."""
    has = lines["quantity"].notna().to_numpy()
    return pd.Series(np.where(has, np.where(mask, values, 0.0), np.nan), index=lines.index, dtype=float)


def _scope1(lines: pd.DataFrame, lookup: FactorLookup) -> pd.DataFrame:
    """t CO2 of fuels: q x NCV x carbon content x oxidation x 44/12, split by the fuel's biogenic share."""
    fuel = lines["role"] == FUEL
    co2 = np.full(len(lines), np.nan)
    bio_share = np.zeros(len(lines))
    ids = np.full(len(lines), "", dtype=object)
    if fuel.any():
        sub = lines.loc[fuel, [*LOOKUP_COLUMNS, "dimension", "q_base"]]
        ncv, i1 = lookup.per_base("fuel", "ncv", sub, dimension=sub["dimension"])
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
        ids[mask] = join_ids(i1, i2, i3, i4)
    out = lines.copy(deep=False)
    out["scope1_t_co2e"] = _zero_where_data(out, co2 * (1.0 - bio_share), fuel)
    out["biogenic_t_co2"] = _zero_where_data(out, co2 * bio_share, fuel)
    out["emission_factors"] = ids
    return out


def _scope2_location(lines: pd.DataFrame, lookup: FactorLookup) -> pd.DataFrame:
    """Location-based Scope 2 (GB/T 32150: net of exports) of grid electricity, heat and steam; heat in GJ signed.

    Heat and steam use `heat_gj` (carbon.energy.add_heat_gj), the heat content their tce uses too."""
    out = lines.copy(deep=False)
    loc = np.full(len(out), np.nan)
    ids = out["emission_factors"].to_numpy().copy()
    grid = (out["role"] == GRID).to_numpy()
    if grid.any():
        f, i = lookup.per_base("grid", lookup.policy.location_basis, out.loc[grid, LOOKUP_COLUMNS])
        loc[grid] = out.loc[grid, "q_base"].to_numpy() * out.loc[grid, "sign"].to_numpy() * f
        ids[grid] = i
    hs = out["role"].isin([HEAT, STEAM]).to_numpy()
    if hs.any():
        sub = out.loc[hs, [*LOOKUP_COLUMNS, "heat_gj", "sign", "heat_factors"]]
        f, i = lookup.per_base("heat", "emission", sub, key=pd.Series("heat", index=sub.index))
        loc[hs] = sub["heat_gj"].to_numpy() * sub["sign"].to_numpy() * f
        ids[hs] = join_ids(sub["heat_factors"].to_numpy(), i)
    out["heat_gj"] = out["heat_gj"] * out["sign"]
    out["scope2_location_t_co2e"] = _zero_where_data(out, loc, pd.Series(grid | hs, index=out.index))
    out["emission_factors"] = ids
    return out


def _scope2_market(lines: pd.DataFrame, lookup: FactorLookup, instruments: pd.DataFrame,
                   basis: pd.DataFrame) -> tuple[pd.DataFrame, list[Issue], dict]:
    """Market-based Scope 2 (GHG Protocol Scope 2 Guidance): purchases only, exports neither netted nor credited;
    instruments cover grid purchases at zero, the rest at the residual factor; heat and steam purchases as
    location-based.  Returns the lines, the issues and per line index the instrument codes that make it
    incomplete."""
    out = lines.copy(deep=False)
    grid = (out["role"] == GRID).to_numpy()
    imports = (out["flow"] == IMPORT).to_numpy()
    residual = np.full(len(out), np.nan)
    rid = np.full(len(out), "", dtype=object)
    if grid.any():
        residual[grid], rid[grid] = lookup.per_base("grid", "residual", out.loc[grid, LOOKUP_COLUMNS])
    out["grid_kwh"] = out["q_base"].where(grid) * out["sign"]
    if instruments is None:  # no instruments: every purchase at the residual factor, none covered
        market = np.where(imports, out["q_base"].to_numpy(), 0.0) * residual
        return _market_columns(out, market, np.zeros(len(out)), grid, rid), [], {}
    keys = ["enterprise", "period_start"]
    # Each line's window (enterprise, window start) as a number; the windows of grid purchases in the order they
    # first appear among the grid import lines.
    window = _codes(out, keys)
    # Lines without data count as nothing here; their absence is reported (carrier_missing, low_coverage).
    buying = grid & imports
    g = out[buying]
    by_window = g.groupby(window[buying], sort=False)
    imp = by_window["q_base"].sum()
    first = by_window.head(1)
    per_window = pd.DataFrame({"enterprise": first["enterprise"].to_numpy(),
                               "period_start": first["period_start"].reset_index(drop=True),
                               "imp": imp.to_numpy(), "period_end": first["period_end"].reset_index(drop=True)})
    alloc, issues, flagged = _allocate_instruments(instruments, per_window, basis)
    per_window["instrument_kwh"] = alloc
    per_window["covered_kwh"] = np.minimum(per_window["instrument_kwh"], per_window["imp"].fillna(0.0))
    excess = per_window["instrument_kwh"] - per_window["covered_kwh"]
    for r in per_window[excess > 1e-6].itertuples():
        issues.append(Issue("instrument.excess", f"{r.instrument_kwh / 1000:.3f} MWh of instruments against "
                            f"{r.imp / 1000:.3f} MWh of grid purchases: "
                            f"{(r.instrument_kwh - r.covered_kwh) / 1000:.3f} MWh unused", enterprise=r.enterprise,
                            period=r.period_start.date().isoformat(), carrier="electricity"))
    # Per line, its window's row in per_window (-1: a window without grid purchases)
    row_of = np.full(int(window.max(initial=-1)) + 1, -1, dtype=np.int64)
    row_of[imp.index.to_numpy()] = np.arange(len(per_window))
    line_row = row_of[window]
    has_row = line_row >= 0
    # (a NaN appended for the lines of no window: row -1 picks it)
    window_imp = np.append(per_window["imp"].to_numpy(dtype=float), np.nan)[line_row]
    window_covered = np.append(per_window["covered_kwh"].to_numpy(dtype=float), np.nan)[line_row]
    q_base = out["q_base"].to_numpy(dtype=float)
    divisible = np.asarray(imports & grid) & np.isfinite(window_imp) & (window_imp != 0.0)
    share = np.divide(q_base, window_imp, out=np.zeros_like(q_base), where=divisible)
    covered_line = np.nan_to_num(share) * np.nan_to_num(window_covered, nan=0.0)
    market = np.where(imports, out["q_base"].to_numpy() - covered_line, 0.0) * residual
    out = _market_columns(out, market, covered_line, grid, rid)
    codes: dict = {}
    if flagged:
        for idx, r in zip(out.index[grid & has_row], line_row[grid & has_row].tolist(), strict=True):
            c = flagged.get(r)
            if c:
                codes[idx] = c
    return out, issues, codes


def _market_columns(out: pd.DataFrame, market: np.ndarray, covered_line: np.ndarray, grid: np.ndarray,
                    rid: np.ndarray) -> pd.DataFrame:
    """The lines with green_kwh (grid kWh covered by instruments), scope2_market_t_co2e (grid: `market`; heat and
    steam purchases: as location-based) and market_factors."""
    imports = (out["flow"] == IMPORT).to_numpy()
    heat_like = out["role"].isin([HEAT, STEAM]).to_numpy()
    heat_market = np.where(imports, out["scope2_location_t_co2e"].to_numpy(), 0.0)
    market = np.where(heat_like, heat_market, market)
    out["green_kwh"] = pd.Series(np.where(grid, covered_line, 0.0), index=out.index).where(_has_data(out))
    out["scope2_market_t_co2e"] = _zero_where_data(out, market, pd.Series(grid | heat_like, index=out.index))
    out["market_factors"] = np.where(grid, rid, np.where(heat_like, out["emission_factors"], ""))
    return out


def _allocate_instruments(instruments: pd.DataFrame, windows: pd.DataFrame,
                          basis: pd.DataFrame) -> tuple[np.ndarray, list[Issue], dict]:
    """kWh of instruments per enterprise window (docs/methodology.md 3.5).

    Each instrument is spread over its whole claim period in proportion to grid purchases: a window gets
    quantity x its purchases / the purchases of the claim period (from `basis`, which may span more than the
    computed range), so any range gives the same figure for the same window and months add up to the year.  When
    the basis does not cover the whole claim period (future months, months without data) the purchases of the
    rest are estimated at the covered part's average rate and the windows it reaches are flagged
    `instrument.estimated_basis`; a certificate without a vintage flags them `instrument.no_vintage`.
    Returns the allocation, issues and window (row of `windows`) -> codes."""
    alloc = np.zeros(len(windows))
    issues: list[Issue] = []
    flagged: dict[int, set[str]] = {}
    if instruments.empty or windows.empty:
        return alloc, issues, flagged
    tz = windows["period_start"].dt.tz
    w0 = pd.DatetimeIndex(windows["period_start"]).as_unit("ns").asi8
    w1 = pd.DatetimeIndex(windows["period_end"]).as_unit("ns").asi8
    imp = windows["imp"].fillna(0.0).to_numpy()
    b = basis[basis["import_kwh"].notna()]
    b0 = pd.DatetimeIndex(b["period_start"]).tz_convert(tz).as_unit("ns").asi8 if len(b) else np.zeros(0, "int64")
    b1 = pd.DatetimeIndex(b["period_end"]).tz_convert(tz).as_unit("ns").asi8 if len(b) else np.zeros(0, "int64")
    b_imp = b["import_kwh"].to_numpy(dtype=float)
    b_len = np.maximum(b1 - b0, 1)
    # Enterprises as numbers: one comparison per instrument over the windows and the basis.
    w_names, b_names = windows["enterprise"].tolist(), b["enterprise"].tolist()
    number = {e: i for i, e in enumerate(dict.fromkeys([*w_names, *b_names, *instruments["enterprise"].tolist()]))}
    owner = np.array([number[e] for e in w_names], dtype=np.int64)
    b_owner = np.array([number[e] for e in b_names], dtype=np.int64)
    # A window still running (this month to date) spans only as far as its data: the basis knows where it ends.
    span_end = dict(zip(zip(b_owner.tolist(), b0.tolist(), strict=True), b1.tolist(), strict=True))
    w1 = np.array([min(e, span_end.get((o, s), e)) for o, s, e in zip(owner.tolist(), w0.tolist(), w1.tolist(),
                                                                      strict=True)], dtype="int64")
    w_len = w1 - w0
    for inst in instruments.itertuples():
        c0 = pd.Timestamp(inst.period_start).tz_localize(tz).as_unit("ns").value
        c1 = pd.Timestamp(inst.period_end).tz_localize(tz).as_unit("ns").value
        who = number[inst.enterprise]
        mine = b_owner == who
        b_overlap = np.clip(np.minimum(b1[mine], c1) - np.maximum(b0[mine], c0), 0, None)
        covered = float(b_overlap.sum()) / (c1 - c0)
        total = float((b_imp[mine] * b_overlap / b_len[mine]).sum())
        overlap = np.clip(np.minimum(w1, c1) - np.maximum(w0, c0), 0, None) / w_len
        weight = np.where(owner == who, imp * overlap, 0.0)
        if weight.sum() <= 0:
            continue
        if total <= 0 or covered <= 0:
            issues.append(Issue("instrument.excess", f"{inst.kind} {inst.reference}: no grid purchases of "
                                f"{inst.enterprise} known in its claim period: unused",
                                enterprise=inst.enterprise, carrier="electricity"))
            continue
        codes = set()
        if covered < 1.0 - 1e-9:
            codes.add("instrument.estimated_basis")
            issues.append(Issue("instrument.estimated_basis",
                                f"{inst.kind} {inst.reference} claims {inst.period_start} to {inst.period_end}; grid "
                                f"purchases are known for {min(covered, 1.0):.1%} of it, the rest is estimated at "
                                "the same rate: its allocation changes when they are known",
                                enterprise=inst.enterprise, carrier="electricity"))
            total = total / min(covered, 1.0)
        if inst.kind == "gec" and pd.isna(inst.vintage):
            codes.add("instrument.no_vintage")
            issues.append(Issue("instrument.no_vintage", f"certificate {inst.reference} of {inst.enterprise} has no "
                                "vintage: record the year its electricity was generated", enterprise=inst.enterprise,
                                carrier="electricity"))
        alloc += inst.quantity_mwh * 1000.0 * weight / total
        if codes:
            for i in np.flatnonzero(weight > 0).tolist():
                flagged.setdefault(i, set()).update(codes)
    return alloc, issues, flagged


def _totals(lines: pd.DataFrame, kind: Period, threshold: float = 0.9, starts: pd.Series | None = None
            ) -> pd.DataFrame:
    """Totals per workshop, enterprise and park and reporting period (TOTAL_COLUMNS), each with `complete` and the
    `reasons` (codes) why not: no data, a carrier without data, a carrier's coverage below `threshold`, and the
    factor and instrument codes of its lines.

    Groups are numbered once (keys factorised in sorted order, so numbers sort like the keys); each level sums
    its lines per group in their order, as a group-by on the keys would.  Columns are built as arrays and put in
    one frame at the end (the fixed cost of frames, not the rows, is what a small accounting pays)."""
    role = lines["role"].to_numpy(dtype=object)
    has = lines["quantity"].notna().to_numpy()
    grid, onsite = role == GRID, role == ONSITE
    tce, q_base = lines["tce"].to_numpy(dtype=float), lines["q_base"].to_numpy(dtype=float)
    nan = np.nan
    # Only what the totals sum, in one frame (the lines carry some 35 columns)
    values = pd.DataFrame({
        "energy_tce": tce,
        "renewable_tce": np.where(has, np.where(onsite, tce, 0.0), nan),
        "scope1_t_co2e": lines["scope1_t_co2e"].to_numpy(dtype=float),
        "scope2_location_t_co2e": lines["scope2_location_t_co2e"].to_numpy(dtype=float),
        "scope2_market_t_co2e": lines["scope2_market_t_co2e"].to_numpy(dtype=float),
        "biogenic_t_co2": lines["biogenic_t_co2"].to_numpy(dtype=float),
        "grid_net_kwh": np.where(grid, lines["grid_kwh"].to_numpy(dtype=float), nan),
        "grid_export_kwh": np.where(grid, np.where((lines["flow"] != IMPORT).to_numpy(), q_base, 0.0), nan),
        "green_kwh": lines["green_kwh"].to_numpy(dtype=float), "pv_kwh": np.where(onsite, q_base, nan),
        "measured": lines["measured"].to_numpy(), "expected": lines["expected"].to_numpy(),
    })
    per_carrier_values = pd.DataFrame({"has": has, "measured": values["measured"].to_numpy(),
                                       "expected": values["expected"].to_numpy()})
    if starts is None:
        starts = period_start(lines["period_start"], kind).reset_index(drop=True)
    keyed = {"enterprise": lines["enterprise"].reset_index(drop=True),
             "workshop": lines["workshop"].fillna("").reset_index(drop=True), "period_start": starts,
             "carrier": lines["carrier"]}
    number = {k: pd.factorize(v, sort=True) for k, v in keyed.items()}
    carriers = number["carrier"][1].tolist()
    n_carriers = max(len(carriers), 1)
    reasons_of_line = lines["reasons"].to_numpy(dtype=object)
    flagged = reasons_of_line != ""  # few lines carry codes: group only those
    parts: dict[str, list] = {c: [] for c in ("level", "enterprise", "workshop", "period_start", "carriers",
                                              "missing_carriers", "line_reasons", "low_coverage")}
    sums_of: list[pd.DataFrame] = []
    enterprise_arr = keyed["enterprise"].to_numpy(dtype=object)
    workshop_arr = keyed["workshop"].to_numpy(dtype=object)
    for level, keys in (("workshop", ["enterprise", "workshop"]), ("enterprise", ["enterprise"]), ("park", [])):
        groups = [*keys, "period_start"]
        key = np.zeros(len(lines), dtype=np.int64)
        for k in groups:
            codes, uniques = number[k]
            key = key * max(len(uniques), 1) + codes
        sums_of.append(values.groupby(key, sort=True).sum(min_count=1))
        ids, first = np.unique(key, return_index=True)
        n = len(ids)
        # Per (group, carrier): whether it has data and its coverage
        pc = per_carrier_values.groupby(key * n_carriers + number["carrier"][0], sort=True).sum(min_count=1)
        pc_key = pc.index.to_numpy()
        pos = np.searchsorted(ids, pc_key // n_carriers).tolist()
        measured, expected = pc["measured"].to_numpy(dtype=float), pc["expected"].to_numpy(dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            low = (measured / np.where(expected > 0, expected, nan) < threshold).tolist()
        present: list[list[str]] = [[] for _ in range(n)]
        missing: list[list[str]] = [[] for _ in range(n)]
        low_coverage = [False] * n
        for p, c, with_data, is_low in zip(pos, (pc_key % n_carriers).tolist(), (pc["has"] > 0).tolist(), low,
                                           strict=True):
            (present if with_data else missing)[p].append(carriers[c])  # sorted within a group
            if is_low:
                low_coverage[p] = True
        line_reasons = [""] * n
        if flagged.any():
            merged: dict[int, set[str]] = {}
            for g, v in zip(key[flagged].tolist(), reasons_of_line[flagged].tolist(), strict=True):
                merged.setdefault(g, set()).update(c for c in v.split("|") if c)
            for p, g in zip(np.searchsorted(ids, list(merged)).tolist(), merged, strict=True):
                line_reasons[p] = "|".join(sorted(merged[g]))
        parts["level"].append([level] * n)
        parts["enterprise"].append(enterprise_arr[first] if "enterprise" in groups else [None] * n)
        parts["workshop"].append(workshop_arr[first] if "workshop" in groups else [None] * n)
        parts["period_start"].append(first)
        parts["carriers"].append([", ".join(c) for c in present])
        parts["missing_carriers"].append([", ".join(c) for c in missing])
        parts["line_reasons"].append(line_reasons)
        parts["low_coverage"].append(low_coverage)
    flat = {c: [x for part in parts[c] for x in part] for c in parts if c != "period_start"}
    sums = {c: np.concatenate([s[c].to_numpy() for s in sums_of]) for c in values.columns}
    period_starts = starts.take(np.concatenate(parts["period_start"])).reset_index(drop=True)
    reasons = []
    for no_data, missing_any, low, codes in zip(np.isnan(sums["energy_tce"]).tolist(),
                                                [m != "" for m in flat["missing_carriers"]], flat["low_coverage"],
                                                flat["line_reasons"], strict=True):
        if not (no_data or missing_any or low or codes):
            reasons.append(())
            continue
        r = {c for c in codes.split("|") if c}
        if no_data:
            r.add("activity.no_data")
        elif missing_any:
            r.add("activity.carrier_missing")
        if low:
            r.add("activity.low_coverage")
        reasons.append(tuple(sorted(r)))
    measured, expected = sums["measured"], sums["expected"]
    with np.errstate(divide="ignore", invalid="ignore"):
        coverage = np.minimum(measured / np.where(expected == 0, nan, expected), 1.0)
    reasons_col = np.empty(len(reasons), dtype=object)
    reasons_col[:] = reasons
    text = pd.StringDtype(na_value=np.nan)
    listed = text if reasons else object  # (no rows: untyped lists, as a frame of empty lists types them)
    workshops = np.array(flat["workshop"], dtype=object)
    workshops[workshops == ""] = None
    columns = {
        "level": pd.array(flat["level"], dtype=text),
        "enterprise": pd.Series(flat["enterprise"], dtype=object), "workshop": pd.Series(workshops, dtype=object),
        "period": period_label(period_starts, kind), "period_start": period_starts,
        "period_end": period_end(period_starts, kind), **{c: sums[c] for c in METRICS},
        "total_location_t_co2e": sums["scope1_t_co2e"] + sums["scope2_location_t_co2e"],
        "total_market_t_co2e": sums["scope1_t_co2e"] + sums["scope2_market_t_co2e"],
        "coverage": coverage, "measured": measured, "expected": expected,
        "complete": np.array([not r for r in reasons], dtype=bool),
        "reasons": pd.Series(reasons_col, dtype=object) if reasons else pd.Series([], dtype=float),
        "missing_carriers": pd.array(flat["missing_carriers"], dtype=listed),
        "carriers": pd.array(flat["carriers"], dtype=listed),
    }
    return pd.DataFrame(columns)[TOTAL_COLUMNS]


def _activity_issues(lines: pd.DataFrame, totals: pd.DataFrame, kind: Period, threshold: float,
                     starts: pd.Series | None = None) -> list[Issue]:
    """No data, missing carriers and low coverage, per enterprise (and carrier) and period.  `starts`: each line's
    reporting period start (period_start of its window start), when the caller has it."""
    issues = []
    at_enterprise = (totals["level"] == "enterprise").to_numpy()
    no_data = np.isnan(totals["energy_tce"].to_numpy(dtype=float))
    some_missing = (totals["missing_carriers"] != "").to_numpy(dtype=bool)
    names = totals["enterprise"].to_numpy(dtype=object)
    periods = totals["period"].to_numpy(dtype=object)
    for i in np.flatnonzero(at_enterprise & no_data).tolist():
        issues.append(Issue("activity.no_data", f"no metered or recorded energy for {names[i]} in {periods[i]}: "
                            "its figures are missing, not zero; check the meters' connection or record the bills",
                            enterprise=names[i], period=periods[i]))
    missing = totals["missing_carriers"].to_numpy(dtype=object)
    for i in np.flatnonzero(at_enterprise & some_missing & ~no_data).tolist():
        issues.append(Issue("activity.carrier_missing", f"{names[i]} has no {missing[i]} data in "
                            f"{periods[i]}: its totals leave them out", enterprise=names[i], period=periods[i],
                            carrier=missing[i]))
    # Per enterprise, carrier and period (sorted by the three: a period's start sorts like its label): one number
    # per group, keys factorised sorted; labels made for the flagged groups only
    if starts is None:
        starts = period_start(lines["period_start"], kind).reset_index(drop=True)
    key = np.zeros(len(lines), dtype=np.int64)
    for values in (lines["enterprise"], lines["carrier"], starts):
        codes, uniques = pd.factorize(values, sort=True)
        key = key * max(len(uniques), 1) + codes
    counts = pd.DataFrame({"measured": lines["measured"].to_numpy(), "expected": lines["expected"].to_numpy()})
    sums = counts.groupby(key, sort=True).sum()
    first = np.unique(key, return_index=True)[1]
    with np.errstate(divide="ignore", invalid="ignore"):
        expected = sums["expected"].to_numpy(dtype=float)
        coverage = sums["measured"].to_numpy(dtype=float) / np.where(expected == 0, np.nan, expected)
    low = np.flatnonzero(coverage < threshold)
    if not len(low):
        return issues
    rows = first[low]
    enterprise, carrier = lines["enterprise"].to_numpy(dtype=object), lines["carrier"].to_numpy(dtype=object)
    label = period_label(starts.take(rows).reset_index(drop=True), kind).to_numpy(dtype=object)
    for g, i, lab in zip(low.tolist(), rows.tolist(), label.tolist(), strict=True):
        issues.append(Issue("activity.low_coverage", f"{carrier[i]} data of {enterprise[i]} in {lab} covers "
                            f"{coverage[g]:.1%} of the expected intervals (threshold {threshold:.0%})",
                            enterprise=enterprise[i], period=lab, carrier=carrier[i]))
    return issues
