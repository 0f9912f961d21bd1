"""One catalogue of finding codes and one finding type, for the whole project (SEED's error-code map).

A *finding* is something the software noticed about the data or a result: a reading quarantined by a data rule
(`reading.spike`), a figure with a gap or a fall-back (`activity.low_coverage`), a warning shown to a user
(`warning.quota_100`), a forecast anomaly (`anomaly.*`) or a report that failed a check (`report.*`).  Each has a
stable code, a severity and a sentence; a code never changes meaning once released (reports, warnings and
quarantine records refer to them).

Families and where their codes are documented (a test checks catalogue, docs and emitting code agree):

* ``rule``    data-quality rules (collectors, store, file import): docs/quality-rules.md;
  severity reject (quarantined), flag (kept, estimated) or info;
* ``carbon``  issues carried by accounting results (carbon/emissions.py ...): docs/findings.md;
  severity error, warning or info;
* ``warning`` warnings (预警) of the Warnings page (portal/alerts.py): docs/warnings.md;
  severity critical, warning or info;
* ``anomaly`` forecast anomalies (forecasting): docs/warnings.md;
* ``report``  report rule failures (portal/reports): docs/findings.md.

Adding a code: one ``Code(...)`` line in its family's block below and one row in its docs table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

FAMILIES = ("rule", "carbon", "warning", "anomaly", "report")

# Every family's severities on one scale (most severe first), so findings of different families sort together.
LEVELS: dict[str, int] = {"critical": 0, "error": 1, "reject": 1, "warning": 2, "flag": 2, "info": 3}


@dataclass(frozen=True)
class Code:
    """One catalogue entry: a stable code, its family, its severity (in the family's words) and its sentence."""

    code: str
    family: str
    severity: str
    sentence: str

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"finding code {self.code}: family {self.family!r} is not one of {FAMILIES}")
        if self.severity not in LEVELS:
            raise ValueError(f"finding code {self.code}: severity {self.severity!r} is not one of {sorted(LEVELS)}")

    @property
    def level(self) -> int:
        """0 critical, 1 error/reject, 2 warning/flag, 3 info."""
        return LEVELS[self.severity]


def _rule(code: str, severity: str, sentence: str) -> Code:
    return Code(code, "rule", severity, sentence)


def _carbon(code: str, severity: str, sentence: str) -> Code:
    return Code(code, "carbon", severity, sentence)


def _warning(code: str, severity: str, sentence: str) -> Code:
    return Code(code, "warning", severity, sentence)


_CODES: list[Code] = [
    # ---- rule: data-quality rules (docs/quality-rules.md) -----------------------------------------------------
    # The store's own checks (park/store/validate.py) share the same code space.
    _rule("reading.bad_timestamp", "reject", "timestamp cannot be read as a date and time"),
    _rule("reading.naive_timestamp", "reject", "timestamp has no time zone"),
    _rule("series.unknown", "reject", "series is not a meter or device of this park"),
    _rule("series.wrong_kind", "reject", "series is of another kind than the measurement"),
    _rule("reading.not_a_number", "reject", "value is not a number"),
    _rule("reading.not_finite", "reject", "value is NaN or infinite"),
    _rule("reading.negative", "reject", "interval or cumulative value is negative"),
    _rule("reading.bad_quality", "reject", "quality code is not known"),
    _rule("reading.unknown_unit", "reject", "unit is not known"),
    _rule("reading.unit_mismatch", "reject", "unit is of another dimension than the series' unit"),
    _rule("reading.off_grid", "reject", "an interval value must start on its series' interval grid"),
    # The pipeline's checks.
    _rule("reading.spike", "reject", "implied power exceeds the meter's plausible maximum"),
    _rule("reading.duplicate", "info", "same series, timestamp and value seen before; nothing changes"),
    _rule("reading.conflict", "reject", "same series and timestamp given twice with different values; one stands"),
    _rule("reading.out_of_order", "info", "older than the newest register reading of its series; not applied, "
                                          "the span it falls in is already counted"),
    _rule("reading.backward", "reject", "cumulative register went back by less than a reset or rollover would: "
                                        "a misread or jitter, not counted"),
    _rule("reading.future", "reject", "timestamp is in the future beyond the allowed clock skew"),
    _rule("meter.reset", "flag", "cumulative register went back to near zero: counter reset; the value is "
                                 "counted since the reset and the part before it estimated"),
    _rule("meter.jump", "flag", "cumulative register jumped forward at an implausible rate and stayed: the jump "
                                "is not counted; the interval is estimated"),
    _rule("meter.rollover", "flag", "cumulative register wrapped at its maximum; interval computed across it"),
    _rule("meter.gap", "flag", "no reading for longer than the gap limit; intervals across it estimated"),
    _rule("payload.malformed", "reject", "payload cannot be decoded"),
    _rule("register.read_error", "reject", "the meter did not answer or answered with an exception"),
    _rule("register.energy_flat", "reject", "energy register flat while active power is well above zero: the "
                                            "register map likely reads the wrong address (a meter variant); the "
                                            "flat readings are quarantined, not stored as 0 kWh"),
    _rule("file.time_backwards", "reject", "timestamp goes backwards within the file's rows of one series"),
    _rule("file.midnight_repaired", "info", "a 00:00 row dated one day early was moved to the next day"),
    _rule("file.bad_period", "reject", "a bill or delivery period is empty, reversed or not on the interval grid"),
    _rule("file.bill_carrier", "reject", "the bill's carrier is not its meter's carrier"),
    _rule("file.bill_overlap", "reject", "the bill's period overlaps another bill of the same meter (in the file or "
                                         "imported before)"),
    _rule("file.bill_differs", "reject", "a bill of the same meter and period was imported with other figures: "
                                         "import the re-issued bill with --correct to supersede it"),
    _rule("file.bill_repeat", "info", "the same bill was already imported: reported, not applied"),
    # ---- carbon: issues of accounting results (docs/findings.md) ----------------------------------------------
    _carbon("activity.no_data", "error", "no activity data for the period: its figures are missing (NaN), not zero"),
    _carbon("activity.carrier_missing", "warning", "a metered carrier has no data in the period: the totals leave "
                                                   "it out"),
    _carbon("activity.low_coverage", "warning", "data coverage below the threshold: the figures undercount"),
    _carbon("activity.not_energy", "info", "carrier is not an energy carrier (water): not accounted"),
    _carbon("factor.missing", "error", "no factor applies: the line's emissions are missing (NaN)"),
    _carbon("factor.region_fallback", "info", "no factor for the most specific region: a wider region's factor was "
                                              "used"),
    _carbon("factor.prior_year", "warning", "no factor for the wanted year: the closest prior year was used"),
    _carbon("factor.level_fallback", "warning", "no grid factor at the geographic level the policy fixes: a wider "
                                                "one was used"),
    _carbon("factor.split", "info", "a factor changes inside a window: the window is split there, its quantity by "
                                    "time"),
    _carbon("factor.unverified", "warning", "a factor used is not verified against its primary source"),
    _carbon("instrument.excess", "info", "green certificates / PPAs exceed grid purchases: the excess is not "
                                         "carried over"),
    _carbon("instrument.estimated_basis", "warning", "grid purchases of part of an instrument's claim period are "
                                                     "not known yet: its allocation is estimated and will change"),
    _carbon("instrument.no_vintage", "warning", "a green certificate without a vintage (generation year)"),
    _carbon("output.missing", "warning", "no output value / product output for (part of) the period: no "
                                         "intensity"),
    _carbon("output.zero", "warning", "output is zero: the intensity is undefined"),
    _carbon("grade.no_group", "info", "industry group too small: graded against the whole park"),
    _carbon("quota.threshold", "warning", "allowance use crossed a warning threshold"),
    _carbon("quota.deficit", "error", "emissions exceed the allowances and usable offsets: a deficit"),
    _carbon("quota.ccer_over_cap", "warning", "CCER offsets beyond the cap do not count towards compliance"),
    _carbon("quota.no_plan", "info", "no allocation plan recorded for the enterprise and year"),
    # ---- warning: the Warnings page (portal/alerts.py, docs/warnings.md) --------------------------------------
    _warning("warning.quota_80", "warning", "the year's allowances (plus usable CCER) are 80 % used"),
    _warning("warning.quota_100", "critical", "the year's allowances are used up (over-emission)"),
    _warning("warning.meter_silent", "warning", "a meter without a reading for more than 4 of its intervals, or "
                                                "one that never reported"),
    _warning("warning.quarantine", "info", "readings of a meter quarantined in the last 24 hours"),
    _warning("warning.bracelet_silent", "warning", "a bracelet (equipment sensor) without a reading for longer "
                                                   "than its silence limit, or one that never reported"),
    _warning("warning.off_shift", "warning", "a machine ran outside its workshop's shifts"),
    _warning("warning.quota_projected", "warning", "the median year-end projection of the year's emissions is "
                                                   "above the allowances (forecasting burn-down)"),
    # ---- anomaly: forecast anomalies (forecasting, docs/warnings.md) -----------------------------------------
    Code("anomaly.spike", "anomaly", "warning", "a reading far from what the meter's history expects at that time"),
    Code("anomaly.level_shift", "anomaly", "warning", "a meter's level moved and stayed moved for days"),
    Code("anomaly.off_hours", "anomaly", "warning", "consumption at night or on a day off unlike the history"),
    Code("anomaly.flatline", "anomaly", "warning", "a meter that used to vary reads zero or one value for hours"),
    Code("anomaly.profile_mismatch", "anomaly", "info", "a meter's daily energy no longer follows its "
                                                        "enterprise's"),
    Code("anomaly.unusual_day", "anomaly", "info", "a day whose load profile is unlike the meter's history "
                                                   "(isolation forest)"),
    Code("anomaly.outage", "anomaly", "critical", "many meters of the park dropped at once (an outage): one "
                                                  "warning for all of them"),
    # ---- report: report rule failures (portal/reports, docs/findings.md) -------------------------------------
    Code("report.completeness", "report", "error", "an enterprise's data completeness in the period is below 90 % "
                                                   "(key energy-consuming units' monitoring rule): its figures fail "
                                                   "the rule"),
    Code("report.daily_monthly", "report", "error", "the daily totals of an energy type differ from its monthly "
                                                    "total by more than 5 % (key energy-consuming units' monitoring "
                                                    "rule)"),
]

CATALOGUE: dict[str, Code] = {}
for _c in _CODES:
    if _c.code in CATALOGUE:
        raise ValueError(f"finding code {_c.code} catalogued twice")
    if _c.code.split(".", 1)[0] in ("anomaly", "report") and _c.family != _c.code.split(".", 1)[0]:
        raise ValueError(f"finding code {_c.code}: its prefix names another family than {_c.family}")
    CATALOGUE[_c.code] = _c


class UnknownCode(KeyError):
    """A finding with a code the catalogue does not have: add it to park/findings.py and its docs page."""


def entry(code: str) -> Code:
    """The catalogue entry of `code`; UnknownCode naming the code when it is not catalogued."""
    try:
        return CATALOGUE[code]
    except KeyError:
        raise UnknownCode(f"finding code {code!r} is not in the catalogue (park/findings.py)") from None


def codes(family: str) -> dict[str, Code]:
    """The catalogue entries of one family, by code."""
    if family not in FAMILIES:
        raise ValueError(f"family {family!r} is not one of {FAMILIES}")
    return {c: e for c, e in CATALOGUE.items() if e.family == family}


def severity(code: str) -> str:
    return entry(code).severity


def sentence(code: str) -> str:
    return entry(code).sentence


@dataclass(frozen=True)
class Finding:
    """One thing noticed: a catalogued code and a message naming what, where and when.

    subject: what it is about (an enterprise, a meter, a series, a bracelet, a source); period: the period or
    time it concerns, as text (a month '2026-03', a day, an ISO time); enterprise / workshop / carrier: the
    context where known; expected / observed: the figures behind it (with units in the message) where useful."""

    code: str
    message: str
    enterprise: str | None = None
    workshop: str | None = None
    period: str | None = None
    carrier: str | None = None
    subject: str | None = None
    expected: float | None = None
    observed: float | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        entry(self.code)  # an uncatalogued code is an error where it is made, not a blank on a page

    @property
    def severity(self) -> str:
        return CATALOGUE[self.code].severity

    @property
    def family(self) -> str:
        return CATALOGUE[self.code].family

    @property
    def level(self) -> int:
        return CATALOGUE[self.code].level
