"""The park file: what a valid file looks like, and how each mistake is reported (path, line, reason)."""

from __future__ import annotations

import dataclasses
import textwrap
from pathlib import Path

import pytest

from park.model import Device, Enterprise, Meter, Park, Workshop
from park.parkfile import DEMO_PARK_FILE, ParkFileError, Problem, dump_park, load_park_file, parse_park
from park.units import Carrier

# A small valid file; the tests below break it one line at a time. Line numbers are on the right.
VALID = """\
park:                                  # 1
  id: demo                             # 2
  name: 示范园区                        # 3
enterprises:                           # 4
  - id: E001                           # 5
    name: 江南钢构有限公司               # 6
    meters:                            # 7
      - {id: E001-M-GAS, carrier: natural_gas}
    workshops:                         # 9
      - id: E001-W1                    # 10
        name: 下料车间                   # 11
        meters:                        # 12
          - id: E001-W1-M1             # 13
            carrier: electricity       # 14
            interval_s: 900            # 15
        devices:                       # 16
          - id: E001-W1-D1             # 17
            idle_current_a: 1.0        # 18
            run_current_a: 8.0         # 19
"""


def write(tmp_path: Path, text: str, name: str = "park.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(tmp_path: Path, text: str) -> list[tuple[int, str]]:
    """The (line, message) problems of a file that must fail to load; each names the file."""
    path = write(tmp_path, text)
    with pytest.raises(ParkFileError) as raised:
        load_park_file(path)
    assert all(p.path == str(path) for p in raised.value.problems)
    return [(p.line, p.message) for p in raised.value.problems]


def changed(line_number: int, new_line: str, text: str = VALID) -> str:
    """VALID with one line replaced (keeping its indentation)."""
    lines = text.splitlines()
    old = lines[line_number - 1]
    lines[line_number - 1] = old[: len(old) - len(old.lstrip())] + new_line
    return "\n".join(lines) + "\n"


# --- valid files ----------------------------------------------------------------------------------


def test_demo_park_file_loads() -> None:
    park = load_park_file(DEMO_PARK_FILE)

    assert (park.id, park.name, park.timezone) == ("demo", "示范工业园区", "Asia/Shanghai")
    assert len(park.enterprises) == 8
    assert all(e.name and e.name_en and e.industry for e in park.enterprises)
    assert all(1 <= sum(w.enterprise == e.id for w in park.workshops) <= 3 for e in park.enterprises)
    electricity = {m.workshop for m in park.meters if m.carrier is Carrier.ELECTRICITY}
    assert electricity == {w.id for w in park.workshops}  # every workshop has its electricity meter
    assert {m.carrier for m in park.meters} >= {
        Carrier.PV,
        Carrier.NATURAL_GAS,
        Carrier.STEAM,
        Carrier.DIESEL,
    }
    assert park.devices and len(park.catalog()) == len(park.meters) + len(park.devices)


def test_valid_file_builds_the_model_with_defaults() -> None:
    park = parse_park(VALID)

    assert park == Park(
        id="demo",
        name="示范园区",
        enterprises=(Enterprise("E001", "江南钢构有限公司"),),
        workshops=(Workshop("E001-W1", "E001", "下料车间"),),
        meters=(
            Meter("E001-M-GAS", Carrier.NATURAL_GAS, "E001", None),  # enterprise-level: no workshop
            Meter("E001-W1-M1", Carrier.ELECTRICITY, "E001", "E001-W1"),
        ),
        devices=(Device("E001-W1-D1", "E001", "E001-W1", run_current_a=8.0),),
    )


def test_ids_that_yaml_would_misread_are_fine_when_quoted(tmp_path: Path) -> None:
    text = changed(13, '- id: "0012"', changed(17, "- id: 'no'"))

    park = load_park_file(write(tmp_path, text))

    assert [m.id for m in park.meters] == ["E001-M-GAS", "0012"]
    assert [d.id for d in park.devices] == ["no"]


# --- one mistake, one exact report ----------------------------------------------------------------


def test_error_names_the_file_and_line_in_its_text(tmp_path: Path) -> None:
    path = write(tmp_path, changed(14, "carrier: gass"))

    with pytest.raises(ParkFileError) as raised:
        load_park_file(path)

    assert str(raised.value) == (
        f"{path}:14: meter 'E001-W1-M1': unknown carrier 'gass' "
        "(expected one of electricity, pv, natural_gas, steam, heat, diesel, water)"
    )
    assert isinstance(raised.value, ValueError)
    assert raised.value.problems == [Problem(str(path), 14, raised.value.problems[0].message)]


@pytest.mark.parametrize(
    ("line", "replacement", "expected"),
    [
        (2, "name_en: Demo", (1, "park: missing required key 'id'")),
        (3, "name:", (3, "park: 'name' is empty: it needs a value")),
        (6, "industry: steel", (5, "enterprise 'E001': missing required key 'name'")),
        (5, "- industry: steel", (5, "enterprise #1: missing required key 'id'")),
        (14, "name: 一号表", (13, "meter 'E001-W1-M1': missing required key 'carrier'")),
        (13, "- name: 一号表", (13, "meter #1 of workshop 'E001-W1': missing required key 'id'")),
    ],
    ids=["park id", "park name", "enterprise name", "enterprise id", "meter carrier", "meter id"],
)
def test_missing_required_key_is_reported_where_its_entity_starts(
    tmp_path: Path, line: int, replacement: str, expected: tuple[int, str]
) -> None:
    assert problems_of(tmp_path, changed(line, replacement)) == [expected]


def test_unknown_key_is_a_typo_and_the_closest_key_is_suggested(tmp_path: Path) -> None:
    assert problems_of(tmp_path, changed(15, "intervall_s: 900")) == [
        (15, "meter 'E001-W1-M1': unknown key 'intervall_s' (did you mean 'interval_s'?)")
    ]


def test_unknown_key_without_a_close_match_lists_the_allowed_keys(tmp_path: Path) -> None:
    assert problems_of(tmp_path, changed(11, "colour: blue")) == [
        (11, "workshop 'E001-W1': unknown key 'colour' (allowed: id, name, name_en, meters, devices)")
    ]


def test_repeated_key_in_one_mapping_is_an_error(tmp_path: Path) -> None:
    assert problems_of(tmp_path, changed(15, "carrier: water")) == [
        (15, "meter 'E001-W1-M1': duplicate key 'carrier' (first given on line 14)")
    ]


def test_id_that_yaml_reads_as_a_number_must_be_quoted(tmp_path: Path) -> None:
    assert problems_of(tmp_path, changed(13, "- id: 0012")) == [
        (
            13,
            "meter #1 of workshop 'E001-W1': 'id' must be text, but YAML reads 0012 as a number: "
            'put it in quotes, id: "0012"',
        )
    ]


def test_id_that_yaml_reads_as_a_boolean_must_be_quoted(tmp_path: Path) -> None:
    assert problems_of(tmp_path, changed(5, "- id: no")) == [
        (
            5,
            "enterprise #1: 'id' must be text, but YAML reads no as a yes/no boolean: "
            'put it in quotes, id: "no"',
        )
    ]


def test_credit_code_of_digits_only_must_be_quoted(tmp_path: Path) -> None:
    text = changed(6, "name: 江南钢构有限公司\n    credit_code: 913200001234567890")

    assert problems_of(tmp_path, text) == [
        (
            7,
            "enterprise 'E001': 'credit_code' must be text, but YAML reads 913200001234567890 as a number: "
            'put it in quotes, credit_code: "913200001234567890"',
        )
    ]


@pytest.mark.parametrize("bad_id", ["E 001", "-E001", "E001/1", "仪表1", "x" * 65])
def test_id_must_be_letters_digits_and_separators(tmp_path: Path, bad_id: str) -> None:
    assert problems_of(tmp_path, changed(10, f"- id: '{bad_id}'")) == [
        (
            10,
            f"workshop '{bad_id}': invalid id '{bad_id}': use 1 to 64 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit",
        )
    ]


def test_meter_and_device_ids_share_one_park_wide_namespace(tmp_path: Path) -> None:
    assert problems_of(tmp_path, changed(17, "- id: E001-M-GAS")) == [
        (
            17,
            "device 'E001-M-GAS': id already used by the meter on line 8 "
            "(meter and device ids must be unique across the park)",
        )
    ]


def test_enterprise_and_workshop_ids_are_unique_per_kind(tmp_path: Path) -> None:
    text = VALID + textwrap.indent(
        textwrap.dedent("""\
            - id: E001                 # 20
              name: 重复企业
              workshops:
                - {id: E001-W1}        # 23
                - {id: E001}           # 24: a workshop may share an enterprise's id
        """),
        "  ",
    )

    assert problems_of(tmp_path, text) == [
        (20, "enterprise 'E001': duplicate enterprise id (first used on line 5)"),
        (23, "workshop 'E001-W1': duplicate workshop id (first used on line 10)"),
    ]


def test_unknown_carrier_lists_the_known_ones(tmp_path: Path) -> None:
    text = changed(8, "- {id: M-17, carrier: gass}")

    assert problems_of(tmp_path, text) == [
        (
            8,
            "meter 'M-17': unknown carrier 'gass' "
            "(expected one of electricity, pv, natural_gas, steam, heat, diesel, water)",
        )
    ]


@pytest.mark.parametrize("value", ["0", "-900", "7", "900.0", "'900'", "yes"])
def test_interval_must_be_whole_seconds_dividing_a_day(tmp_path: Path, value: str) -> None:
    got = value.strip("'")
    assert problems_of(tmp_path, changed(15, f"interval_s: {value}")) == [
        (
            15,
            "meter 'E001-W1-M1': interval_s must be a whole number of seconds that divides a day (86400), "
            f"such as 60, 300, 900 or 3600; got {got}",
        )
    ]


def test_timezone_must_be_an_iana_name(tmp_path: Path) -> None:
    text = changed(3, "name: 示范园区\n  timezone: Asia/Shanghia")

    assert problems_of(tmp_path, text) == [
        (4, "park: unknown timezone 'Asia/Shanghia' (use an IANA name such as Asia/Shanghai)")
    ]


def test_coverage_threshold_is_the_parks_and_a_share(tmp_path: Path) -> None:
    assert load_park_file(write(tmp_path, VALID)).coverage_threshold == 0.9
    park = load_park_file(write(tmp_path, changed(3, "name: 示范园区\n  coverage_threshold: 0.95")))
    assert park.coverage_threshold == 0.95
    assert load_park_file(write(tmp_path, dump_park(park), "again.yaml")).coverage_threshold == 0.95
    assert problems_of(tmp_path, changed(3, "name: 示范园区\n  coverage_threshold: 90")) == [
        (4, "park: 'coverage_threshold' is a share of the expected intervals between 0 and 1 (0.9 is 90 %), not 90")
    ]


@pytest.mark.parametrize(
    ("line", "replacement", "expected"),
    [
        (18, "idle_current_a: -0.5", (18, "idle_current_a must be 0 or more, got -0.5")),
        (
            18,
            "idle_current_a: 8",
            (
                19,
                "idle_current_a (8.0) must be below run_current_a (8.0): "
                "below idle the machine is off, above run it is running",
            ),
        ),
        (18, "power_factor: 0", (18, "power_factor must be above 0 and at most 1, got 0.0")),
        (18, "power_factor: 1.2", (18, "power_factor must be above 0 and at most 1, got 1.2")),
        (18, "rated_voltage_v: 0", (18, "rated_voltage_v must be above 0, got 0.0")),
        (18, "rated_voltage_v: high", (18, "'rated_voltage_v' must be a number, not the text 'high'")),
    ],
    ids=["negative idle", "idle not below run", "power factor 0", "power factor > 1", "zero voltage", "text"],
)
def test_device_electrical_parameters_are_checked(
    tmp_path: Path, line: int, replacement: str, expected: tuple[int, str]
) -> None:
    expected_line, message = expected
    assert problems_of(tmp_path, changed(line, replacement)) == [
        (expected_line, f"device 'E001-W1-D1': {message}")
    ]


def test_idle_current_is_checked_against_the_default_run_current(tmp_path: Path) -> None:
    text = changed(18, "idle_current_a: 6", changed(19, "name: 冲床"))

    assert problems_of(tmp_path, text) == [
        (
            18,
            "device 'E001-W1-D1': idle_current_a (6.0) must be below run_current_a (5.0, the default): "
            "below idle the machine is off, above run it is running",
        )
    ]


def test_power_factor_of_one_and_idle_current_of_zero_are_valid() -> None:
    device = parse_park(changed(18, "idle_current_a: 0\n            power_factor: 1")).devices[0]

    assert (device.idle_current_a, device.power_factor) == (0.0, 1.0)


def test_enterprises_must_be_a_list(tmp_path: Path) -> None:
    text = "".join(VALID.splitlines(keepends=True)[:3]) + "enterprises: {id: E001, name: 甲}\n"

    assert problems_of(tmp_path, text) == [
        (4, "the park file: 'enterprises' must be a list (items start with '- '), not a mapping")
    ]


def test_meter_must_be_a_mapping(tmp_path: Path) -> None:
    assert problems_of(tmp_path, changed(8, "- E001-M-GAS")) == [
        (8, "meter #1 of enterprise 'E001' must be a mapping of keys to values, not the text 'E001-M-GAS'")
    ]


# --- several mistakes, YAML syntax, empty files ---------------------------------------------------


def test_every_problem_of_a_file_is_reported_at_once(tmp_path: Path) -> None:
    text = changed(14, "carrier: gass", changed(15, "interval_s: 7", changed(19, "run_current_a: 0.5")))
    text = changed(2, "id: no", changed(11, "nmae: 下料车间", text))
    path = write(tmp_path, text)

    with pytest.raises(ParkFileError) as raised:
        load_park_file(path)

    assert [p.line for p in raised.value.problems] == [2, 11, 14, 15, 19]
    report = str(raised.value).splitlines()
    assert report[0] == f"5 problems in park file {path}:"
    assert report[1].startswith(f"  {path}:2: park: 'id' must be text")
    assert report[3].startswith(f"  {path}:14: meter 'E001-W1-M1': unknown carrier 'gass'")


def test_yaml_syntax_error_is_reported_with_its_line(tmp_path: Path) -> None:
    text = changed(8, "- {id: E001-M-GAS, carrier: natural_gas")

    [(line, message)] = problems_of(tmp_path, text)

    assert line == 9
    assert message.startswith("YAML syntax error: while parsing a flow mapping: expected ',' or '}'")


def test_bad_indentation_is_a_syntax_error_on_its_line(tmp_path: Path) -> None:
    text = VALID.replace("            carrier: electricity", "           carrier: electricity")

    assert [line for line, _ in problems_of(tmp_path, text)] == [14]


def test_empty_file_says_what_it_needs(tmp_path: Path) -> None:
    assert problems_of(tmp_path, "# nothing yet\n") == [
        (1, "the file is empty: it needs a 'park:' section and an 'enterprises:' list")
    ]


def test_file_that_is_not_utf8_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "gbk.yaml"
    path.write_bytes(VALID.encode("gbk"))

    with pytest.raises(ParkFileError, match=r"gbk\.yaml:3: the file is not UTF-8 text: save it as UTF-8"):
        load_park_file(path)


# --- writing park files ---------------------------------------------------------------------------


def test_dumped_demo_park_loads_back_equal(tmp_path: Path) -> None:
    park = load_park_file(DEMO_PARK_FILE)

    assert load_park_file(write(tmp_path, dump_park(park))) == park


def test_dump_quotes_what_yaml_would_misread_and_keeps_chinese_readable() -> None:
    park = Park(
        id="0012",
        name="园区",
        enterprises=(Enterprise("no", "是", credit_code="913200001234567890"),),
        meters=(Meter("1e3", Carrier.WATER, "no", interval_s=3600),),
        devices=(Device("on", "no", power_factor=1.0, idle_current_a=0.0),),
    )

    text = dump_park(park)

    assert parse_park(text) == park
    assert "name: 园区" in text


def test_dump_refuses_a_park_whose_meter_points_nowhere() -> None:
    park = Park(
        "demo", "园区", enterprises=(Enterprise("E1", "甲"),), meters=(Meter("M1", Carrier.PV, "E1", "W9"),)
    )

    with pytest.raises(ValueError, match="meter 'M1' refers to workshop 'W9', which is not a workshop of"):
        dump_park(park)


def test_round_trip_keeps_every_field(tmp_path: Path) -> None:
    park = parse_park(VALID)
    full = dataclasses.replace(
        park,
        name_en="Demo",
        timezone="Asia/Urumqi",
        province="Xinjiang",
        grid_region="northwest",
        enterprises=(Enterprise("E001", "甲", "A Co.", "paper", "91320000DEMO000001", "Jiangsu"),),
        meters=(
            Meter("E001-M-GAS", Carrier.HEAT, "E001", None, "热表", 3600, "x-1", "modbus://h:502/3",
                  register_max=1e6, max_per_h=12.5),
            dataclasses.replace(park.meters[1], max_kw=800.0, rated_kw=400.0, transformer_kva=630.0,
                                breaker_a=1000.0),
            *park.meters[2:],
        ),
    )

    assert load_park_file(write(tmp_path, dump_park(full))) == full


# --- register size and plausible maximum (the register normaliser's limits) --------------------------


def test_meter_register_size_and_maximum_power_are_read() -> None:
    park = parse_park(VALID.replace("            interval_s: 900            # 15", """\
            register_digits: 5
            max_kw: 500
            transformer_kva: 630"""))
    meter = park.meters[1]
    assert (meter.register_max, meter.max_kw, meter.transformer_kva, meter.rated_kw) == (100_000.0, 500.0, 630.0,
                                                                                          None)
    gas = parse_park(VALID.replace("carrier: natural_gas}", "carrier: natural_gas, register_max: 99999.99, "
                                   "max_per_h: 120}")).meters[0]
    assert (gas.register_max, gas.max_per_h) == (99999.99, 120.0)


def test_meter_register_size_and_maximum_power_are_checked_with_their_lines(tmp_path: Path) -> None:
    text = VALID.replace("            interval_s: 900            # 15", """            register_digits: 5.5
            max_kw: -3
            breaker_a: lots""")
    assert problems_of(tmp_path, text) == [
        (15, "meter 'E001-W1-M1': register_digits must be a whole number of digits before the decimal point, "
             "1 to 15 (a 99999.9 display has 5); got 5.5"),
        (16, "meter 'E001-W1-M1': max_kw must be above 0, got -3"),
        (17, "meter 'E001-W1-M1': 'breaker_a' must be a number, not the text 'lots'"),
    ]
    both = VALID.replace("            interval_s: 900            # 15", """\
            register_digits: 6
            register_max: 100000""")
    assert problems_of(tmp_path, both) == [
        (15, "meter 'E001-W1-M1': give register_digits or register_max, not both "
             "(register_digits: 6 means register_max: 1000000)")]
    gas = VALID.replace("carrier: natural_gas}", "carrier: natural_gas, max_kw: 50}")
    assert problems_of(tmp_path, gas) == [
        (8, "meter 'E001-M-GAS': max_kw is for electricity and pv meters; for a natural_gas meter give max_per_h "
            "(the most it can plausibly measure in an hour, in its unit)")]
