"""The catalogue of issue codes that accounting results carry beside their figures (SEED style).

A result never hides a gap as a zero: what is missing, estimated or fallen back on is listed in the result's
`issues` frame with a stable code, a severity and a sentence naming the entity, period and carrier.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import pandas as pd

ERROR, WARNING, INFO = "error", "warning", "info"

# code -> (severity, what it means)
ISSUES: dict[str, tuple[str, str]] = {
    "activity.no_data": (ERROR, "no activity data for the period: its figures are missing (NaN), not zero"),
    "activity.carrier_missing": (WARNING, "a metered carrier has no data in the period: the totals leave it out"),
    "activity.low_coverage": (WARNING, "data coverage below the threshold: the figures undercount"),
    "activity.not_energy": (INFO, "carrier is not an energy carrier (water): not accounted"),
    "factor.missing": (ERROR, "no factor applies: the line's emissions are missing (NaN)"),
    "factor.region_fallback": (INFO, "no factor for the most specific region: a wider region's factor was used"),
    "factor.prior_year": (WARNING, "no factor for the wanted year: the closest prior year was used"),
    "factor.level_fallback": (WARNING, "no grid factor at the geographic level the policy fixes: a wider one was used"),
    "factor.split": (INFO, "a factor changes inside a window: the window is split there, its quantity by time"),
    "factor.unverified": (WARNING, "a factor used is not verified against its primary source"),
    "instrument.excess": (INFO, "green certificates / PPAs exceed grid purchases: the excess is not carried over"),
    "instrument.estimated_basis": (WARNING, "grid purchases of part of an instrument's claim period are not known "
                                            "yet: its allocation is estimated and will change"),
    "instrument.no_vintage": (WARNING, "a green certificate without a vintage (generation year)"),
    "output.missing": (WARNING, "no output value / product output for (part of) the period: no intensity"),
    "output.zero": (WARNING, "output is zero: the intensity is undefined"),
    "grade.no_group": (INFO, "industry group too small: graded against the whole park"),
    "quota.threshold": (WARNING, "allowance use crossed a warning threshold"),
    "quota.deficit": (ERROR, "emissions exceed the allowances and usable offsets: a deficit"),
    "quota.ccer_over_cap": (WARNING, "CCER offsets beyond the cap do not count towards compliance"),
    "quota.no_plan": (INFO, "no allocation plan recorded for the enterprise and year"),
}

# Codes that make a figure incomplete: a totals row with any of them has complete=False and lists them in
# `reasons` (docs/methodology.md 1.1).  The others inform (a region fall-back is the documented chain working).
INCOMPLETE = frozenset({"activity.no_data", "activity.carrier_missing", "activity.low_coverage", "factor.missing",
                        "factor.prior_year", "factor.level_fallback", "instrument.estimated_basis",
                        "instrument.no_vintage"})

ISSUE_COLUMNS = ["code", "severity", "enterprise", "workshop", "period", "carrier", "message"]


@dataclass(frozen=True)
class Issue:
    """One flagged condition of a result."""

    code: str
    message: str
    enterprise: str | None = None
    workshop: str | None = None
    period: str | None = None
    carrier: str | None = None

    @property
    def severity(self) -> str:
        return ISSUES[self.code][0]


def issue_frame(issues: Iterable[Issue]) -> pd.DataFrame:
    """Issues as a frame with ISSUE_COLUMNS, in a stable order."""
    rows = [(i.code, i.severity, i.enterprise, i.workshop, i.period, i.carrier, i.message) for i in issues]
    frame = pd.DataFrame(rows, columns=ISSUE_COLUMNS)
    return frame.sort_values(["code", "enterprise", "period"], na_position="first", kind="stable").reset_index(
        drop=True)
