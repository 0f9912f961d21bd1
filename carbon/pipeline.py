"""The accounting of a park end to end: I/O at the edges (store, metadata database), pure accounting between.

This is what the portal, the scheduled reports and the benchmark call.  Each function names what it reads;
the calculations themselves (carbon.emissions, intensity, footprint, quota) never read anything.
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd
from sqlalchemy import Engine

from carbon import records
from carbon.activity import load_activity
from carbon.emissions import Accounts, compute_accounts, grid_purchases
from carbon.errors import InputError
from carbon.factors import DEFAULT_POLICY, FactorPolicy, FactorRegistry
from carbon.periods import Period, period
from carbon.quota import DEFAULT_QUOTA_BASIS, QuotaPlan, quota_basis_policy
from carbon.regions import enterprise_regions
from carbon.restatement import RESTATEMENT_COLUMNS, diff_accounts
from park.model import Park
from park.store import TimeSeriesStore


def park_registry(engine: Engine, park_id: str, import_id: int | None = None,
                  shipped: FactorRegistry | None = None) -> FactorRegistry:
    """The shipped factors plus the park's overrides (its latest factor import, or `import_id`)."""
    base = shipped or FactorRegistry.shipped()
    return base.with_overrides(records.load_factor_overrides(engine, park_id, import_id))


def park_activity(store: TimeSeriesStore, engine: Engine, park: Park, start: datetime, end: datetime,
                  period_kind: Period | str = Period.MONTH) -> pd.DataFrame:
    """Metered activity from the store (day windows for daily results, else months) plus recorded activity."""
    window = "day" if period(period_kind) is Period.DAY else "month"
    metered = load_activity(store, start, end, window)
    recorded = records.load_activity_records(engine, park.id, start, end)
    if window == "day" and len(recorded):
        raise InputError("recorded activity (bills, exports) is per month or longer: daily accounts cannot include "
                         "it; report per month")
    return pd.concat([metered, recorded], ignore_index=True) if len(recorded) else metered


def instrument_basis(store: TimeSeriesStore, engine: Engine, park: Park, instruments: pd.DataFrame,
                     as_of: datetime | None = None) -> pd.DataFrame | None:
    """Grid purchases per enterprise and month over the instruments' claim periods, up to `as_of` (default now):
    what the instruments are allocated over, the same whatever range is computed (methodology 3.5)."""
    if instruments is None or instruments.empty:
        return None
    tz = park.tz
    lo = pd.Timestamp(min(instruments["period_start"])).replace(day=1).tz_localize(tz)
    last = pd.Timestamp(max(instruments["period_end"]))
    hi = (last if last.day == 1 else (last + pd.offsets.MonthBegin(1))).tz_localize(tz)  # whole months
    now = pd.Timestamp(as_of).tz_convert(tz) if as_of is not None else pd.Timestamp.now(tz=tz).floor("15min")
    hi = min(hi, now)
    if hi <= lo:
        return grid_purchases(None)
    who = sorted(set(instruments["enterprise"]))
    metered = load_activity(store, lo, hi, "month", who)
    recorded = records.load_activity_records(engine, park.id, lo, hi)
    recorded = recorded[recorded["enterprise"].isin(who)]
    activity = pd.concat([metered, recorded], ignore_index=True) if len(recorded) else metered
    activity["period_end"] = activity["period_end"].where(activity["period_end"] <= hi, hi)
    return grid_purchases(activity)


def account_park(store: TimeSeriesStore, engine: Engine, park: Park, start: datetime, end: datetime,
                 period_kind: Period | str = Period.MONTH, policy: FactorPolicy = DEFAULT_POLICY,
                 registry: FactorRegistry | None = None, strict: bool = True, as_of: datetime | None = None,
                 coverage_threshold: float | None = None) -> Accounts:
    """Energy and Scope 1 + 2 of every workshop, enterprise and the park over [start, end) per period.

    Instruments are allocated over their whole claim periods (purchases known up to `as_of`, default now), so a
    month has the same market-based figure whatever range it is computed in.  `coverage_threshold`: the park's
    (default 0.9, the key energy-consuming units' completeness rule)."""
    registry = registry or park_registry(engine, park.id)
    activity = park_activity(store, engine, park, start, end, period_kind)
    instruments = records.load_instruments(engine, park.id)
    threshold = coverage_threshold if coverage_threshold is not None else getattr(park, "coverage_threshold", 0.9)
    return compute_accounts(activity, registry, enterprise_regions(park), policy, period_kind, instruments,
                            coverage_threshold=threshold, strict=strict,
                            instrument_basis=instrument_basis(store, engine, park, instruments, as_of))


def quota_emissions(store: TimeSeriesStore, engine: Engine, park: Park, year: int, end: datetime,
                    plans: list[QuotaPlan] | None = None, registry: FactorRegistry | None = None) -> pd.DataFrame:
    """Emissions to compare with each enterprise's allowances for `year`, to `end`, on the basis its quota plan
    sets (carbon.quota.QUOTA_BASES; an enterprise without a plan: the ETS rules): enterprise, year, basis,
    emissions_t_co2e, complete, reasons.  Feed it to carbon.quota.position."""
    plans = records.load_quota_plans(engine, park.id, year) if plans is None else plans
    basis_of = {p.enterprise: p.basis for p in plans}
    start = pd.Timestamp(year, 1, 1, tz=park.tz)
    end = min(pd.Timestamp(end).tz_convert(park.tz), pd.Timestamp(year + 1, 1, 1, tz=park.tz))
    cols = ["enterprise", "year", "basis", "emissions_t_co2e", "complete", "reasons"]
    if end <= start:
        return pd.DataFrame(columns=cols)
    registry = registry or park_registry(engine, park.id)
    frames = []
    for basis in sorted({basis_of.get(e.id, DEFAULT_QUOTA_BASIS) for e in park.enterprises}):
        policy, column = quota_basis_policy(basis)
        acc = account_park(store, engine, park, start, end, Period.YEAR, policy, registry, strict=False)
        ent = acc.totals_at("enterprise")
        ent = ent[[basis_of.get(e, DEFAULT_QUOTA_BASIS) == basis for e in ent["enterprise"]]]
        frames.append(pd.DataFrame({"enterprise": ent["enterprise"], "year": year, "basis": basis,
                                    "emissions_t_co2e": ent[column], "complete": ent["complete"],
                                    "reasons": ent["reasons"]}))
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=cols)
    return out[cols].sort_values("enterprise").reset_index(drop=True)


def restate_factor_import(store: TimeSeriesStore, engine: Engine, park: Park, imported: records.FactorImport,
                          start: datetime, end: datetime, *, actor: str,
                          policy: FactorPolicy = DEFAULT_POLICY) -> pd.DataFrame:
    """Recompute [start, end) with the factors before and after a factor import, record every changed figure as a
    restatement (reason: the import's), and return the changes.  Nothing changed, nothing recorded."""
    if imported.import_id is None or not imported.changes:
        return pd.DataFrame(columns=RESTATEMENT_COLUMNS)
    shipped = FactorRegistry.shipped()
    old, new = shipped.with_overrides(imported.previous), shipped.with_overrides(imported.rows)
    activity = park_activity(store, engine, park, start, end)
    instruments = records.load_instruments(engine, park.id)
    basis = instrument_basis(store, engine, park, instruments)
    regions = enterprise_regions(park)
    before = compute_accounts(activity, old, regions, policy, Period.MONTH, instruments, strict=False,
                              instrument_basis=basis)
    after = compute_accounts(activity, new, regions, policy, Period.MONTH, instruments, strict=False,
                             instrument_basis=basis)
    changes = diff_accounts(before, after)
    records.record_restatements(engine, park.id, changes, reason=imported.reason, actor=actor,
                                factor_import_id=imported.import_id)
    return changes

