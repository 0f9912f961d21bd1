"""The catalogue of data-quality rules: stable codes, severity and a sentence.  Documented in
docs/quality-rules.md; codes never change meaning once released (reports and warnings refer to them)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Rule:
    code: str
    severity: str  # "reject": the value is quarantined; "flag": kept with a quality code; "info"
    sentence: str


RULES: dict[str, Rule] = {r.code: r for r in [
    # The store's own checks (park/store/validate.py) share the same code space.
    Rule("reading.bad_timestamp", "reject", "timestamp cannot be read as a date and time"),
    Rule("reading.naive_timestamp", "reject", "timestamp has no time zone"),
    Rule("series.unknown", "reject", "series is not a meter or device of this park"),
    Rule("series.wrong_kind", "reject", "series is of another kind than the measurement"),
    Rule("reading.not_a_number", "reject", "value is not a number"),
    Rule("reading.not_finite", "reject", "value is NaN or infinite"),
    Rule("reading.negative", "reject", "interval or cumulative value is negative"),
    Rule("reading.bad_quality", "reject", "quality code is not known"),
    Rule("reading.unknown_unit", "reject", "unit is not known"),
    Rule("reading.unit_mismatch", "reject", "unit is of another dimension than the series' unit"),
    Rule("reading.off_grid", "reject", "an interval value must start on its series' interval grid"),
    # The pipeline's checks.
    Rule("reading.spike", "reject", "implied power exceeds the meter's plausible maximum"),
    Rule("reading.duplicate", "info", "same series, timestamp and value seen before; nothing changes"),
    Rule("reading.conflict", "reject", "same series and timestamp given twice with different values; one stands"),
    Rule("reading.out_of_order", "info", "older than the newest register reading of its series; not applied, "
                                         "the span it falls in is already counted"),
    Rule("reading.backward", "reject", "cumulative register went back by less than a reset or rollover would: "
                                       "a misread or jitter, not counted"),
    Rule("reading.future", "reject", "timestamp is in the future beyond the allowed clock skew"),
    Rule("meter.reset", "flag", "cumulative register went back to near zero: counter reset; the value is "
                                "counted since the reset and the part before it estimated"),
    Rule("meter.jump", "flag", "cumulative register jumped forward at an implausible rate and stayed: the jump "
                               "is not counted; the interval is estimated"),
    Rule("meter.rollover", "flag", "cumulative register wrapped at its maximum; interval computed across it"),
    Rule("meter.gap", "flag", "no reading for longer than the gap limit; intervals across it estimated"),
    Rule("payload.malformed", "reject", "payload cannot be decoded"),
    Rule("register.read_error", "reject", "the meter did not answer or answered with an exception"),
    Rule("register.energy_flat", "reject", "energy register flat while active power is well above zero: the "
                                           "register map likely reads the wrong address (a meter variant); the "
                                           "flat readings are quarantined, not stored as 0 kWh"),
    Rule("file.time_backwards", "reject", "timestamp goes backwards within the file's rows of one series"),
    Rule("file.midnight_repaired", "info", "a 00:00 row dated one day early was moved to the next day"),
    Rule("file.bad_period", "reject", "a bill or delivery period is empty, reversed or not on the interval grid"),
]}


def sentence(code: str) -> str:
    return RULES[code].sentence
