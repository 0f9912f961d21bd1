"""Cumulative registers to interval energy: energy is conserved across polls, resets, rollovers and gaps."""

from __future__ import annotations

import pytest

from collectors.normalise import NS, MeterLimits, step

T0 = 1_709_222_400  # 2024-03-01 00:00 +08:00 = 2024-02-29 16:00 UTC, a quarter-hour boundary


def feed(readings, limits: MeterLimits | None = None):
    limits = limits or MeterLimits()
    state, out, events = None, [], []
    for t, v in readings:
        state, intervals, evs, _ = step(state, (T0 + t) * NS, v, limits)
        out += intervals
        events += evs
    return out, events


def test_polls_on_the_boundaries_give_exact_measured_intervals():
    out, events = feed([(0, 100.0), (900, 110.0), (1800, 125.0), (2700, 126.5)])
    assert [(i.start_ns // NS - T0, i.energy, i.estimated) for i in out] == [
        (0, 10.0, False), (900, 15.0, False), (1800, 1.5, False)]
    assert events == []


def test_polls_off_the_boundaries_split_energy_in_proportion_to_time():
    out, _ = feed([(0, 0.0), (600, 6.0), (1200, 12.0), (1800, 18.0)])  # steady 36 kW
    assert [round(i.energy, 9) for i in out] == [9.0, 9.0]
    assert sum(i.energy for i in out) == pytest.approx(18.0)


def test_first_partial_interval_is_extrapolated_and_estimated():
    out, _ = feed([(300, 0.0), (900, 4.0), (1800, 10.0)])  # 4 kWh in the last 10 minutes of the first interval
    assert (out[0].energy, out[0].estimated) == (pytest.approx(6.0), True)
    assert (out[1].energy, out[1].estimated) == (pytest.approx(6.0), False)


def test_counter_rollover_keeps_energy():
    limits = MeterLimits(register_max=100_000.0)
    out, events = feed([(0, 99_990.0), (900, 99_998.0), (1800, 6.0)], limits)
    assert [i.energy for i in out] == [pytest.approx(8.0), pytest.approx(8.0)]
    assert [e.code for e in events] == ["meter.rollover"]
    assert not out[1].estimated  # a rollover is exact arithmetic


def test_counter_reset_counts_the_new_value_and_marks_the_interval_estimated():
    out, events = feed([(0, 5000.0), (900, 5010.0), (1800, 3.0)])
    assert [(i.energy, i.estimated) for i in out] == [(10.0, False), (3.0, True)]
    assert [e.code for e in events] == ["meter.reset"]


def test_a_gap_spreads_energy_as_estimated_and_is_flagged():
    out, events = feed([(0, 0.0), (900, 10.0), (4500, 50.0), (5400, 60.0)])  # one hour without readings
    assert [(i.energy, i.estimated) for i in out] == [(10.0, False), (10.0, True), (10.0, True), (10.0, True),
                                                     (10.0, True), (10.0, False)]
    assert [e.code for e in events] == ["meter.gap"]
    assert sum(i.energy for i in out) == pytest.approx(60.0)


def test_a_spike_is_rejected_and_the_next_good_reading_spans_it():
    limits = MeterLimits(max_kw=100.0)
    state, _, _, _ = step(None, T0 * NS, 0.0, limits)
    state2, out, events, accepted = step(state, (T0 + 900) * NS, 1_000_000.0, limits)
    assert not accepted and [e.code for e in events] == ["reading.spike"] and state2 is state
    state3, out, _, accepted = step(state, (T0 + 1800) * NS, 20.0, limits)
    assert accepted and [i.energy for i in out] == [pytest.approx(10.0), pytest.approx(10.0)]


def test_late_and_duplicate_readings_change_nothing():
    state, _, _, _ = step(None, (T0 + 900) * NS, 10.0, MeterLimits())
    same, out, events, accepted = step(state, (T0 + 900) * NS, 10.0, MeterLimits())
    assert (same, out, accepted, events[0].code) == (state, [], False, "reading.duplicate")
    older, out, events, accepted = step(state, T0 * NS, 5.0, MeterLimits())
    assert (older, out, accepted, events[0].code) == (state, [], False, "reading.out_of_order")
