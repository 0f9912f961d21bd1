"""Bracelet current -> machine state, running / idle / off hours, utilisation (开工率), estimated energy and its
reconciliation against the enterprise's meter.  Pure functions over pandas frames; the method, its parameters
and worked examples are in docs/bracelets.md (the examples are also the tests).

Readings are a frame with columns ``ts`` (timezone-aware) and ``value`` (current in A) for one device, as
``store.points("current", ...)`` returns them per series.  A reading stands for the time until the next one;
when the next one is more than `StateParams.gap_intervals` x `Device.interval_s` away, it stands for one
interval only and the rest is ``unknown``: a silent bracelet is not an idle machine.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

import numpy as np
import pandas as pd

from park.model import Device

OFF, IDLE, RUNNING, UNKNOWN = "off", "idle", "running", "unknown"
LEVELS = (OFF, IDLE, RUNNING)  # index = level; higher current, higher level
SQRT3 = math.sqrt(3.0)
_NS = 1_000_000_000


@dataclass(frozen=True)
class StateParams:
    """How current becomes state.  A state is entered when the current reaches its threshold
    (`Device.idle_current_a` for idle, `Device.run_current_a` for running) and left only when the current falls
    below (1 - hysteresis) x that threshold; a state lasting less than `min_dwell_s` is merged into the one
    before it."""

    hysteresis: float = 0.1
    min_dwell_s: float = 120.0
    gap_intervals: float = 3.0  # no reading for longer than this many intervals: unknown


DEFAULT_PARAMS = StateParams()


# ---- state ---------------------------------------------------------------------------------------------------
def _samples(readings: pd.DataFrame, device: Device, params: StateParams) -> tuple[np.ndarray, np.ndarray,
                                                                                    np.ndarray, np.ndarray]:
    """Sorted sample times (UTC ns), currents, the end of the time each stands for, and whether a gap follows."""
    frame = readings[["ts", "value"]].copy()
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    frame = frame.sort_values("ts", kind="stable").drop_duplicates("ts", keep="last")
    ts = frame["ts"].astype("datetime64[ns, UTC]").astype("int64").to_numpy()
    current = frame["value"].astype(float).to_numpy()
    interval = int(device.interval_s * _NS)
    limit = params.gap_intervals * interval
    gap_after = np.ones(len(ts), dtype=bool)  # the last reading stands for one interval
    gap_after[:-1] = np.diff(ts) > limit
    hold_end = np.where(gap_after, ts + interval, np.append(ts[1:], 0))
    return ts, current, hold_end, gap_after


def _classify(current: np.ndarray, device: Device, params: StateParams, restart: np.ndarray) -> list[int]:
    """The state level (0 off, 1 idle, 2 running) of each reading, with hysteresis.  `restart[i]` marks a reading
    after a gap: the state before it is unknown, so it is classified by the entry thresholds alone."""
    idle_in, run_in = device.idle_current_a, device.run_current_a
    leave = (0.0, idle_in * (1 - params.hysteresis), run_in * (1 - params.hysteresis))  # exit threshold per level
    levels, level = [], 0
    for i, amps in enumerate(current):
        entered = 2 if amps >= run_in else 1 if amps >= idle_in else 0
        if restart[i] or entered >= level:
            level = entered
        else:
            while level > 0 and amps < leave[level]:
                level -= 1
        levels.append(level)
    return levels


def states(readings: pd.DataFrame, device: Device, start: datetime, end: datetime,
           params: StateParams = DEFAULT_PARAMS) -> pd.DataFrame:
    """Runs of state over [start, end): columns start, end (in `start`'s time zone), state, seconds.

    Pass readings from a little before `start` (one gap limit) so the first moments of the period are known."""
    t0, t1 = _ns(start), _ns(end)
    ts, current, hold_end, gap_after = _samples(readings, device, params)
    restart = np.append(True, gap_after[:-1]) if len(ts) else np.zeros(0, dtype=bool)
    runs: list[list] = []  # [start_ns, end_ns, state], contiguous, covering min(t0, first) .. max(t1, last)
    cursor = min(t0, int(ts[0])) if len(ts) else t0
    for t, e, level in zip(ts.tolist(), hold_end.tolist(), _classify(current, device, params, restart), strict=True):
        if t > cursor:
            _add(runs, cursor, t, UNKNOWN)
        _add(runs, t, e, LEVELS[level])
        cursor = e
    if cursor < t1:
        _add(runs, cursor, t1, UNKNOWN)
    merged = _merge_short(runs, params.min_dwell_s * _NS)
    out = [(max(s, t0), min(e, t1), st) for s, e, st in merged if e > t0 and s < t1]
    tz = pd.Timestamp(start).tz
    return pd.DataFrame({
        "start": pd.to_datetime([s for s, _, _ in out], unit="ns", utc=True).tz_convert(tz),
        "end": pd.to_datetime([e for _, e, _ in out], unit="ns", utc=True).tz_convert(tz),
        "state": [st for _, _, st in out],
        "seconds": [(e - s) / _NS for s, e, _ in out]})


def _add(runs: list[list], start: int, end: int, state: str) -> None:
    if runs and runs[-1][2] == state and runs[-1][1] == start:
        runs[-1][1] = end
    else:
        runs.append([start, end, state])


def _merge_short(runs: list[list], min_dwell_ns: float) -> list[list]:
    """A known state shorter than the minimum dwell takes the state of the known run before it."""
    out: list[list] = []
    for s, e, st in runs:
        prev = out[-1] if out else None
        if prev and prev[2] != UNKNOWN and (st == prev[2] or (st != UNKNOWN and e - s < min_dwell_ns)):
            prev[1] = e
        else:
            out.append([s, e, st])
    return out


# ---- shift calendar ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Shift:
    """A planned shift in park-local time; an end at or before the start is on the next day (time(0) = 24:00)."""

    start: time
    end: time


@dataclass(frozen=True)
class ShiftCalendar:
    """Planned working time: shifts per weekday (Monday = 0), none on holidays (the shift's start date counts)."""

    weekly: Mapping[int, tuple[Shift, ...]]
    holidays: frozenset[date] = frozenset()
    timezone: str = "Asia/Shanghai"

    def planned(self, start: datetime, end: datetime) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
        """The planned intervals within [start, end), in park-local time, in order."""
        s0, e0 = pd.Timestamp(start).tz_convert(self.timezone), pd.Timestamp(end).tz_convert(self.timezone)
        out = []
        day = s0.date() - timedelta(days=1)  # a shift that began the day before may reach into the period
        while day <= e0.date():
            if day not in self.holidays:
                for shift in self.weekly.get(day.weekday(), ()):
                    a = pd.Timestamp(datetime.combine(day, shift.start)).tz_localize(self.timezone)
                    b_day = day if shift.end > shift.start else day + timedelta(days=1)
                    b = pd.Timestamp(datetime.combine(b_day, shift.end)).tz_localize(self.timezone)
                    if b > s0 and a < e0:
                        out.append((max(a, s0), min(b, e0)))
            day += timedelta(days=1)
        return sorted(out)  # in time order whatever order a day's shifts are listed in (overlaps walk them so)

    def planned_hours(self, start: datetime, end: datetime) -> float:
        return sum((b - a).total_seconds() for a, b in self.planned(start, end)) / 3600


TWO_SHIFTS = (Shift(time(8), time(16)), Shift(time(16), time(0)))
DEFAULT_CALENDAR = ShiftCalendar({weekday: TWO_SHIFTS for weekday in range(6)})  # 08:00-24:00, Monday-Saturday


# ---- utilisation and energy -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Utilisation:
    """One device over one period.  Hours add up to the period; utilisation is a lower bound when coverage < 1."""

    device: str
    running_h: float
    idle_h: float
    off_h: float
    unknown_h: float
    planned_h: float
    running_in_shift_h: float
    overtime_h: float  # running outside the planned shifts
    utilisation: float  # 开工率 = running_in_shift_h / planned_h; NaN when nothing was planned
    running_share: float  # running_h / elapsed hours
    coverage: float  # known hours / elapsed hours
    energy_kwh: float  # estimated, before reconciliation


def estimated_energy_kwh(readings: pd.DataFrame, device: Device, start: datetime, end: datetime,
                         params: StateParams = DEFAULT_PARAMS) -> float:
    """sqrt(3) x V x I x PF x t summed over the readings in [start, end) (three-phase load; V and PF from the
    device), each reading held for the time it stands for.  Unknown time adds nothing."""
    t0, t1 = _ns(start), _ns(end)
    ts, current, hold_end, _ = _samples(readings, device, params)
    seconds = (np.clip(hold_end, t0, t1) - np.clip(ts, t0, t1)) / _NS
    amp_hours = float(np.sum(current * seconds)) / 3600
    return SQRT3 * device.rated_voltage_v * device.power_factor * amp_hours / 1000


def utilisation(readings: pd.DataFrame, device: Device, start: datetime, end: datetime,
                calendar: ShiftCalendar = DEFAULT_CALENDAR, params: StateParams = DEFAULT_PARAMS) -> Utilisation:
    """State hours, utilisation against the shift calendar, coverage and estimated energy of one device."""
    if pd.Timestamp(end) <= pd.Timestamp(start):
        raise ValueError(f"empty period: end {end} is not after start {start}")
    runs = states(readings, device, start, end, params)
    hours = runs.groupby("state")["seconds"].sum().div(3600).to_dict()
    elapsed_h = (pd.Timestamp(end) - pd.Timestamp(start)).total_seconds() / 3600
    planned = calendar.planned(start, end)
    planned_h = sum((b - a).total_seconds() for a, b in planned) / 3600
    running = runs[runs["state"] == RUNNING]
    in_shift_h = _overlap_s(list(zip(running["start"], running["end"], strict=True)), planned) / 3600
    running_h = hours.get(RUNNING, 0.0)
    unknown_h = hours.get(UNKNOWN, 0.0)
    return Utilisation(
        device=device.id, running_h=running_h, idle_h=hours.get(IDLE, 0.0), off_h=hours.get(OFF, 0.0),
        unknown_h=unknown_h, planned_h=planned_h, running_in_shift_h=in_shift_h, overtime_h=running_h - in_shift_h,
        utilisation=in_shift_h / planned_h if planned_h > 0 else math.nan,
        running_share=running_h / elapsed_h, coverage=(elapsed_h - unknown_h) / elapsed_h,
        energy_kwh=estimated_energy_kwh(readings, device, start, end, params))


def utilisation_table(points: pd.DataFrame, devices: Iterable[Device], start: datetime, end: datetime,
                      calendar: ShiftCalendar = DEFAULT_CALENDAR, params: StateParams = DEFAULT_PARAMS) -> pd.DataFrame:
    """`utilisation` for every device, from a frame of several series (``store.points("current", ...)``).
    A device without a single reading is all unknown, not all off."""
    by_series = dict(tuple(points.groupby("series"))) if len(points) else {}
    empty = pd.DataFrame({"ts": pd.Series([], dtype="datetime64[ns, UTC]"), "value": pd.Series([], dtype=float)})
    rows = [utilisation(by_series.get(d.id, empty), d, start, end, calendar, params).__dict__ for d in devices]
    return pd.DataFrame(rows, columns=list(Utilisation.__dataclass_fields__))


def _overlap_s(a: list[tuple[pd.Timestamp, pd.Timestamp]], b: list[tuple[pd.Timestamp, pd.Timestamp]]) -> float:
    """Seconds two sorted lists of disjoint intervals have in common."""
    total, i, j = 0.0, 0, 0
    while i < len(a) and j < len(b):
        lo, hi = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if hi > lo:
            total += (hi - lo).total_seconds()
        if a[i][1] <= b[j][1]:
            i += 1
        else:
            j += 1
    return total


# ---- reconciliation ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Reconciliation:
    """Bracelet estimates held against the meter of the same enterprise (or workshop) and period."""

    metered_kwh: float
    estimated_kwh: float  # sum of the estimates, after any prior calibration
    ratio: float  # estimated / metered: above 1 the estimates overstate (a wrong V, PF or threshold)
    scale: float  # applied to every estimate so that their sum does not exceed the meter; 1 when it does not
    factors: dict[str, float] = field(default_factory=dict)  # per device: calibration x scale
    reconciled_kwh: dict[str, float] = field(default_factory=dict)  # per device: estimate x factor
    unattributed_kwh: float = 0.0  # metered minus the reconciled sum: loads without a bracelet


def reconcile(estimated_kwh: Mapping[str, float], metered_kwh: float,
              calibration: Mapping[str, float] | None = None) -> Reconciliation:
    """Scale bracelet estimates so that their sum never exceeds the metered electricity.

    `calibration` holds per-device factors found earlier (a spot check with a clamp meter); devices without one
    get 1.  When the calibrated sum exceeds the meter, every estimate is scaled by meter / sum: the meter is the
    measured truth and nothing tells which device is wrong."""
    if not math.isfinite(metered_kwh) or metered_kwh < 0:
        raise ValueError(f"metered electricity {metered_kwh!r} kWh cannot be reconciled against: it must be a "
                         "finite, non-negative total for the same period as the estimates")
    cal = {d: (calibration or {}).get(d, 1.0) for d in estimated_kwh}
    calibrated = {d: kwh * cal[d] for d, kwh in estimated_kwh.items()}
    total = sum(calibrated.values())
    ratio = total / metered_kwh if metered_kwh > 0 else (math.inf if total > 0 else math.nan)
    scale = min(1.0, metered_kwh / total) if total > 0 else 1.0
    factors = {d: cal[d] * scale for d in estimated_kwh}
    reconciled = {d: kwh * scale for d, kwh in calibrated.items()}
    return Reconciliation(metered_kwh, total, ratio, scale, factors, reconciled, metered_kwh - sum(reconciled.values()))


def _ns(t: datetime) -> int:
    ts = pd.Timestamp(t)
    if ts.tzinfo is None:
        raise ValueError(f"time {t!r} has no time zone; pass an aware datetime")
    return int(ts.tz_convert("UTC").value)


__all__ = ["StateParams", "DEFAULT_PARAMS", "states", "Shift", "ShiftCalendar", "DEFAULT_CALENDAR",
           "Utilisation", "utilisation", "utilisation_table", "estimated_energy_kwh", "Reconciliation", "reconcile",
           "OFF", "IDLE", "RUNNING", "UNKNOWN"]
