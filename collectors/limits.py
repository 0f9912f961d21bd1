"""What the register normaliser may assume of a meter, derived in one place from the park model.

Every path that turns registers into energy (the Modbus collector service, the file import, the demo) builds
its `MeterLimits` here, so a meter's register size and plausible maximum rate are the same whichever way its
readings arrive:

- `register_max` (where the register wraps to 0, in the meter's canonical unit): the park file's
  `register_max` / `register_digits` when given, else the meter's register map (`model`) when its energy
  register is an integer type, else unknown (the normaliser then only infers a wrap at a power of ten).
- `max_per_h` (the plausible maximum rate, canonical unit per hour; kW for electricity): the park file's
  `max_kw` (electricity, pv) or `max_per_h` (other carriers) as stated; else HEADROOM x the smallest of the
  capacities given: `rated_kw`, `transformer_kva` (kW <= kVA) and `breaker_a` (three-phase 380 V:
  sqrt(3) x 0.38 kV x A).  Without any, the normaliser falls back on the meter's own history.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from dataclasses import replace

from collectors.normalise import MeterLimits
from park.model import Meter
from park.units import conversion_factor

log = logging.getLogger(__name__)

HEADROOM = 2.0  # a capacity is exceeded briefly (overload, inrush); a misread is off by orders of magnitude
LINE_VOLTAGE_KV = 0.38  # China's low-voltage three-phase supply


def plausible_max(meter: Meter) -> tuple[float | None, str]:
    """The meter's plausible maximum rate (canonical unit per hour) and where it comes from."""
    if meter.max_kw is not None:
        return meter.max_kw, f"max_kw {meter.max_kw:g} of the park file"
    if meter.max_per_h is not None:
        return meter.max_per_h, f"max_per_h {meter.max_per_h:g} of the park file"
    capacities = []
    if meter.rated_kw is not None:
        capacities.append((meter.rated_kw, f"rated_kw {meter.rated_kw:g}"))
    if meter.transformer_kva is not None:
        capacities.append((meter.transformer_kva, f"transformer_kva {meter.transformer_kva:g}"))
    if meter.breaker_a is not None:
        kw = math.sqrt(3) * LINE_VOLTAGE_KV * meter.breaker_a
        capacities.append((kw, f"breaker_a {meter.breaker_a:g} = {kw:.1f} kW"))
    if not capacities:
        return None, ""
    kw, why = min(capacities)
    return HEADROOM * kw, f"{HEADROOM:g} x {why}"


def limits_for(meter: Meter, register_maps: dict | None = None) -> MeterLimits:
    """The normaliser's limits for one meter.  `register_maps` caches loaded maps by model name."""
    register_max, source = meter.register_max, "register size in the park file"
    resolution = 0.0
    if meter.model:
        maps = {} if register_maps is None else register_maps
        map_max, map_source, resolution = _map_register(meter, maps)
        if register_max is None:
            register_max, source = map_max, map_source
    max_per_h, why = plausible_max(meter)
    return MeterLimits(interval_s=meter.interval_s, register_max=register_max, max_per_h=max_per_h,
                       max_source=why, register_source=source if register_max is not None else "",
                       resolution=resolution)


def meter_limits(meters: Iterable[Meter], *, strict: bool = True) -> dict[str, MeterLimits]:
    """Limits of every meter, by id (pass to `Pipeline(limits=...)`; a Pipeline built without derives them
    from its catalogue's meters).  A register map that cannot be loaded is a ValueError naming the meter, or,
    with strict=False, a logged warning and limits from the park file alone."""
    maps: dict = {}
    out = {}
    for m in meters:
        try:
            out[m.id] = limits_for(m, maps)
        except ValueError as exc:
            if strict:
                raise
            log.warning("%s; its register size is not known from the map", exc)
            out[m.id] = limits_for(replace(m, model=None), maps)
    return out


def _map_register(meter: Meter, maps: dict) -> tuple[float | None, str, float]:
    """Where the meter's register-map energy register wraps, in the meter's unit (None if it does not), where
    the map says that comes from, and its least step (an integer register's scale; 0 for a float)."""
    from collectors.registermaps import load_register_map

    if meter.model not in maps:
        try:
            maps[meter.model] = load_register_map(meter.model)
        except ValueError as exc:
            raise ValueError(f"meter {meter.id}: {exc}") from None
    register_map = maps[meter.model]
    factor = conversion_factor(register_map.energy.unit, meter.unit)
    energy = register_map.energy
    step = 0.0 if energy.type == "float32" else abs(energy.scale) * factor
    wrap = register_map.energy_register_max
    source = f"register map {register_map.name}: {getattr(register_map, 'energy_register_max_source', '')}"
    return (None if wrap is None else wrap * factor), source.rstrip(": "), step
