"""Register map files: the shipped maps load, and every mistake in a map names the file, the entry and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from collectors.registermaps import MAPS_DIR, RegisterMapError, load_register_map, shipped_maps

GOOD = """
[meter]
name = "our-meter"
manufacturer = "Example"
source = "Example meter manual V1.0, table 5"
word_order = "little"

[[register]]
name = "total_active_energy"
table = "input"
address = 0x0100
type = "uint32"
scale = 0.01
unit = "kWh"
verified = true

[[register]]
name = "active_power"
table = "input"
address = 0x0102
type = "int32"
scale = 0.001
unit = "kW"
verified = false
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "our-meter.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_maps_load_by_name():
    assert shipped_maps() == ["acrel-adl400", "acrel-adl400-secondary", "chint-dtsu666", "generic"]
    for name in shipped_maps():
        register_map = load_register_map(name)
        assert register_map.name == name
        assert register_map.energy.name == "total_active_energy"
        assert "active_power" in register_map


def test_vendor_maps_are_marked_unverified_and_the_readme_says_where_each_came_from():
    readme = (MAPS_DIR / "README.md").read_text(encoding="utf-8")
    for name in shipped_maps():
        register_map = load_register_map(name)
        assert f"`{name}`" in readme
        expected_unverified = [] if name == "generic" else [r.name for r in register_map.registers]
        assert register_map.unverified == expected_unverified


def test_energy_register_max_is_where_the_counter_wraps():
    assert load_register_map("generic").energy_register_max == 2 ** 32 * 0.01
    assert load_register_map("acrel-adl400").energy_register_max == 2 ** 32 * 0.1
    assert load_register_map("chint-dtsu666").energy_register_max is None  # float32 does not wrap


def test_a_park_can_use_its_own_map_file(tmp_path):
    path = write(tmp_path, GOOD)
    for ref in (path, str(path)):
        register_map = load_register_map(ref)
        assert register_map.name == "our-meter"
        assert register_map.word_order == "little"
        assert register_map["active_power"].word_order == "little"  # the meter's default
        assert register_map.unverified == ["active_power"]


def test_an_unknown_map_name_lists_the_shipped_ones():
    with pytest.raises(RegisterMapError, match="no shipped register map 'acrel-adl4000'; shipped: acrel-adl400, "):
        load_register_map("acrel-adl4000")


def test_a_missing_map_file_is_named(tmp_path):
    with pytest.raises(RegisterMapError, match="register map file not found"):
        load_register_map(tmp_path / "nope.toml")


@pytest.mark.parametrize(("old", "new", "message"), [
    ("scale = 0.001\n", "scal = 0.001\n",
     r"\[\[register\]\] #2 \(active_power\): unknown key\(s\) 'scal'"),
    ('table = "input"\naddress = 0x0102', 'address = 0x0102', r"#2 \(active_power\): missing key\(s\) 'table'"),
    ('table = "input"\naddress = 0x0102', 'table = "coils"\naddress = 0x0102',
     "key 'table' must be one of holding, input, got 'coils'"),
    ("address = 0x0102", "address = 70000", "key 'address' must be an integer 0..65535"),
    ('type = "int32"', 'type = "int64"', "key 'type' must be one of uint16, int16, uint32, int32, float32"),
    ("scale = 0.001", "scale = 0", "key 'scale' must be a non-zero number, got 0"),
    ("scale = 0.001", 'scale = "0.001"', "key 'scale' must be a non-zero number"),
    ('unit = "kW"', 'unit = "kWh"', r"key 'unit' must be a unit of power \(W, kW, MW\) for active_power, got 'kWh'"),
    ('unit = "kWh"', 'unit = "m3"', "key 'unit' must be a unit of electric energy"),
    ('name = "active_power"', 'name = "voltage_a"', "key 'unit' must be 'V' for voltage_a, got 'kW'"),
    ('unit = "kWh"', 'unit = "kwhr"', "key 'unit': unknown unit 'kwhr'"),
    ("verified = false", 'verified = "no"', "key 'verified' must be true or false"),
    ('name = "active_power"', 'name = "reactive_power"', "key 'name' must be one of total_active_energy"),
    ("verified = false", 'verified = false\n[[register]]\nname = "active_power"\ntable = "holding"\naddress = 0\n'
     'type = "int16"\nscale = 0.001\nunit = "kW"\nverified = false', "active_power defined more than once"),
    ("address = 0x0102", "address = 0x0101", "registers total_active_energy and active_power overlap"),
    ('word_order = "little"', 'word_order = "middle"', r"\[meter\]: key 'word_order' must be one of big, little"),
    ('source = "Example meter manual V1.0, table 5"\n', "", r"\[meter\]: missing key\(s\) 'source'"),
    ("[meter]", "[meters]", r"top level: unknown key\(s\) 'meters'"),
    ('name = "active_power"', "name = 'active_power'\nname = 'x'", "not valid TOML"),
])
def test_map_mistakes_name_the_file_entry_and_key(tmp_path, old, new, message):
    assert old in GOOD
    path = write(tmp_path, GOOD.replace(old, new, 1))
    with pytest.raises(RegisterMapError, match=message) as err:
        load_register_map(path)
    assert str(err.value).startswith(str(path))


def test_a_map_needs_the_energy_register(tmp_path):
    text = GOOD.replace('name = "total_active_energy"', 'name = "voltage_a"').replace('unit = "kWh"', 'unit = "V"')
    text = text.replace('type = "uint32"\nscale = 0.01', 'type = "uint16"\nscale = 0.1')
    with pytest.raises(RegisterMapError, match="needs a \\[\\[register\\]\\] named 'total_active_energy'"):
        load_register_map(write(tmp_path, text))


def test_a_shipped_file_must_carry_its_own_name(tmp_path, monkeypatch):
    monkeypatch.setattr("collectors.registermaps.MAPS_DIR", tmp_path)
    (tmp_path / "other-name.toml").write_text(GOOD, encoding="utf-8")
    with pytest.raises(RegisterMapError, match="name is 'our-meter' but the file is named 'other-name'"):
        load_register_map("other-name")
