"""Cumulative registers to interval energy: energy is conserved across polls, resets, rollovers and gaps."""

from __future__ import annotations

import pytest

from collectors.normalise import ACCEPTED, NS, REJECTED, REPORTED, MeterLimits, step

T0 = 1_709_222_400  # 2024-03-01 00:00 +08:00 = 2024-02-29 16:00 UTC, a quarter-hour boundary


def feed(readings, limits: MeterLimits | None = None, statuses: list | None = None):
    limits = limits or MeterLimits()
    state, out, events = None, [], []
    for t, v in readings:
        state, intervals, evs, status = step(state, (T0 + t) * NS, v, limits)
        out += intervals
        events += evs
        if statuses is not None:
            statuses.append(status)
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


def test_counter_reset_counts_the_new_value_and_estimates_the_part_before_it():
    out, events = feed([(0, 5000.0), (900, 5010.0), (1800, 3.0)])  # 40 kW, then reset: 3 kWh since
    assert [(i.energy, i.estimated) for i in out] == [(10.0, False), (10.0, True)]  # 3 counted + 7 at 40 kW
    assert [(e.code, e.estimated, e.since_ns) for e in events] == [("meter.reset", 7.0, (T0 + 900) * NS)]
    assert "3 counted since the reset, 7 estimated" in events[0].detail


def test_a_reset_counts_at_least_the_new_value():
    out, events = feed([(0, 5000.0), (900, 5000.5), (1800, 30.0)])  # 2 kW, but 30 kWh since the reset
    assert [i.energy for i in out] == [0.5, 30.0] and events[0].estimated == 0.0


def test_a_small_backward_step_is_jitter_not_a_reset():
    statuses: list = []
    out, events = feed([(0, 1000.0), (900, 1020.0), (1800, 1019.8), (2700, 1030.0)], statuses=statuses)
    assert statuses == [ACCEPTED, ACCEPTED, REJECTED, ACCEPTED]
    assert [e.code for e in events] == ["reading.backward"]
    assert [i.energy for i in out] == [20.0, pytest.approx(5.0), pytest.approx(5.0)]  # 1019.8 never energy
    assert sum(i.energy for i in out) == pytest.approx(30.0)


def test_a_rollover_of_a_six_digit_register_keeps_the_energy():
    limits = MeterLimits(register_max=100_000.0)  # 99 999.9 -> 0
    out, events = feed([(0, 99_985.0), (900, 99_995.0), (1800, 5.0)], limits)
    assert [i.energy for i in out] == [pytest.approx(10.0), pytest.approx(10.0)]
    assert [e.code for e in events] == ["meter.rollover"] and not out[1].estimated


def test_a_wrap_at_an_unknown_register_size_is_inferred_when_the_step_fits():
    out, events = feed([(0, 99_985.0), (900, 99_995.0), (1800, 5.0)])  # no register_max: a decimal display
    assert [i.energy for i in out] == [pytest.approx(10.0), pytest.approx(10.0)]
    assert [e.code for e in events] == ["meter.rollover"] and "wrapped at 100000" in events[0].detail
    out, events = feed([(0, 60_000.0), (900, 60_010.0), (1800, 5.0)])  # 40 005 across a wrap: a reset
    assert [e.code for e in events] == ["meter.reset"]


def test_a_wrap_implying_an_implausible_rate_is_not_a_rollover():
    limits = MeterLimits(register_max=100_000.0, max_per_h=100.0)
    out, events = feed([(0, 90_000.0), (900, 90_010.0), (1800, 20_000.0)], limits)  # 30 000 kWh in 15 min
    assert [e.code for e in events] == ["reading.backward"]


def test_a_value_at_or_above_the_register_maximum_is_a_spike():
    statuses: list = []
    feed([(0, 10.0), (900, 100_000.0)], MeterLimits(register_max=100_000.0), statuses)
    assert statuses == [ACCEPTED, REJECTED]


def test_a_hundredfold_misread_is_a_spike_and_energy_is_conserved_across_it():
    limits = MeterLimits(max_per_h=500.0, max_source="max_kw 500")
    statuses: list = []
    out, events = feed([(0, 995.0), (900, 1005.0), (1800, 100_500.0), (2700, 1015.0)], limits, statuses)
    assert statuses == [ACCEPTED, ACCEPTED, REJECTED, ACCEPTED]
    assert [e.code for e in events] == ["reading.spike"] and "max_kw 500" in events[0].detail
    assert [i.energy for i in out] == [10.0, pytest.approx(5.0), pytest.approx(5.0)]
    assert not any(i.estimated for i in out)


def test_without_a_stated_maximum_the_meters_history_catches_a_spike():
    readings = [(t, 1000.0 + t / 900 * 10.0) for t in range(0, 86_400 + 900, 900)]  # a day at 40 kW
    last = readings[-1][1]
    statuses: list = []
    out, events = feed([*readings, (87_300, last * 100), (88_200, last + 20.0)], None, statuses)
    assert statuses[-2:] == [REJECTED, ACCEPTED] and events[-1].code == "reading.spike"
    assert sum(i.energy for i in out) == pytest.approx(10.0 * 97 + 10.0)  # the spike's span is spread


def test_a_register_that_stays_at_a_new_level_is_a_jump_not_energy():
    limits = MeterLimits(max_per_h=500.0)
    statuses: list = []
    out, events = feed([(0, 990.0), (900, 1000.0), (1800, 50_000.0), (2700, 50_010.0), (3600, 50_020.0)], limits,
                       statuses)
    assert statuses == [ACCEPTED, ACCEPTED, REJECTED, ACCEPTED, ACCEPTED]
    assert [e.code for e in events] == ["reading.spike", "meter.jump"]
    jump = events[1]
    assert (jump.since_ns, jump.estimated) == ((T0 + 900) * NS, pytest.approx(20.0))  # 1800 s at 40 kW
    assert [(round(i.energy, 9), i.estimated) for i in out] == [(10.0, False), (10.0, True), (10.0, True),
                                                               (10.0, False)]


def test_a_gap_spreads_energy_as_estimated_and_is_flagged():
    out, events = feed([(0, 0.0), (900, 10.0), (4500, 50.0), (5400, 60.0)])  # one hour without readings
    assert [(i.energy, i.estimated) for i in out] == [(10.0, False), (10.0, True), (10.0, True), (10.0, True),
                                                     (10.0, True), (10.0, False)]
    assert [e.code for e in events] == ["meter.gap"]
    assert sum(i.energy for i in out) == pytest.approx(60.0)


def test_a_spike_is_rejected_and_the_next_good_reading_spans_it():
    limits = MeterLimits(max_per_h=100.0)
    state, _, _, _ = step(None, T0 * NS, 0.0, limits)
    state2, out, events, status = step(state, (T0 + 900) * NS, 1_000_000.0, limits)
    assert status == REJECTED and [e.code for e in events] == ["reading.spike"] and out == []
    assert (state2.ts_ns, state2.value) == (state.ts_ns, state.value)
    state3, out, _, status = step(state2, (T0 + 1800) * NS, 20.0, limits)
    assert status == ACCEPTED and [i.energy for i in out] == [pytest.approx(10.0), pytest.approx(10.0)]


def test_late_and_duplicate_readings_change_nothing_and_are_reported():
    state, _, _, _ = step(None, (T0 + 900) * NS, 10.0, MeterLimits())
    same, out, events, status = step(state, (T0 + 900) * NS, 10.0, MeterLimits())
    assert (same, out, status, events[0].code) == (state, [], REPORTED, "reading.duplicate")
    older, out, events, status = step(state, T0 * NS, 5.0, MeterLimits())
    assert (older, out, status, events[0].code) == (state, [], REPORTED, "reading.out_of_order")
    assert "not applied" in events[0].detail


def test_a_conflicting_duplicate_is_rejected_and_the_first_value_stands():
    state, _, _, _ = step(None, (T0 + 900) * NS, 10.0, MeterLimits())
    same, out, events, status = step(state, (T0 + 900) * NS, 12.0, MeterLimits())
    assert (same, out, status, events[0].code) == (state, [], REJECTED, "reading.conflict")


def test_a_fast_poll_seeing_one_register_step_early_is_not_a_spike():
    limits = MeterLimits(max_per_h=500.0, resolution=1.0)  # a register counting whole kWh, polled every 5 s
    statuses: list = []
    feed([(0, 100.0), (5, 101.0), (10, 101.0), (15, 10_100.0)], limits, statuses)  # 720 kW apparent, then 100x
    assert statuses == [ACCEPTED, ACCEPTED, ACCEPTED, REJECTED]
