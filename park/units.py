"""Energy carriers, their canonical units and unit conversion.

Every interval value in the store is in its carrier's canonical unit, so sums never mix units.
A reading may arrive in another unit of the same dimension (MWh for a kWh meter); it is converted
on the way in.  A unit of another dimension (m3 for an electricity meter) is an error, never a guess.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Carrier(StrEnum):
    """Energy carriers (能源品种) a meter can measure."""

    ELECTRICITY = "electricity"  # 电, grid electricity consumed
    PV = "pv"  # 光伏, on-site photovoltaic generation consumed on site
    NATURAL_GAS = "natural_gas"  # 天然气
    STEAM = "steam"  # 蒸汽, purchased steam by mass
    HEAT = "heat"  # 热力, purchased heat by energy
    DIESEL = "diesel"  # 柴油
    WATER = "water"  # 水 (not energy, but metered and reported)


class UnitError(ValueError):
    """A unit that is unknown, or of another dimension than the carrier's."""


@dataclass(frozen=True)
class Unit:
    symbol: str
    dimension: str
    to_base: float  # multiply a value in this unit by to_base to get the dimension's base unit


# Base units per dimension: electric_energy -> kWh, volume -> m3, mass -> kg, heat -> GJ, current -> A,
# power -> kW.
_UNITS: dict[str, Unit] = {
    u.symbol.lower(): u
    for u in [
        Unit("Wh", "electric_energy", 1e-3),
        Unit("kWh", "electric_energy", 1.0),
        Unit("MWh", "electric_energy", 1e3),
        Unit("GWh", "electric_energy", 1e6),
        Unit("10^4 kWh", "electric_energy", 1e4),  # 万千瓦时, common on electricity bills
        Unit("m3", "volume", 1.0),
        Unit("Nm3", "volume", 1.0),
        Unit("10^4 m3", "volume", 1e4),  # 万立方米, common on gas bills
        Unit("L", "volume", 1e-3),
        Unit("kg", "mass", 1.0),
        Unit("t", "mass", 1e3),
        Unit("kJ", "heat", 1e-6),
        Unit("MJ", "heat", 1e-3),
        Unit("GJ", "heat", 1.0),
        Unit("TJ", "heat", 1e3),
        Unit("mA", "current", 1e-3),
        Unit("A", "current", 1.0),
        Unit("W", "power", 1e-3),
        Unit("kW", "power", 1.0),
        Unit("MW", "power", 1e3),
    ]
}
_ALIASES = {"kwh": "kwh", "千瓦时": "kwh", "度": "kwh", "万千瓦时": "10^4 kwh", "吨": "t", "千克": "kg", "公斤": "kg",
            "立方米": "m3", "m³": "m3", "nm³": "nm3", "万立方米": "10^4 m3", "吉焦": "gj", "兆焦": "mj"}

CANONICAL_UNIT: dict[Carrier, str] = {
    Carrier.ELECTRICITY: "kWh",
    Carrier.PV: "kWh",
    Carrier.NATURAL_GAS: "m3",
    Carrier.STEAM: "t",
    Carrier.HEAT: "GJ",
    Carrier.DIESEL: "kg",
    Carrier.WATER: "m3",
}


# What each carrier may be measured in (its quantity's dimensions).  Steam is bought by mass or by heat (a steam
# bill in GJ); every other carrier has one dimension.  A unit of another dimension is refused, never converted.
CARRIER_DIMENSIONS: dict[Carrier, tuple[str, ...]] = {
    Carrier.ELECTRICITY: ("electric_energy",),
    Carrier.PV: ("electric_energy",),
    Carrier.NATURAL_GAS: ("volume",),
    Carrier.STEAM: ("mass", "heat"),
    Carrier.HEAT: ("heat",),
    Carrier.DIESEL: ("mass",),  # litres would need the fuel's density: record kg or t
    Carrier.WATER: ("volume",),
}
# Fuels the accounting knows beyond the metered carriers (coal, fuel oil, LPG, wood, ...): by mass or volume; the
# factor used (its NCV per kg or per m3) must then be of the same dimension (carbon.factors checks it).
FUEL_DIMENSIONS: tuple[str, ...] = ("mass", "volume")


def lookup_unit(symbol: str) -> Unit:
    key = str(symbol).strip().lower()
    key = _ALIASES.get(key, key)
    try:
        return _UNITS[key]
    except KeyError:
        known = ", ".join(sorted(u.symbol for u in _UNITS.values()))
        raise UnitError(f"unknown unit {symbol!r}; known units: {known}") from None


def conversion_factor(from_unit: str, to_unit: str) -> float:
    """Factor f such that value_in_to_unit = value_in_from_unit * f; raises UnitError across dimensions."""
    a, b = lookup_unit(from_unit), lookup_unit(to_unit)
    if a.dimension != b.dimension:
        raise UnitError(f"cannot convert {a.symbol} ({a.dimension}) to {b.symbol} ({b.dimension})")
    return a.to_base / b.to_base


def canonical_unit(carrier: Carrier | str) -> str:
    return CANONICAL_UNIT[Carrier(carrier)]


def carrier_dimensions(carrier: Carrier | str) -> tuple[str, ...]:
    """The dimensions a carrier's quantity may have; any other fuel name gets FUEL_DIMENSIONS."""
    try:
        return CARRIER_DIMENSIONS[Carrier(carrier)]
    except ValueError:
        return FUEL_DIMENSIONS


def carrier_unit(carrier: Carrier | str, symbol: str) -> Unit:
    """The unit `symbol` if `carrier` can be measured in it; UnitError naming what the carrier takes otherwise.

    'steam', 'GJ' -> GJ (heat); 'electricity', 'm3' and 'natural_gas', 'kWh' -> UnitError.
    """
    unit = lookup_unit(symbol)
    dims = carrier_dimensions(carrier)
    if unit.dimension not in dims:
        examples = ", ".join(u.symbol for u in _UNITS.values() if u.dimension in dims)
        raise UnitError(f"{carrier} cannot be measured in {unit.symbol} ({unit.dimension}): it is measured in "
                        f"{' or '.join(dims)} ({examples})")
    return unit
