"""The issue codes that accounting results carry beside their figures (SEED style): the "carbon" family of the
one finding catalogue (park/findings.py), documented in docs/findings.md.

A result never hides a gap as a zero: what is missing, estimated or fallen back on is listed in the result's
`issues` frame with a stable code, a severity and a sentence naming the entity, period and carrier.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from park.findings import Finding, codes

ERROR, WARNING, INFO = "error", "warning", "info"

# code -> (severity, what it means): the carbon family of the one catalogue (park/findings.py).
ISSUES: dict[str, tuple[str, str]] = {c: (e.severity, e.sentence) for c, e in codes("carbon").items()}

# Codes that make a figure incomplete: a totals row with any of them has complete=False and lists them in
# `reasons` (docs/methodology.md 1.1).  The others inform (a region fall-back is the documented chain working).
INCOMPLETE = frozenset({"activity.no_data", "activity.carrier_missing", "activity.low_coverage", "factor.missing",
                        "factor.prior_year", "factor.level_fallback", "instrument.estimated_basis",
                        "instrument.no_vintage"})

ISSUE_COLUMNS = ["code", "severity", "enterprise", "workshop", "period", "carrier", "message"]


# One flagged condition of a result: the project's one finding type (code, message, enterprise, workshop,
# period, carrier, ...); its severity comes from the catalogue.
Issue = Finding


def issue_frame(issues: Iterable[Issue]) -> pd.DataFrame:
    """Issues as a frame with ISSUE_COLUMNS, in a stable order."""
    rows = [(i.code, i.severity, i.enterprise, i.workshop, i.period, i.carrier, i.message) for i in issues]
    frame = pd.DataFrame(rows, columns=ISSUE_COLUMNS)
    return frame.sort_values(["code", "enterprise", "period"], na_position="first", kind="stable").reset_index(
        drop=True)


def quota_findings(positions: pd.DataFrame) -> list[Finding]:
    """Findings of quota positions (carbon.quota.position rows): a threshold crossed, a deficit, CCER beyond the
    cap, and an enterprise with no plan ('no quota', never a deficit: has_plan False and no allowances)."""
    out: list[Finding] = []
    for r in positions.itertuples():
        period = str(int(r.year))
        allowances = float(getattr(r, "allowances_t", 0.0) or 0.0)
        has_plan = getattr(r, "has_plan", None)
        if has_plan is not None and not pd.isna(has_plan) and not bool(has_plan) and allowances <= 0:
            out.append(Finding("quota.no_plan", f"{r.enterprise}: no allocation plan for {period}",
                               enterprise=r.enterprise, period=period, subject=r.enterprise))
            continue
        if getattr(r, "ccer_over_cap_t", 0.0) and r.ccer_over_cap_t > 0:
            out.append(Finding("quota.ccer_over_cap", f"{r.enterprise}: {r.ccer_over_cap_t:,.2f} t CCER beyond the "
                                                      f"cap do not count in {period}", enterprise=r.enterprise,
                               period=period, subject=r.enterprise, observed=float(r.ccer_over_cap_t)))
        if r.status == "deficit":
            out.append(Finding("quota.deficit", f"{r.enterprise}: deficit of {-r.remaining_t:,.2f} tCO2e in {period}",
                               enterprise=r.enterprise, period=period, subject=r.enterprise,
                               expected=float(r.allowances_t + r.ccer_usable_t),
                               observed=float(r.emissions_t_co2e)))
        elif not pd.isna(r.threshold):
            out.append(Finding("quota.threshold", f"{r.enterprise}: {r.used_share:.0%} of the {period} allowances "
                                                  f"used", enterprise=r.enterprise, period=period,
                               subject=r.enterprise, expected=float(r.threshold), observed=float(r.used_share)))
    return out


def grade_findings(graded: pd.DataFrame) -> list[Finding]:
    """Findings of an intensity grading (carbon.intensity grade rows): enterprises graded against the whole park
    because their industry group is too small."""
    rows = graded[(graded["group"] == "park") & graded["efficiency_index"].notna()] if len(graded) else graded
    return [Finding("grade.no_group", f"{r.enterprise}: industry group too small, graded against the whole park",
                    enterprise=r.enterprise, period=str(r.period_start)[:10], subject=r.enterprise)
            for r in rows.itertuples()]
