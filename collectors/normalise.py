"""Cumulative meter registers to interval energy: a pure state machine that conserves energy.

A meter's total-energy register is read at arbitrary times (every poll, every file row).  Between two accepted
readings the register difference is spread over the interval grid (15 minutes by default) in proportion to
time, assuming steady power between them.  An interval is emitted once a reading at or after its end has
arrived.  All energies are in the series' canonical unit (kWh for electricity); rates are that unit per hour
(kW for electricity).

The invariant (tests/collectors/test_conservation.py, Hypothesis): over any sequence of readings, the energy
emitted (plus the open interval still held in the state) minus what the normaliser *says* it estimated
(`Interval.extrapolated`, `Event.estimated`) equals the register differences it accepted; no rejected value
ever becomes energy.  What each reading does:

- **Normal step** (forward, plausible rate): the difference is spread; intervals are `measured`.
- **Gap** (`meter.gap`, flag): two readings further apart than the gap limit (default two intervals): the
  energy is known, its spread over time is not, so the intervals between them are `estimated`.
- **Rollover** (`meter.rollover`, flag): the register went back, and the step across a wrap is plausible: at
  the meter's `register_max` when known (the old value in its upper half), otherwise at the power of ten just
  above the old value when the step across it is under 1 % of it (decimal displays wrap at 99 999.9 -> 0).
  Exact arithmetic, intervals stay `measured`.
- **Reset** (`meter.reset`, flag): the register went back to *near zero* (at most half the old value and
  plausible as energy since a reset): the new value is counted as energy since the reset, and the part
  before it (unknown) is estimated at the meter's recent rate; the event carries that estimate
  (`Event.estimated`) and the window (`Event.since_ns`), the intervals are `estimated`.
- **Backward step** (`reading.backward`, reject): the register went back by less than a reset would (jitter,
  a re-read): the reading is quarantined and the state kept; the next good reading spans it.
- **Spike** (`reading.spike`, reject): a step implying more than the meter's plausible maximum rate (from the
  park file: `max_kw`, rated power, transformer or breaker size; else 50x the highest rate in at least a day
  of the meter's own history; one register step, `resolution`, is tolerated, as a fast poll may see it
  early), or a value at or above `register_max`: quarantined, the state kept (and the
  suspect remembered), so the next good reading spans it and energy is conserved.
- **Jump** (`meter.jump`, flag): the reading after a spike continues from the spike at a plausible rate, so the
  register really moved (meter swapped or re-set to a higher value): the jump is not counted; the window is
  estimated at the recent rate like a reset, and reported.
- **Duplicate** (`reading.duplicate`, info): the same time and value again: reported, nothing changes.
  **Conflict** (`reading.conflict`, reject): the same time, another value: quarantined, the first one stands.
- **Late** (`reading.out_of_order`, info): older than the newest accepted reading: its register difference is
  already spread, so it is reported and not applied.
- The first interval after the very first reading is only partly observed; it is extrapolated at the observed
  rate and `estimated` (`Interval.extrapolated` says by how much).

Each reading ends with one status: `accepted` (it moved the state), `rejected` (quarantine) or `reported`
(info, not applied), so rows read = accepted + rejected + reported.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

NS = 1_000_000_000
HOUR_NS = 3600 * NS

ACCEPTED, REJECTED, REPORTED = "accepted", "rejected", "reported"

HISTORY_FACTOR = 50.0  # without a stated maximum, a rate above 50x the highest seen is a spike ...
HISTORY_MIN_NS = 24 * HOUR_NS  # ... once the meter has a day of history
INFERRED_WRAP_SHARE = 0.01  # a wrap at an unknown power of ten: the step across it is < 1 % of it


@dataclass
class CounterState:
    ts_ns: int  # the newest accepted reading
    value: float
    open_start_ns: int  # start of the interval being accumulated (the one holding ts_ns)
    open_energy: float = 0.0
    open_covered_ns: int = 0
    open_estimated: bool = False
    rate_per_h: float | None = None  # rate of the last measured step (estimates across resets use it)
    peak_per_h: float = 0.0  # highest measured rate ...
    history_ns: int = 0  # ... over this much measured time
    suspect_ts_ns: int | None = None  # the last reading rejected as a spike (a jump if the next continues it)
    suspect_value: float | None = None

    def to_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class MeterLimits:
    """What the normaliser knows of a meter (collectors/limits.py derives it from the park file)."""

    interval_s: int = 900
    gap_limit_s: int | None = None  # default: two intervals
    register_max: float | None = None  # register wraps to 0 here (canonical unit); None: inferred if plausible
    max_per_h: float | None = None  # plausible maximum rate (canonical unit per hour: kW for kWh)
    max_source: str = ""  # where max_per_h comes from, for messages ("max_kw", "2 x transformer_kva 630")
    register_source: str = ""  # where register_max comes from, for messages
    resolution: float = 0.0  # the register's least step (canonical unit): a fast poll may see one step early


@dataclass(frozen=True)
class Interval:
    start_ns: int
    energy: float
    estimated: bool
    extrapolated: float = 0.0  # part of `energy` extrapolated over the unobserved start of a first interval


@dataclass(frozen=True)
class Event:
    code: str  # a rule code of collectors/rules.py
    ts_ns: int
    detail: str
    since_ns: int | None = None  # the window the event concerns starts here (the previous accepted reading)
    estimated: float = 0.0  # energy added as an estimate (not a register difference), canonical unit


def step(state: CounterState | None, ts_ns: int, value: float, limits: MeterLimits
         ) -> tuple[CounterState | None, list[Interval], list[Event], str]:
    """Apply one register reading.  Returns (new state, completed intervals, events, status), status one of
    ACCEPTED, REJECTED, REPORTED."""
    iv = limits.interval_s * NS
    if limits.register_max is not None and value >= limits.register_max:
        return state, [], [Event("reading.spike", ts_ns, f"register {value:g} is at or above the register's "
                                 f"maximum {limits.register_max:g}, where it wraps to 0")], REJECTED
    if state is None:  # the baseline: accumulation starts in the interval holding it
        return CounterState(ts_ns, value, open_start_ns=ts_ns - ts_ns % iv), [], [], ACCEPTED
    if ts_ns == state.ts_ns:
        if value == state.value:
            return state, [], [Event("reading.duplicate", ts_ns, f"register {value:g} read again at the same "
                                     "time; nothing changes")], REPORTED
        return state, [], [Event("reading.conflict", ts_ns, f"register {value:g} at a time already read as "
                                 f"{state.value:g}; the first value stands")], REJECTED
    if ts_ns < state.ts_ns:
        return state, [], [Event("reading.out_of_order", ts_ns, f"register {value:g} is older than the newest "
                                 "reading; not applied (that span is already counted)")], REPORTED
    span = ts_ns - state.ts_ns
    hours = span / HOUR_NS
    max_rate, why = _max_rate(state, limits)
    delta = value - state.value
    measured = True  # delta is a register difference (else an estimate across a discontinuity)
    events: list[Event] = []
    if delta < 0:
        allow = None if max_rate is None else max_rate * hours + limits.resolution  # most a step can add
        wrap = _wrap(state.value, value, limits.register_max, allow)
        if wrap is not None:
            delta = wrap - state.value + value
            if limits.register_max is None:
                where = " (inferred: a decimal register)"
            else:
                where = f" ({limits.register_source})" if limits.register_source else ""
            events.append(Event("meter.rollover", ts_ns, f"register wrapped at {wrap:g}{where} from "
                                f"{state.value:g} to {value:g}: {delta:g} counted", since_ns=state.ts_ns))
        elif value <= state.value / 2 and (allow is None or value <= allow):
            delta, estimate = _estimate(state, value, hours)
            measured = False
            events.append(Event("meter.reset", ts_ns, f"register went back from {state.value:g} to {value:g} "
                                f"(meter replaced or cleared): {value:g} counted since the reset, "
                                f"{estimate:g} estimated for the part before it", state.ts_ns, estimate))
        else:
            return state, [], [Event("reading.backward", ts_ns, f"register went back from {state.value:g} to "
                                     f"{value:g} ({delta:g}), too little for a reset (to near zero) or a "
                                     "rollover: a misread or jitter, not counted")], REJECTED
    elif max_rate is not None and delta > max_rate * hours + limits.resolution:
        s_ts, s_value = state.suspect_ts_ns, state.suspect_value
        if s_ts is None or s_value is None or value < s_value or \
                value - s_value > max_rate * (ts_ns - s_ts) / HOUR_NS + limits.resolution:
            kw = delta / hours
            return replace(state, suspect_ts_ns=ts_ns, suspect_value=value), [], [Event(
                "reading.spike", ts_ns, f"{delta:g} in {span / NS:g} s is {kw:.1f} per hour, above the meter's "
                f"plausible maximum {max_rate:g} ({why})")], REJECTED
        delta, estimate = _estimate(state, 0.0, hours)
        measured = False
        events.append(Event("meter.jump", ts_ns, f"register jumped from {state.value:g} to {s_value:g} and "
                            f"continued to {value:g}: the jump is not counted, {estimate:g} estimated",
                            state.ts_ns, estimate))
    gap_limit = (limits.gap_limit_s or 2 * limits.interval_s) * NS
    estimated = not measured
    if span > gap_limit:
        estimated = True
        events.append(Event("meter.gap", ts_ns, f"{span / NS / 60:.0f} min without a reading: {delta:g} spread "
                            "evenly, estimated", since_ns=state.ts_ns))
    new, out = _spread(state, ts_ns, value, delta, estimated, iv)
    if measured:
        new.rate_per_h = delta / hours
        new.peak_per_h = max(state.peak_per_h, new.rate_per_h)
        new.history_ns = state.history_ns + span
    return new, out, events, ACCEPTED


def _max_rate(state: CounterState, limits: MeterLimits) -> tuple[float | None, str]:
    if limits.max_per_h is not None:
        return limits.max_per_h, limits.max_source or "stated"
    if state.history_ns >= HISTORY_MIN_NS and state.peak_per_h > 0:
        return HISTORY_FACTOR * state.peak_per_h, f"{HISTORY_FACTOR:g} x the highest rate in the meter's history"
    return None, ""


def _wrap(old: float, new: float, register_max: float | None, allow: float | None) -> float | None:
    """Where the register wrapped, if going from `old` to `new` is plausible as a wrap (adding at most `allow`,
    if known); else None."""
    if register_max is not None:
        across = register_max - old + new
        ok = old >= register_max / 2 and new < register_max / 2
    else:  # decimal displays wrap at a power of ten: the one just above the old value
        register_max = 10.0 ** math.floor(math.log10(old) + 1) if old > 0 else 0.0
        across = register_max - old + new
        ok = old > 0 and new < old and across <= INFERRED_WRAP_SHARE * register_max
    if ok and (allow is None or across <= allow):
        return register_max
    return None


def _estimate(state: CounterState, counted: float, hours: float) -> tuple[float, float]:
    """Energy of a window across a discontinuity: `counted` (known: since a reset) or more if the recent rate
    says so.  Returns (energy for the window, of which estimated)."""
    total = max(counted, (state.rate_per_h or 0.0) * hours)
    return total, total - counted


def _spread(state: CounterState, ts_ns: int, value: float, delta: float, estimated: bool, iv: int
            ) -> tuple[CounterState, list[Interval]]:
    """Spread `delta` over the grid from the previous reading to `ts_ns`; completed intervals come out."""
    span = ts_ns - state.ts_ns
    out: list[Interval] = []
    new = CounterState(ts_ns, value, state.open_start_ns, state.open_energy, state.open_covered_ns,
                       state.open_estimated or estimated, state.rate_per_h, state.peak_per_h, state.history_ns)
    start = new.open_start_ns  # always the interval holding the previous reading
    while start < ts_ns:
        lo, hi = max(start, state.ts_ns), min(start + iv, ts_ns)
        new.open_energy += delta * (hi - lo) / span
        new.open_covered_ns += hi - lo
        new.open_estimated = new.open_estimated or estimated
        if hi == start + iv:  # complete
            energy, est, extra = new.open_energy, new.open_estimated, 0.0
            if new.open_covered_ns < iv:  # extrapolate the unobserved part at the observed rate
                extra = energy * (iv - new.open_covered_ns) / new.open_covered_ns
                energy, est = energy + extra, True
            out.append(Interval(start, energy, est, extra))
            new.open_start_ns, new.open_energy, new.open_covered_ns, new.open_estimated = start + iv, 0.0, 0, False
        start += iv
    return new, out
