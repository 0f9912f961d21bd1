"""Cumulative meter registers to interval energy, reset-safe.

A meter's total-energy register is read at arbitrary times (every poll).  Between two readings the register
difference is spread over the interval grid (15 minutes by default) in proportion to time, assuming steady
power between the two readings.  An interval is emitted once a reading at or after its end has arrived.

- A register that goes back is a **rollover** when the meter's register maximum is known and the old value was
  in its upper half (the difference is taken across the wrap), otherwise a **reset** (the meter was replaced or
  cleared): the energy since the reset is the new value itself, and the intervals are `estimated`.
- Two readings further apart than the gap limit (default two intervals) make the intervals between them
  `estimated` (rule `meter.gap`): the energy is known, its distribution over time is not.
- The first interval after the very first reading is only partly observed; it is extrapolated at the observed
  power and marked `estimated`.
- A difference implying more power than the meter's plausible maximum is a **spike**: the reading is rejected
  (quarantined) and the state kept, so the next good reading spans the gap.
- A reading at or before the newest one already consumed is **late**: it cannot change a register difference
  already spread, so it is reported (`reading.out_of_order` / `reading.duplicate`) and not applied.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

NS = 1_000_000_000


@dataclass
class CounterState:
    ts_ns: int
    value: float
    open_start_ns: int  # start of the interval being accumulated (the one holding ts_ns)
    open_energy: float = 0.0
    open_covered_ns: int = 0
    open_estimated: bool = False

    def to_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class MeterLimits:
    interval_s: int = 900
    gap_limit_s: int | None = None  # default: two intervals
    register_max: float | None = None  # register wraps to 0 above this (in the canonical unit)
    max_kw: float | None = None  # plausible maximum power; above it a difference is a spike


@dataclass(frozen=True)
class Interval:
    start_ns: int
    energy: float
    estimated: bool


@dataclass(frozen=True)
class Event:
    code: str  # a rule code of collectors/rules.py
    ts_ns: int
    detail: str


def step(state: CounterState | None, ts_ns: int, value: float, limits: MeterLimits
         ) -> tuple[CounterState, list[Interval], list[Event], bool]:
    """Apply one register reading.  Returns (new state, completed intervals, events, accepted)."""
    iv = limits.interval_s * NS
    if state is None:  # the baseline: accumulation starts in the interval holding it
        return CounterState(ts_ns, value, open_start_ns=ts_ns - ts_ns % iv), [], [], True
    if ts_ns == state.ts_ns:
        return state, [], [Event("reading.duplicate", ts_ns, f"register {value} at a time already read")], False
    if ts_ns < state.ts_ns:
        return state, [], [Event("reading.out_of_order", ts_ns, "older than the newest register reading")], False
    events: list[Event] = []
    span = ts_ns - state.ts_ns
    delta = value - state.value
    estimated = False
    if delta < 0:
        if limits.register_max and state.value >= limits.register_max / 2 and value < limits.register_max / 2:
            delta = limits.register_max - state.value + value
            events.append(Event("meter.rollover", ts_ns, f"register wrapped from {state.value} to {value}"))
        else:
            delta = value
            estimated = True
            events.append(Event("meter.reset", ts_ns, f"register went back from {state.value} to {value}"))
    if limits.max_kw is not None and delta / (span / NS / 3600) > limits.max_kw:
        kw = delta / (span / NS / 3600)
        return state, [], [Event("reading.spike", ts_ns, f"{delta:.3f} in {span / NS:.0f} s is {kw:.1f} kW, "
                                                         f"above the meter's maximum {limits.max_kw} kW")], False
    gap_limit = (limits.gap_limit_s or 2 * limits.interval_s) * NS
    if span > gap_limit:
        estimated = True
        events.append(Event("meter.gap", ts_ns, f"{span / NS / 60:.0f} min without a reading"))

    out: list[Interval] = []
    new = CounterState(ts_ns, value, state.open_start_ns, state.open_energy, state.open_covered_ns,
                       state.open_estimated or estimated)
    start = new.open_start_ns  # always the interval holding the previous reading
    while start < ts_ns:
        lo, hi = max(start, state.ts_ns), min(start + iv, ts_ns)
        new.open_energy += delta * (hi - lo) / span
        new.open_covered_ns += hi - lo
        new.open_estimated = new.open_estimated or estimated
        if hi == start + iv:  # complete
            energy, est = new.open_energy, new.open_estimated
            if new.open_covered_ns < iv:  # extrapolate the unobserved part at the observed power
                energy, est = energy * iv / new.open_covered_ns, True
            out.append(Interval(start, energy, est))
            new.open_start_ns, new.open_energy, new.open_covered_ns, new.open_estimated = start + iv, 0.0, 0, False
        start += iv
    return new, out, events, True
