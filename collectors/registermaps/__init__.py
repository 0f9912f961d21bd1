"""Modbus register maps: one TOML data file per meter model, loaded and validated strictly.

A map says where a meter keeps its values (table, address, type, word order, scale, unit); the converter
(collectors/converters/modbus.py) turns the words read there into values.  The format is documented in
docs/modbus.md and the provenance of every shipped map in the README.md beside this file.  Any mistake in a
map file is a `RegisterMapError` naming the file, the entry and the key, because a wrong address or scale
silently corrupts every reading of every meter of that model.

Every map states where its energy register wraps to 0 (`register_max` on the energy register: a number, "type"
for an integer type's full range, or "none" for a float32 that does not wrap) and where that comes from
(`register_max_source`, starting with "unverified" when nobody checked it), because the normaliser tells a
rollover from a reset by it.  A map may name `variants`: maps of the same meter model that keep the energy
register at another address (the CHINT DTSU666 comes with its import energy at 0x101E or at 0x401E), so the
source can name the likely fix when a meter's energy register stays flat while it draws power.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from park.units import UnitError, lookup_unit

MAPS_DIR = Path(__file__).parent

TABLES = ("holding", "input")
WORD_ORDERS = ("big", "little")  # big: high word first (ABCD); little: low word first (CDAB)
TYPE_WORDS = {"uint16": 1, "int16": 1, "uint32": 2, "int32": 2, "float32": 2}

ENERGY = "total_active_energy"
POWER = "active_power"
# Register names a map may use, with the unit each must be in after scaling ("" = dimensionless).  The energy
# and power registers may use any unit of their dimension (park.units); the converter and pipeline convert.
DIMENSIONS = {ENERGY: ("electric_energy", "Wh, kWh, MWh"), POWER: ("power", "W, kW, MW")}
EXPECTED_UNITS: dict[str, str | None] = {
    ENERGY: None,
    POWER: None,
    "voltage_a": "V", "voltage_b": "V", "voltage_c": "V",
    "current_a": "A", "current_b": "A", "current_c": "A",
    "power_factor": "",
    "frequency": "Hz",
}

_METER_KEYS = {"name": True, "manufacturer": True, "source": True, "word_order": True, "notes": False,
               "variants": False}
_REGISTER_KEYS = {"name": True, "table": True, "address": True, "type": True, "scale": True, "unit": True,
                  "verified": True, "word_order": False, "note": False,
                  "register_max": False, "register_max_source": False}
_WRAP_KEYS = ("register_max", "register_max_source")  # required on the energy register, allowed nowhere else
WRAP_AT_TYPE = "type"  # register_max = "type": the integer type's full range, 2^(16 x words) x scale
WRAP_NONE = "none"  # register_max = "none": a float32 register, which does not wrap
UNVERIFIED = "unverified"  # a register_max_source starting with this word has not been checked


class RegisterMapError(ValueError):
    """A register map file that cannot be used: the message names the file, the entry and the key."""


@dataclass(frozen=True)
class Register:
    """One value in a meter's register space.  `scale` turns the raw number into `unit`."""

    name: str
    table: str  # "holding" (function 03) or "input" (function 04)
    address: int  # 0-based protocol address, as sent in the request (not the 4xxxx/3xxxx number)
    type: str  # uint16, int16, uint32, int32, float32
    scale: float
    unit: str
    word_order: str  # of 32-bit values: "big" (high word first) or "little"
    verified: bool  # checked against the manufacturer's manual
    note: str = ""
    register_max: float | None = None  # energy register only: where it wraps to 0, in `unit`; None: never
    register_max_source: str = ""  # energy register only: where register_max comes from, or "unverified: ..."

    @property
    def words(self) -> int:
        return TYPE_WORDS[self.type]


@dataclass(frozen=True)
class RegisterMap:
    """A meter model's register map."""

    name: str
    manufacturer: str
    source: str  # where the map comes from: manual title, version, URL
    word_order: str
    registers: tuple[Register, ...]
    path: Path
    notes: str = ""
    variants: tuple[str, ...] = ()  # maps of the same meter model with the energy register elsewhere

    def __getitem__(self, name: str) -> Register:
        for r in self.registers:
            if r.name == name:
                return r
        raise KeyError(f"register map {self.name!r} has no register {name!r}")

    def __contains__(self, name: object) -> bool:
        return any(r.name == name for r in self.registers)

    @property
    def energy(self) -> Register:
        return self[ENERGY]

    @property
    def unverified(self) -> list[str]:
        """Names of the registers not checked against the manufacturer's manual."""
        return [r.name for r in self.registers if not r.verified]

    @property
    def energy_register_max(self) -> float | None:
        """Where the total-energy register wraps to 0, in its unit, as the map states it (`register_max`);
        None when it does not wrap (a float32 stated "none")."""
        return self.energy.register_max

    @property
    def energy_register_max_source(self) -> str:
        """Where `energy_register_max` comes from, as the map states it."""
        return self.energy.register_max_source

    @property
    def energy_register_max_verified(self) -> bool:
        """False when the map says its register size is unverified."""
        return not self.energy.register_max_source.lower().startswith(UNVERIFIED)


def shipped_maps() -> list[str]:
    """Names of the register maps shipped with ParkCarbon."""
    return sorted(p.stem for p in MAPS_DIR.glob("*.toml"))


def load_register_map(name_or_path: str | Path) -> RegisterMap:
    """A shipped map by name (`acrel-adl400`) or a park's own map file (a path ending in .toml)."""
    text = str(name_or_path)
    if isinstance(name_or_path, Path) or text.endswith(".toml") or "/" in text or "\\" in text:
        path = Path(name_or_path)
        if not path.is_file():
            raise RegisterMapError(f"{path}: register map file not found")
        return parse_register_map(path.read_text(encoding="utf-8"), path)
    path = MAPS_DIR / f"{text}.toml"
    if not path.is_file():
        raise RegisterMapError(f"no shipped register map {text!r}; shipped: {', '.join(shipped_maps())}; "
                               "or give the path of your own map file (ending in .toml)")
    register_map = parse_register_map(path.read_text(encoding="utf-8"), path)
    if register_map.name != text:
        raise RegisterMapError(f"{path}: [meter] name is {register_map.name!r} but the file is named {text!r}")
    return register_map


def parse_register_map(text: str, path: Path) -> RegisterMap:
    """Parse and validate a map's TOML text; `path` is used in error messages."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RegisterMapError(f"{path}: not valid TOML: {exc}") from None
    _check_keys(doc, {"meter": True, "register": True}, f"{path}: top level")
    meter = doc["meter"]
    if not isinstance(meter, dict):
        raise RegisterMapError(f"{path}: [meter] must be a table")
    where = f"{path}: [meter]"
    _check_keys(meter, _METER_KEYS, where)
    for key in ("name", "manufacturer", "source"):
        _text(meter, key, where)
    word_order = _choice(meter, "word_order", WORD_ORDERS, where)
    entries = doc["register"]
    if not isinstance(entries, list) or not entries:
        raise RegisterMapError(f"{path}: needs at least one [[register]] entry")
    registers = tuple(_register(entry, i, word_order, path) for i, entry in enumerate(entries, start=1))
    _check_set(registers, path)
    variants = meter.get("variants", [])
    if (not isinstance(variants, list) or not all(isinstance(v, str) and v.strip() for v in variants)
            or meter["name"] in variants):
        raise RegisterMapError(f"{where}: key 'variants' must be a list of other maps' names, got {variants!r}")
    return RegisterMap(name=meter["name"], manufacturer=meter["manufacturer"], source=meter["source"],
                       word_order=word_order, registers=registers, path=path, notes=meter.get("notes", ""),
                       variants=tuple(variants))


def _register(entry: Any, i: int, default_order: str, path: Path) -> Register:
    where = f"{path}: [[register]] #{i}"
    if not isinstance(entry, dict):
        raise RegisterMapError(f"{where}: must be a table")
    if isinstance(entry.get("name"), str):
        where += f" ({entry['name']})"
    _check_keys(entry, _REGISTER_KEYS, where)
    name = _choice(entry, "name", tuple(EXPECTED_UNITS), where)
    table = _choice(entry, "table", TABLES, where)
    type_ = _choice(entry, "type", tuple(TYPE_WORDS), where)
    address = entry["address"]
    if not isinstance(address, int) or isinstance(address, bool) or not 0 <= address <= 0xFFFF:
        raise RegisterMapError(f"{where}: key 'address' must be an integer 0..65535 (0x0000..0xFFFF), "
                               f"got {address!r}")
    if address + TYPE_WORDS[type_] - 1 > 0xFFFF:
        raise RegisterMapError(f"{where}: a {type_} at address {address} runs past 65535")
    scale = entry["scale"]
    if (not isinstance(scale, int | float) or isinstance(scale, bool) or not math.isfinite(scale) or scale == 0):
        raise RegisterMapError(f"{where}: key 'scale' must be a non-zero number, got {scale!r}")
    unit = entry["unit"]
    if not isinstance(unit, str):
        raise RegisterMapError(f"{where}: key 'unit' must be a string, got {unit!r}")
    _check_unit(name, unit, where)
    verified = entry["verified"]
    if not isinstance(verified, bool):
        raise RegisterMapError(f"{where}: key 'verified' must be true or false, got {verified!r}")
    order = _choice(entry, "word_order", WORD_ORDERS, where) if "word_order" in entry else default_order
    note = _text(entry, "note", where) if "note" in entry else ""
    register_max, register_max_source = _wrap(entry, name, type_, float(scale), where)
    return Register(name=name, table=table, address=address, type=type_, scale=float(scale), unit=unit,
                    word_order=order, verified=verified, note=note, register_max=register_max,
                    register_max_source=register_max_source)


def _wrap(entry: dict, name: str, type_: str, scale: float, where: str) -> tuple[float | None, str]:
    """The energy register's stated size: where it wraps to 0 (in its unit; None: never) and the source."""
    if name != ENERGY:
        stray = [k for k in _WRAP_KEYS if k in entry]
        if stray:
            raise RegisterMapError(f"{where}: key(s) {', '.join(map(repr, stray))} belong on the "
                                   f"{ENERGY} register only")
        return None, ""
    missing = [k for k in _WRAP_KEYS if k not in entry]
    if missing:
        raise RegisterMapError(
            f"{where}: missing key(s) {', '.join(map(repr, missing))}: the energy register must state where it "
            f"wraps to 0 (register_max = a number in its unit, e.g. 100000000 for a 99 999 999.99 kWh display, "
            f'"{WRAP_AT_TYPE}" for the integer type\'s full range, or "{WRAP_NONE}" for a float32) and where '
            f'that comes from (register_max_source = "manual ..., p. ..." or "{UNVERIFIED}: ...")')
    source = _text(entry, "register_max_source", where)
    value = entry["register_max"]
    full_range = None if type_ == "float32" else float(2 ** (16 * TYPE_WORDS[type_] - type_.startswith("int"))) * scale
    if value == WRAP_AT_TYPE:
        if full_range is None:
            raise RegisterMapError(f'{where}: key \'register_max\' cannot be "{WRAP_AT_TYPE}" for a float32, which '
                                   f'has no integer range: give a number or "{WRAP_NONE}"')
        return full_range, source
    if value == WRAP_NONE:
        if full_range is not None:
            raise RegisterMapError(f'{where}: key \'register_max\' cannot be "{WRAP_NONE}" for a {type_}: an '
                                   f'integer register wraps, at the latest at {full_range:g} ("{WRAP_AT_TYPE}")')
        return None, source
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value) or value <= 0:
        raise RegisterMapError(f'{where}: key \'register_max\' must be a positive number, "{WRAP_AT_TYPE}" or '
                               f'"{WRAP_NONE}", got {value!r}')
    if full_range is not None and value > full_range:
        raise RegisterMapError(f"{where}: key 'register_max' {value:g} is beyond what a {type_} with scale "
                               f"{scale:g} can hold ({full_range:g})")
    return float(value), source


def _check_unit(name: str, unit: str, where: str) -> None:
    expected = EXPECTED_UNITS[name]
    if expected is None:
        dimension, examples = DIMENSIONS[name]
        try:
            if lookup_unit(unit).dimension == dimension:
                return
        except UnitError as exc:
            raise RegisterMapError(f"{where}: key 'unit': {exc}") from None
        raise RegisterMapError(f"{where}: key 'unit' must be a unit of {dimension.replace('_', ' ')} "
                               f"({examples}) for {name}, got {unit!r}")
    if unit != expected:
        raise RegisterMapError(f"{where}: key 'unit' must be {expected!r} for {name}, got {unit!r}")


def _check_set(registers: tuple[Register, ...], path: Path) -> None:
    names = [r.name for r in registers]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise RegisterMapError(f"{path}: register(s) {', '.join(dupes)} defined more than once")
    if ENERGY not in names:
        raise RegisterMapError(f"{path}: a map needs a [[register]] named {ENERGY!r}")
    spans = sorted((r.table, r.address, r.address + r.words - 1, r.name) for r in registers)
    for (t1, _, end1, n1), (t2, start2, _, n2) in zip(spans, spans[1:], strict=False):
        if t1 == t2 and start2 <= end1:
            raise RegisterMapError(f"{path}: registers {n1} and {n2} overlap in the {t1} table at address {start2}")


def _check_keys(table: dict, allowed: dict[str, bool], where: str) -> None:
    unknown = sorted(set(table) - set(allowed))
    if unknown:
        raise RegisterMapError(f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; "
                               f"allowed: {', '.join(allowed)}")
    missing = [k for k, required in allowed.items() if required and k not in table]
    if missing:
        raise RegisterMapError(f"{where}: missing key(s) {', '.join(map(repr, missing))}")


def _text(table: dict, key: str, where: str) -> str:
    value = table[key]
    if not isinstance(value, str) or not value.strip():
        raise RegisterMapError(f"{where}: key {key!r} must be a non-empty string, got {value!r}")
    return value


def _choice(table: dict, key: str, choices: tuple[str, ...], where: str) -> str:
    value = table[key]
    if value not in choices:
        raise RegisterMapError(f"{where}: key {key!r} must be one of {', '.join(choices)}, got {value!r}")
    return value
