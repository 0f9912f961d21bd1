"""The adapter from the time-series store to activity frames: the only module of `carbon` that reads the store.

It asks the store for energy per enterprise, workshop and carrier in day or month windows (served from the
store's roll-ups), and returns them as activity frames (carbon.inputs.ACTIVITY_COLUMNS) with the store's
counts and coverage.  Gaps stay NaN: a window without readings is missing data, never zero.
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd

from carbon.energy import NOT_ENERGY
from carbon.errors import InputError
from carbon.inputs import ACTIVITY_COLUMNS, IMPORT
from park.store import TimeSeriesStore
from park.units import canonical_unit

WINDOWS = ("day", "month")


def load_activity(store: TimeSeriesStore, start: datetime, end: datetime, window: str = "month",
                  enterprises: list[str] | None = None) -> pd.DataFrame:
    """Energy activity over [start, end) in park-local day or month windows, per enterprise, workshop and carrier.

    Water is left out (not energy).  `enterprises` restricts the query (an enterprise user's own rows).
    """
    if window not in WINDOWS:
        raise InputError(f"activity window {window!r} must be 'day' or 'month' (quarters and years are rolled up "
                         "from months by the accounting)")
    where = {"enterprise": enterprises} if enterprises else None
    agg = store.aggregate("energy", start, end, window, by=["enterprise", "workshop", "carrier"], where=where)
    agg = agg[~agg["carrier"].isin(NOT_ENERGY)].reset_index(drop=True)
    local = agg["start"]
    step = pd.DateOffset(days=1) if window == "day" else pd.DateOffset(months=1)
    out = pd.DataFrame({
        "enterprise": agg["enterprise"],
        "workshop": agg["workshop"].astype(object).where(agg["workshop"].notna(), None),
        "carrier": agg["carrier"],
        "flow": IMPORT,
        "period_start": local,
        "period_end": local + step,
        "quantity": agg["value"],
        "unit": agg["carrier"].map(canonical_unit),
        "count": agg["count"],
        "measured": agg["measured"],
        "expected": agg["expected"],
        "coverage": agg["coverage"],
        "source": "store",
    })
    return out[ACTIVITY_COLUMNS]
