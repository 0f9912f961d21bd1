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
from carbon.emissions import Accounts, compute_accounts
from carbon.errors import InputError
from carbon.factors import DEFAULT_POLICY, FactorPolicy, FactorRegistry
from carbon.periods import Period, period
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


def account_park(store: TimeSeriesStore, engine: Engine, park: Park, start: datetime, end: datetime,
                 period_kind: Period | str = Period.MONTH, policy: FactorPolicy = DEFAULT_POLICY,
                 registry: FactorRegistry | None = None, strict: bool = True) -> Accounts:
    """Energy and Scope 1 + 2 of every workshop, enterprise and the park over [start, end) per period."""
    registry = registry or park_registry(engine, park.id)
    activity = park_activity(store, engine, park, start, end, period_kind)
    return compute_accounts(activity, registry, enterprise_regions(park), policy, period_kind,
                            records.load_instruments(engine, park.id), strict=strict)


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
    regions = enterprise_regions(park)
    before = compute_accounts(activity, old, regions, policy, Period.MONTH, instruments, strict=False)
    after = compute_accounts(activity, new, regions, policy, Period.MONTH, instruments, strict=False)
    changes = diff_accounts(before, after)
    records.record_restatements(engine, park.id, changes, reason=imported.reason, actor=actor,
                                factor_import_id=imported.import_id)
    return changes

