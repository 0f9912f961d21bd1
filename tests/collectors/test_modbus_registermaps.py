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
register_max = 1000000
register_max_source = "Example meter manual V1.0, p. 3: 8 digits, 999 999.99 kWh"

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
    assert shipped_maps() == ["acrel-adl400", "acrel-adl400-secondary", "chint-dtsu666", "chint-dtsu666-401e",
                              "generic"]
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
    assert load_register_map("acrel-adl400-secondary").energy_register_max == 2 ** 32 * 0.01
    assert load_register_map("chint-dtsu666").energy_register_max is None  # float32 does not wrap
    assert load_register_map("chint-dtsu666-401e").energy_register_max is None


def test_every_shipped_map_states_its_register_size_and_where_it_comes_from():
    for name in shipped_maps():
        text = (MAPS_DIR / f"{name}.toml").read_text(encoding="utf-8")
        assert "register_max = " in text and "register_max_source = " in text, name
        register_map = load_register_map(name)
        assert register_map.energy_register_max_source
        assert register_map.energy_register_max_verified == (name == "generic"), name


def test_a_stated_register_size_is_used_and_its_source_kept(tmp_path):
    register_map = load_register_map(write(tmp_path, GOOD))
    assert register_map.energy_register_max == 1_000_000.0  # a 999 999.99 kWh display wraps here, not at 2^32
    assert register_map.energy_register_max_source.startswith("Example meter manual V1.0, p. 3")
    assert register_map.energy_register_max_verified
    text = GOOD.replace("register_max = 1000000", 'register_max = "type"').replace(
        '"Example meter manual V1.0, p. 3: 8 digits, 999 999.99 kWh"', '"Unverified: assumed"')
    register_map = load_register_map(write(tmp_path, text))
    assert register_map.energy_register_max == 2 ** 32 * 0.01
    assert not register_map.energy_register_max_verified


def test_the_dtsu666_variants_differ_only_in_the_energy_address_and_name_each_other():
    a, b = load_register_map("chint-dtsu666"), load_register_map("chint-dtsu666-401e")
    assert (a.energy.address, b.energy.address) == (0x101E, 0x401E)
    assert (a.variants, b.variants) == (("chint-dtsu666-401e",), ("chint-dtsu666",))
    same = ("table", "type", "scale", "unit", "word_order", "verified", "register_max", "register_max_source")
    assert [getattr(a.energy, k) for k in same] == [getattr(b.energy, k) for k in same]
    assert a.registers[1:] == b.registers[1:]
    assert (a.manufacturer, a.source, a.word_order, a.notes) == (b.manufacturer, b.source, b.word_order, b.notes)


def test_every_shipped_variant_is_a_shipped_map():
    for name in shipped_maps():
        for variant in load_register_map(name).variants:
            assert variant in shipped_maps() and name in load_register_map(variant).variants


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
    ("register_max = 1000000\n", "", r"#1 \(total_active_energy\): missing key\(s\) 'register_max': the energy "
                                    "register must state where it wraps"),
    ('register_max_source = "Example meter manual V1.0, p. 3: 8 digits, 999 999.99 kWh"\n', "",
     r"missing key\(s\) 'register_max_source'"),
    ("register_max = 1000000", 'register_max = "none"', r"cannot be \"none\" for a uint32"),
    ("register_max = 1000000", "register_max = 0", r"'register_max' must be a positive number, \"type\" or"),
    ("register_max = 1000000", 'register_max = "99999999"', "'register_max' must be a positive number"),
    ("register_max = 1000000", "register_max = 50000000", "beyond what a uint32 with scale 0.01 can hold"),
    ('type = "uint32"\nscale = 0.01\nunit = "kWh"\nverified = true\nregister_max = 1000000',
     'type = "float32"\nscale = 0.01\nunit = "kWh"\nverified = true\nregister_max = "type"',
     r"cannot be \"type\" for a float32"),
    ("verified = false", 'verified = false\nregister_max = "type"',
     r"#2 \(active_power\): key\(s\) 'register_max' belong on the total_active_energy register only"),
    ('word_order = "little"', 'word_order = "little"\nvariants = "chint-dtsu666"',
     r"\[meter\]: key 'variants' must be a list of other maps' names"),
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
    text = "\n".join(line for line in text.splitlines() if not line.startswith("register_max"))
    with pytest.raises(RegisterMapError, match="needs a \\[\\[register\\]\\] named 'total_active_energy'"):
        load_register_map(write(tmp_path, text))


def test_a_shipped_file_must_carry_its_own_name(tmp_path, monkeypatch):
    monkeypatch.setattr("collectors.registermaps.MAPS_DIR", tmp_path)
    (tmp_path / "other-name.toml").write_text(GOOD, encoding="utf-8")
    with pytest.raises(RegisterMapError, match="name is 'our-meter' but the file is named 'other-name'"):
        load_register_map("other-name")
