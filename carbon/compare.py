"""Compare like with like: the base of a comparison spans the same park-local days and hours as the current
period, shifted one year ("last year") or one period ("previous"), and a change whose base is covered less than
the park's threshold is not a change anyone should read.

A month to date (1-3 December 10:00) compares with 1-3 December 10:00 of the year before, never with the whole of
last December.  Output value is recorded per month, so a partial month's output value is the month's value
prorated by the share of the month's hours the period covers (an even spread: the only assumption available).
Pure: timestamps and frames in, timestamps and frames out.
"""

from __future__ import annotations

import math

import pandas as pd

AGAINST = ("last_year", "previous")
# Months to shift by: (period kind, against); the previous "year to date" is the same days a year earlier.
SHIFT_MONTHS = {("month", "last_year"): 12, ("year", "last_year"): 12, ("12m", "last_year"): 12,
                ("month", "previous"): 1, ("year", "previous"): 12, ("12m", "previous"): 12}
LOW_BASE = "base.low_coverage"  # the flag of a change hidden because its base is too thinly covered


def shift(ts: pd.Timestamp, months: int) -> pd.Timestamp:
    """The same park-local wall time `months` earlier (a day past the end of the earlier month clips to its last
    day: 31 March -> 28/29 February)."""
    tz = ts.tz
    wall = ts.tz_localize(None) - pd.DateOffset(months=months)
    return wall.tz_localize(tz, nonexistent="shift_forward", ambiguous=False)


def base_period(start: pd.Timestamp, end: pd.Timestamp, kind: str, against: str = "last_year"
                ) -> tuple[pd.Timestamp, pd.Timestamp]:
    """[start, end) of the comparison base of the current period [start, end) of `kind` (carbon.summary.PERIODS):
    the same local days and hours, `against` one year earlier or one period earlier."""
    if (kind, against) not in SHIFT_MONTHS:
        raise ValueError(f"cannot compare a period {kind!r} against {against!r}: against is one of "
                         f"{', '.join(AGAINST)}")
    months = SHIFT_MONTHS[(kind, against)]
    return shift(start, months), shift(end, months)


def bases(start: pd.Timestamp, end: pd.Timestamp, kind: str | None = None
          ) -> dict[str, tuple[pd.Timestamp, pd.Timestamp]]:
    """The comparison bases of the current period [start, end): "last_year" (the same local days and hours a year
    earlier) and "previous" (one period of `kind` earlier; for a picked range, `kind` None, the span of the same
    length just before it)."""
    if kind is None:
        return {"last_year": (shift(start, 12), shift(end, 12)), "previous": (start - (end - start), start)}
    return {against: base_period(start, end, kind, against) for against in AGAINST}


def year_to_date(end: pd.Timestamp) -> tuple[pd.Timestamp, pd.Timestamp]:
    """[1 January, end) of the park-local year holding the period that ends at `end`."""
    last = end - pd.Timedelta("1ns")
    return pd.Timestamp(last.year, 1, 1, tz=end.tz), end


def prorate_output(output_values: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp,
                   column: str = "output_value_10k_cny") -> pd.DataFrame:
    """Monthly output (enterprise, month, `column`: output value, or a product's quantity) scaled to the share of
    each month's hours inside [start, end); months outside are dropped.  A month not recorded stays unrecorded."""
    if output_values.empty:
        return output_values
    out = output_values.copy()
    tz = start.tz
    first = pd.to_datetime(out["month"]).dt.tz_localize(tz)
    nxt = first + pd.DateOffset(months=1)
    lo = first.where(first > start, start)
    hi = nxt.where(nxt < end, end)
    share = ((hi - lo) / (nxt - first)).clip(lower=0.0)
    out[column] = out[column] * share
    return out[share > 0].reset_index(drop=True)


def change(current: float, base: float, base_coverage: float, threshold: float) -> tuple[float, str]:
    """The relative change from base to current, and why it is hidden (NaN): LOW_BASE when the base's coverage is
    below `threshold` (or unknown), "" otherwise.  A zero or missing base gives NaN without a flag."""
    if not (isinstance(base_coverage, float | int) and base_coverage >= threshold):
        return math.nan, LOW_BASE
    if base is None or pd.isna(base) or base == 0 or current is None or pd.isna(current):
        return math.nan, ""
    return (current - base) / base, ""


def guard(frame: pd.DataFrame, base_column: str, change_column: str, threshold: float) -> tuple[pd.DataFrame, str]:
    """A comparison frame (metric, this_period, <base_column>, <change_column>; its "coverage" row holds the
    coverages) with every change recomputed by `change`: hidden when the base is covered below the threshold.
    Returns the frame and the flag (LOW_BASE or "")."""
    out = frame.copy()
    cov = out.loc[out["metric"] == "coverage", base_column]
    base_cov = float(cov.iloc[0]) if len(cov) else math.nan
    flag = ""
    values = []
    for row in out.itertuples():
        if row.metric == "coverage":
            values.append(math.nan)
            continue
        value, why = change(row.this_period, getattr(row, base_column), base_cov, threshold)
        flag = flag or why
        values.append(value)
    out[change_column] = values
    return out, flag
