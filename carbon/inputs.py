"""The input frames of the accounting and their checks: activity, output value, product output, instruments.

Every check either returns a clean copy or raises InputError naming the row and what to fix; none of them
changes a value, fills a gap or guesses a unit.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from carbon.errors import InputError, NegativeOutputError
from park.units import UnitError, carrier_unit

# Activity: energy used (or exported) by an enterprise or workshop in one window, in any known unit.
ACTIVITY_COLUMNS = ["enterprise", "workshop", "carrier", "flow", "period_start", "period_end", "quantity", "unit",
                    "count", "measured", "expected", "coverage", "source"]
ACTIVITY_REQUIRED = ["enterprise", "carrier", "period_start", "period_end", "quantity", "unit"]
IMPORT, EXPORT = "import", "export"
EXPORTABLE = frozenset({"electricity", "heat", "steam"})
OUTPUT_COLUMNS = ["enterprise", "month", "output_value_10k_cny"]
PRODUCT_COLUMNS = ["enterprise", "month", "product", "quantity", "unit", "workshop"]
INSTRUMENT_COLUMNS = ["enterprise", "kind", "quantity_mwh", "period_start", "period_end", "reference", "vintage"]
INSTRUMENT_KINDS = {"gec": "green electricity certificate (绿证), 1 certificate = 1 MWh",
                    "ppa": "power purchase agreement for renewable electricity (绿电交易)"}


def _require(frame: pd.DataFrame, columns: list[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputError(f"{what} frame lacks column(s) {', '.join(missing)}; it needs {', '.join(columns)}")


def _row_name(frame: pd.DataFrame, i: int) -> str:
    r = frame.iloc[i]
    parts = [f"row {i}"] + [f"{c} {r[c]}" for c in ("enterprise", "workshop", "carrier", "month", "product",
                                                     "period_start") if c in frame.columns and pd.notna(r[c])]
    return ", ".join(parts)


_DIMENSION_DTYPE = pd.Series(["energy"]).map({"energy": "energy"}).dtype  # what a map of the dimensions gives


def check_activity(activity: pd.DataFrame) -> pd.DataFrame:
    """A clean activity frame: all ACTIVITY_COLUMNS, aware window bounds, units the carrier can be measured in
    (park.units.carrier_unit: steam by mass or heat, gas by volume, ...), `q_base` (the quantity in the base unit of
    its dimension: kWh, m3, kg or GJ), its `dimension` and `sign` (+1 import, -1 export).

    `quantity` NaN means no data for the window (kept, and reported as missing); a negative quantity, an
    unknown unit or an export of a carrier that cannot be exported raises InputError.
    """
    _require(activity, ACTIVITY_REQUIRED, "activity")
    act = activity.reindex(columns=ACTIVITY_COLUMNS).copy()
    act["workshop"] = act["workshop"].astype(object).where(act["workshop"].notna(), None)
    for col, default in (("flow", IMPORT), ("source", "input")):
        act[col] = act[col].astype(object).where(act[col].notna(), default).astype(str)
    act["carrier"] = act["carrier"].astype(str)
    for col in ("period_start", "period_end"):
        if not isinstance(act[col].dtype, pd.DatetimeTZDtype):
            raise InputError(f"activity {col} must be timezone-aware (park-local) timestamps, got {act[col].dtype}")
    bad_flow = ~act["flow"].isin([IMPORT, EXPORT])
    if bad_flow.any():
        raise InputError(f"activity {_row_name(act, int(np.flatnonzero(bad_flow)[0]))}: flow "
                         f"{act['flow'][bad_flow].iloc[0]!r} must be 'import' or 'export'")
    bad_export = (act["flow"] == EXPORT) & ~act["carrier"].isin(EXPORTABLE)
    if bad_export.any():
        raise InputError(f"activity {_row_name(act, int(np.flatnonzero(bad_export)[0]))}: only "
                         f"{', '.join(sorted(EXPORTABLE))} can be exported")
    act["quantity"] = pd.to_numeric(act["quantity"], errors="raise").astype(float)
    negative = act["quantity"] < 0
    if negative.any():
        raise InputError(f"activity {_row_name(act, int(np.flatnonzero(negative)[0]))}: quantity "
                         f"{act['quantity'][negative].iloc[0]} is negative; an export is a positive quantity with "
                         "flow 'export'")
    act["unit"] = act["unit"].astype(str)
    # Each distinct (carrier, unit) pair converted once, in order of first appearance
    carriers, carrier_names = pd.factorize(act["carrier"])
    units, unit_names = pd.factorize(act["unit"])
    pairs, pair_codes = pd.factorize(carriers.astype(np.int64) * max(len(unit_names), 1) + units)
    scale, dimension = np.empty(len(pair_codes)), np.empty(len(pair_codes), dtype=object)
    for j, code in enumerate(pair_codes.tolist()):
        carrier, unit = carrier_names[code // max(len(unit_names), 1)], unit_names[code % max(len(unit_names), 1)]
        try:
            u = carrier_unit(carrier, unit)
        except UnitError as exc:
            first = int(np.flatnonzero(pairs == j)[0])
            raise InputError(f"activity {_row_name(act, first)}: unit {unit!r}: {exc}") from None
        scale[j], dimension[j] = u.to_base, u.dimension
    act["q_base"] = act["quantity"] * scale[pairs]
    # (typed as a mapping of the pairs would type it: text, or float when there are no rows)
    act["dimension"] = pd.Series(dimension[pairs], index=act.index).astype(_DIMENSION_DTYPE if len(act) else float)
    act["sign"] = np.where(act["flow"] == EXPORT, -1.0, 1.0)
    for col in ("count", "measured", "expected"):
        act[col] = pd.to_numeric(act[col], errors="coerce")
    return act


def check_output_values(frame: pd.DataFrame) -> pd.DataFrame:
    """Output value (产值, 10k CNY) per enterprise and month; NegativeOutputError on a value below zero."""
    _require(frame, OUTPUT_COLUMNS, "output value")
    out = frame[OUTPUT_COLUMNS].copy()
    out["month"] = _months(out["month"], "output value")
    out["output_value_10k_cny"] = pd.to_numeric(out["output_value_10k_cny"], errors="raise").astype(float)
    _non_negative(out, "output_value_10k_cny", "output value (10k CNY)")
    return out


def check_product_output(frame: pd.DataFrame) -> pd.DataFrame:
    """Product output per enterprise, month and product (with its unit and, optionally, its workshop)."""
    _require(frame, ["enterprise", "month", "product", "quantity", "unit"], "product output")
    out = frame.reindex(columns=PRODUCT_COLUMNS).copy()
    out["month"] = _months(out["month"], "product output")
    out["quantity"] = pd.to_numeric(out["quantity"], errors="raise").astype(float)
    out["workshop"] = out["workshop"].astype(object).where(out["workshop"].notna(), None)
    _non_negative(out, "quantity", "product output")
    return out


def check_instruments(frame: pd.DataFrame | None) -> pd.DataFrame:
    """Green certificates and PPAs held per enterprise for a consumption period [period_start, period_end).

    Every instrument needs its id (`reference`: the certificate or batch number, the PPA contract) and a single
    claimant: an id claimed twice (by two enterprises, or twice by one) raises InputError.  `vintage` is the year
    the electricity was generated; a certificate without one is accounted but flagged (instrument.no_vintage).
    """
    if frame is None:
        return pd.DataFrame(columns=INSTRUMENT_COLUMNS)
    require_instrument_columns(frame)
    out = frame.reindex(columns=INSTRUMENT_COLUMNS).copy()
    unknown = ~out["kind"].isin(list(INSTRUMENT_KINDS))
    if unknown.any():
        raise InputError(f"instrument {_row_name(out, int(np.flatnonzero(unknown)[0]))}: kind "
                         f"{out['kind'][unknown].iloc[0]!r} is not one of {', '.join(INSTRUMENT_KINDS)}")
    out["quantity_mwh"] = pd.to_numeric(out["quantity_mwh"], errors="raise").astype(float)
    _non_negative(out, "quantity_mwh", "instrument quantity (MWh)")
    for col in ("period_start", "period_end"):
        out[col] = pd.to_datetime(out[col]).dt.date
    empty = out["period_end"] <= out["period_start"]
    if empty.any():
        raise InputError(f"instrument {_row_name(out, int(np.flatnonzero(empty)[0]))}: period_end must be after "
                         "period_start (the end is exclusive)")
    out["reference"] = out["reference"].astype(object).where(out["reference"].notna(), "").astype(str).str.strip()
    no_id = out["reference"] == ""
    if no_id.any():
        raise InputError(f"instrument {_row_name(out, int(np.flatnonzero(no_id)[0]))}: reference (the certificate "
                         "or batch id, or the PPA contract) is empty: an instrument without an id cannot be checked "
                         "against double claims")
    twice = out.duplicated(["kind", "reference"], keep=False)
    if twice.any():
        dup = out[twice]
        first = dup.iloc[0]
        claimants = ", ".join(sorted(set(dup.loc[dup["reference"] == first["reference"], "enterprise"])))
        raise InputError(f"instrument {first['kind']} {first['reference']!r} is claimed more than once (by "
                         f"{claimants}): a certificate has a single claimant; record it once, for the enterprise "
                         "that holds it")
    vintage = pd.to_numeric(out["vintage"], errors="coerce")
    bad_vintage = out["vintage"].notna() & (vintage.isna() | (vintage % 1 != 0) | (vintage < 1990))
    if bad_vintage.any():
        raise InputError(f"instrument {_row_name(out, int(np.flatnonzero(bad_vintage)[0]))}: vintage "
                         f"{out['vintage'][bad_vintage].iloc[0]!r} must be the year the electricity was generated")
    out["vintage"] = vintage.astype("Int64")
    return out


def require_instrument_columns(frame: pd.DataFrame) -> None:
    """InputError unless `frame` has the columns an instrument frame needs (checked even when it is empty)."""
    _require(frame, ["enterprise", "kind", "quantity_mwh", "period_start", "period_end"], "instrument")


def _months(col: pd.Series, what: str) -> pd.Series:
    months = pd.to_datetime(col).dt.date
    not_first = months.map(lambda d: d.day != 1)
    if not_first.any():
        raise InputError(f"{what}: month {months[not_first].iloc[0]} must be the first day of a month")
    return months


def _non_negative(frame: pd.DataFrame, col: str, what: str) -> None:
    bad = frame[col] < 0
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise NegativeOutputError(f"{what} {frame[col].iloc[i]} at {_row_name(frame, i)} is negative; "
                                  "record the corrected figure (0 if nothing was produced)")
    nan = frame[col].isna()
    if nan.any():
        i = int(np.flatnonzero(nan)[0])
        raise InputError(f"{what} at {_row_name(frame, i)} is empty; leave the row out if the figure is unknown")
