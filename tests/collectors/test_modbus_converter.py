"""The Modbus converter: raw register words + register map -> exact values and readings (no I/O)."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from collectors.converters.modbus import (
    ConversionError,
    ReadBlock,
    decode,
    decode_value,
    encode,
    encode_value,
    read_blocks,
    to_readings,
)
from collectors.readings import Kind
from collectors.registermaps import load_register_map, shipped_maps

# 230.1 as an IEEE-754 float32 is 0x4366199A.
FLOAT_230_1 = (0x4366, 0x199A)


@pytest.mark.parametrize(("words", "order"), [(list(FLOAT_230_1), "big"), (list(reversed(FLOAT_230_1)), "little")])
def test_float32_decodes_in_both_word_orders(words, order):
    assert decode_value(words, "float32", order, 1.0) == 230.1


def test_float32_gives_the_meters_decimal_not_float_noise():
    # A DTSU666 sends voltage in 0.1 V as a float32: 2301.0 -> 230.1 V, and energy unscaled.
    assert decode_value([0x450F, 0xD000], "float32", "big", 0.1) == 230.1  # 2301.0
    assert decode_value([0x4640, 0xE6AE], "float32", "big", 1.0) == 12345.67  # float32 nearest 12345.67


def test_uint32_energy_with_scale_001_is_exact():
    # 0x0001E240 = 123456 -> 1234.56 kWh, the float nearest 1234.56 (not 1234.5600000000002)
    assert decode_value([0x0001, 0xE240], "uint32", "big", 0.01) == 1234.56
    assert decode_value([0xE240, 0x0001], "uint32", "little", 0.01) == 1234.56


def test_negative_int32_power():
    # -1234 W = 0xFFFFFB2E; scale 0.001 gives kW
    assert decode_value([0xFFFF, 0xFB2E], "int32", "big", 0.001) == -1.234
    assert decode_value([0xFB2E, 0xFFFF], "int32", "little", 0.001) == -1.234


def test_16_bit_types():
    assert decode_value([2301], "uint16", "big", 0.1) == 230.1
    assert decode_value([0xFE0C], "int16", "big", 0.001) == -0.5  # -500
    assert decode_value([0xFE0C], "uint16", "big", 0.001) == 65.036
    assert decode_value([0xFFFF, 0xFFFF], "uint32", "big", 0.01) == 42949672.95


def test_float32_nan_passes_through_for_the_pipeline_to_quarantine():
    assert math.isnan(decode_value([0x7FC0, 0x0000], "float32", "big", 1.0))


def test_words_that_do_not_fit_are_errors():
    with pytest.raises(ConversionError, match="a uint32 takes 2 word"):
        decode_value([1], "uint32", "big", 1.0)
    with pytest.raises(ConversionError, match="outside 0..65535"):
        decode_value([70000], "uint16", "big", 1.0)


@pytest.mark.parametrize(("value", "type_", "order", "scale", "words"), [
    (230.1, "float32", "big", 1.0, list(FLOAT_230_1)),
    (230.1, "float32", "little", 1.0, list(reversed(FLOAT_230_1))),
    (1234.56, "uint32", "big", 0.01, [0x0001, 0xE240]),
    (-1.234, "int32", "big", 0.001, [0xFFFF, 0xFB2E]),
    (-0.5, "int16", "big", 0.001, [0xFE0C]),
])
def test_encode_is_the_inverse(value, type_, order, scale, words):
    assert encode_value(value, type_, order, scale) == words
    assert decode_value(words, type_, order, scale) == value


def test_values_that_do_not_fit_the_type_cannot_be_encoded():
    with pytest.raises(ConversionError, match="does not fit a uint16"):
        encode_value(655.36, "uint16", "big", 0.01)
    with pytest.raises(ConversionError, match="does not fit a uint32"):
        encode_value(-1.0, "uint32", "big", 0.01)


def test_a_generic_meter_frame_decodes_to_exact_values():
    # The 15 input registers of the generic map as a meter sends them.
    frame = [0x0001, 0xE240,  # 1234.56 kWh
             0xFFFF, 0xFB2E,  # -1.234 kW (exporting)
             2301, 2299, 2310,  # V
             0x0000, 8025, 0x0000, 150, 0x0001, 0x0000,  # 80.25 A, 1.5 A, 655.36 A
             970, 5001]  # PF 0.97, 50.01 Hz
    values = decode(load_register_map("generic"), {"input": dict(enumerate(frame))})
    assert values == {"total_active_energy": 1234.56, "active_power": -1.234, "voltage_a": 230.1,
                      "voltage_b": 229.9, "voltage_c": 231.0, "current_a": 80.25, "current_b": 1.5,
                      "current_c": 655.36, "power_factor": 0.97, "frequency": 50.01}


def test_a_register_not_read_is_named():
    with pytest.raises(ConversionError, match=r"active_power needs input register 2 \(0x0002\)"):
        decode(load_register_map("generic"), {"input": {0: 0, 1: 1}})


@pytest.mark.parametrize("name", shipped_maps())
def test_every_shipped_map_round_trips(name):
    register_map = load_register_map(name)
    values = {"total_active_energy": 12345.6, "active_power": 51.2, "voltage_a": 230.1, "voltage_b": 229.9,
              "voltage_c": 231.0, "current_a": 80.25, "current_b": 1.5, "current_c": 2.25, "power_factor": 0.97,
              "frequency": 50.01}
    assert decode(register_map, encode(register_map, values)) == values


def test_encode_refuses_names_the_map_lacks():
    with pytest.raises(ConversionError, match="has no register"):
        encode(load_register_map("generic"), {"reactive_power": 1.0})


def test_read_blocks_join_adjacent_registers_and_read_energy_first():
    assert read_blocks(load_register_map("generic")) == [ReadBlock("input", 0, 15)]
    assert read_blocks(load_register_map("chint-dtsu666")) == [
        ReadBlock("holding", 0x101E, 2),  # energy first
        ReadBlock("holding", 0x2006, 14),  # Ua..Ic and Pt are adjacent
        ReadBlock("holding", 0x202A, 2),
        ReadBlock("holding", 0x2044, 2)]


def test_readings_energy_cumulative_power_level_and_the_rest_in_extra():
    register_map = load_register_map("generic")
    ts = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)
    values = {"total_active_energy": 1234.56, "active_power": 51.2, "voltage_a": 230.1, "current_a": 80.25,
              "power_factor": 0.97, "frequency": 50.01}
    energy, power = to_readings(register_map, values, series="M1", ts=ts, source="modbus://10.0.0.5:502/3")
    assert (energy.series, energy.ts, energy.value, energy.kind, energy.measurement, energy.unit, energy.source) == (
        "M1", ts, 1234.56, Kind.CUMULATIVE, "energy", "kWh", "modbus://10.0.0.5:502/3")
    assert energy.extra == {"voltage_a_v": 230.1, "current_a_a": 80.25, "power_factor": 0.97, "frequency_hz": 50.01}
    assert (power.value, power.kind, power.measurement, power.unit, power.source) == (
        51.2, Kind.LEVEL, "power", "kW", "modbus://10.0.0.5:502/3")


def test_power_in_another_unit_is_handed_over_in_kw(tmp_path):
    path = tmp_path / "w-meter.toml"
    path.write_text(load_register_map("generic").path.read_text(encoding="utf-8")
                    .replace('scale = 0.001\nunit = "kW"', 'scale = 1\nunit = "W"'), encoding="utf-8")
    register_map = load_register_map(path)
    values = decode(register_map, {"input": dict(enumerate([0, 0, 0xFFFF, 0xFB2E] + [0] * 11))})
    assert values["active_power"] == -1234.0  # W, in the map's unit
    power = to_readings(register_map, values, series="M1", ts=datetime(2024, 3, 1, tzinfo=UTC), source="s")[1]
    assert (power.value, power.unit) == (-1.234, "kW")
