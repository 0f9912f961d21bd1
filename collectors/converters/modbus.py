"""Modbus register words <-> meter values, driven by a register map (collectors/registermaps/).

Pure: no I/O.  The source (collectors/sources/modbus.py) reads the blocks `read_blocks` plans and hands the
words here; the simulator and the tests use `encode` to put values into registers the same way a meter does.

Word order concerns 32-bit values only: "big" sends the high word first (ABCD), "little" the low word first
(CDAB); bytes within a word are always big-endian, as Modbus defines.  Scaling is exact in decimal: a uint32
123456 with scale 0.01 gives the float nearest 1234.56, and a float32 register gives the shortest decimal that
round-trips through float32 (230.1, not 230.10000610351562) before scaling, so a meter's display value is what
the store sees.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import numpy as np

from collectors.readings import Kind, RawReading
from collectors.registermaps import ENERGY, POWER, TYPE_WORDS, Register, RegisterMap
from park.units import conversion_factor

MAX_READ_WORDS = 125  # the most registers one read request may ask for (Modbus application protocol 6.3)
_FORMATS = {"uint16": ">H", "int16": ">h", "uint32": ">I", "int32": ">i", "float32": ">f"}

# Words read from a meter: table ("holding"/"input") -> address -> 16-bit word.
Words = Mapping[str, Mapping[int, int]]


class ConversionError(ValueError):
    """Words that do not fit the register map (a register not read, a word out of range)."""


@dataclass(frozen=True)
class ReadBlock:
    """One read request: `count` registers from `address` of `table`."""

    table: str
    address: int
    count: int


def read_blocks(register_map: RegisterMap) -> list[ReadBlock]:
    """The reads that fetch every register of the map: adjacent registers share a request (gaps are never
    read, since a meter may answer an undefined address with an exception).  The energy register's block
    comes first."""
    blocks: list[ReadBlock] = []
    for r in sorted(register_map.registers, key=lambda r: (r.table, r.address)):
        last = blocks[-1] if blocks else None
        if (last and last.table == r.table and last.address + last.count == r.address
                and last.count + r.words <= MAX_READ_WORDS):
            blocks[-1] = ReadBlock(last.table, last.address, last.count + r.words)
        else:
            blocks.append(ReadBlock(r.table, r.address, r.words))
    energy = register_map.energy
    blocks.sort(key=lambda b: not (b.table == energy.table and b.address <= energy.address < b.address + b.count))
    return blocks


def decode_value(words: Sequence[int], type_: str, word_order: str, scale: float) -> float:
    """One value from its register words."""
    if len(words) != TYPE_WORDS[type_]:
        raise ConversionError(f"a {type_} takes {TYPE_WORDS[type_]} word(s), got {len(words)}")
    for w in words:
        if not 0 <= w <= 0xFFFF:
            raise ConversionError(f"register word {w} is outside 0..65535")
    ordered = list(reversed(words)) if word_order == "little" else list(words)
    raw = struct.unpack(_FORMATS[type_], struct.pack(f">{len(ordered)}H", *ordered))[0]
    if type_ == "float32":
        if not math.isfinite(raw):
            return raw
        exact = Decimal(np.format_float_positional(np.float32(raw), unique=True, trim="-"))
    else:
        exact = Decimal(raw)
    return float(exact * Decimal(repr(scale)))


def encode_value(value: float, type_: str, word_order: str, scale: float) -> list[int]:
    """The register words a meter would send for `value` (the inverse of `decode_value`)."""
    if type_ == "float32":
        raw: float | int = float(Decimal(repr(float(value))) / Decimal(repr(scale)))
    else:
        raw = int((Decimal(repr(float(value))) / Decimal(repr(scale))).to_integral_value())
    try:
        packed = struct.pack(_FORMATS[type_], raw)
    except (struct.error, OverflowError) as exc:
        raise ConversionError(f"{value} with scale {scale} does not fit a {type_}: {exc}") from None
    words = list(struct.unpack(f">{len(packed) // 2}H", packed))
    return list(reversed(words)) if word_order == "little" else words


def decode(register_map: RegisterMap, words: Words) -> dict[str, float]:
    """Every value of the map, by register name, in the map's units."""
    return {r.name: decode_value(_words_of(r, words, register_map), r.type, r.word_order, r.scale)
            for r in register_map.registers}


def encode(register_map: RegisterMap, values: Mapping[str, float]) -> dict[str, dict[int, int]]:
    """Register words (table -> address -> word) holding `values`; registers not given are left out."""
    unknown = sorted(set(values) - {r.name for r in register_map.registers})
    if unknown:
        raise ConversionError(f"register map {register_map.name!r} has no register(s) {', '.join(unknown)}")
    out: dict[str, dict[int, int]] = {}
    for r in register_map.registers:
        if r.name in values:
            encoded = encode_value(values[r.name], r.type, r.word_order, r.scale)
            out.setdefault(r.table, {}).update(zip(range(r.address, r.address + r.words), encoded, strict=True))
    return out


def to_readings(register_map: RegisterMap, values: Mapping[str, float], *, series: str, ts: datetime,
                source: str) -> list[RawReading]:
    """The readings a poll gives the pipeline: the energy register (cumulative, in the map's energy unit)
    and active power (level, converted to kW, the store's power unit); voltages, currents, power factor and
    frequency ride along in `extra` under names carrying their unit (voltage_a_v, current_a_a, frequency_hz)."""
    energy_unit = register_map.energy.unit
    extra = {(f"{name}_{register_map[name].unit.lower()}" if register_map[name].unit else name): value
             for name, value in values.items() if name not in (ENERGY, POWER)}
    readings = [RawReading(series, ts, values[ENERGY], Kind.CUMULATIVE, measurement="energy", unit=energy_unit,
                           source=source, extra=extra)]
    if POWER in values:
        factor = Decimal(repr(conversion_factor(register_map[POWER].unit, "kW")))
        kw = float(Decimal(repr(values[POWER])) * factor)
        readings.append(RawReading(series, ts, kw, Kind.LEVEL, measurement="power", unit="kW", source=source))
    return readings


def _words_of(r: Register, words: Words, register_map: RegisterMap) -> list[int]:
    table = words.get(r.table, {})
    try:
        return [table[a] for a in range(r.address, r.address + r.words)]
    except KeyError as exc:
        raise ConversionError(f"register map {register_map.name!r}: {r.name} needs {r.table} register "
                              f"{exc.args[0]} (0x{exc.args[0]:04X}), which was not read") from None
