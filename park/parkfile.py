"""The park file: one human-editable YAML file describing a park, loaded into `park.model.Park`.

The file is read through PyYAML's node API (`yaml.compose`, safe) rather than `yaml.safe_load`, so that
every problem is reported with the file path and the line it is on, and so that YAML's surprises
(`id: 0012` is a number, `id: no` is a boolean) are errors instead of silently changed ids.
All problems of a file are collected and raised together as one `ParkFileError`.
"""

from __future__ import annotations

import difflib
import math
import os
import re
from collections.abc import Collection, Iterable
from dataclasses import MISSING, dataclass, fields
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from park.model import Device, Enterprise, Meter, Park, Workshop
from park.units import Carrier

DEMO_PARK_FILE = Path(__file__).parent / "data" / "demo_park.yaml"

ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
SECONDS_PER_DAY = 86400

_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_NULL = "tag:yaml.org,2002:null"
_TAG_NAMES = {
    _INT: "a number",
    _FLOAT: "a number",
    "tag:yaml.org,2002:bool": "a yes/no boolean",
    "tag:yaml.org,2002:timestamp": "a date",
}
_CONSTRUCTOR = yaml.SafeLoader("")  # builds int and float scalars, the YAML 1.1 way (0x1F, 1_000)
_CARRIER_VALUES = [c.value for c in Carrier]
_CARRIERS = ", ".join(_CARRIER_VALUES)

_ROOT_KEYS = ("park", "enterprises")
_PARK_KEYS = ("id", "name", "name_en", "timezone", "province", "grid_region", "coverage_threshold")
_ENTERPRISE_KEYS = (
    "id", "name", "name_en", "industry", "credit_code", "province", "meters", "devices", "workshops",
)  # fmt: skip
_WORKSHOP_KEYS = ("id", "name", "name_en", "meters", "devices")
_METER_LIMITS = ("register_max", "max_kw", "rated_kw", "transformer_kva", "breaker_a", "max_per_h")
_ELECTRIC_LIMITS = ("max_kw", "rated_kw", "transformer_kva", "breaker_a")  # electricity and pv meters only
_METER_KEYS = ("id", "carrier", "name", "interval_s", "model", "address", "register_digits", *_METER_LIMITS)
_MAX_REGISTER_DIGITS = 15  # a float64 holds 15 significant digits exactly
_DEVICE_NUMBERS = ("rated_voltage_v", "power_factor", "idle_current_a", "run_current_a")
_DEVICE_KEYS = ("id", "name", *_DEVICE_NUMBERS, "interval_s")


@dataclass(frozen=True)
class Problem:
    """One problem in a park file, at a 1-based line."""

    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


class ParkFileError(ValueError):
    """A park file that cannot be loaded; `problems` lists every problem found, in line order."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = sorted(problems, key=lambda p: p.line)
        super().__init__(self._describe())

    def _describe(self) -> str:
        if len(self.problems) == 1:
            return str(self.problems[0])
        header = f"{len(self.problems)} problems in park file {self.problems[0].path}:"
        return "\n".join([header, *(f"  {p}" for p in self.problems)])


def load_park_file(path: str | os.PathLike[str]) -> Park:
    """Read and validate the park file at `path`; raises ParkFileError listing every problem."""
    return parse_park(Path(path).read_bytes(), str(path))


def parse_park(source: str | bytes, path: str = "<park file>") -> Park:
    """Validate park-file text (UTF-8 if bytes); `path` is only used in the messages."""
    if isinstance(source, bytes):
        try:
            source = source.decode("utf-8")
        except UnicodeDecodeError as e:
            line = source.count(b"\n", 0, e.start) + 1
            raise ParkFileError(
                [Problem(path, line, "the file is not UTF-8 text: save it as UTF-8")]
            ) from None
    try:
        root = yaml.compose(source, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark else 1
        reason = ": ".join(part for part in (e.context, e.problem) if part)
        raise ParkFileError([Problem(path, line, f"YAML syntax error: {reason}")]) from None
    except yaml.reader.ReaderError as e:
        line = source.count("\n", 0, e.position) + 1
        raise ParkFileError(
            [Problem(path, line, f"YAML syntax error: {e.reason} (character U+{e.character:04X})")]
        ) from None
    parser = _Parser(path)
    park = parser.park(root)
    if parser.problems:
        raise ParkFileError(parser.problems)
    assert park is not None  # no problems means every section was read
    return park


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


class _Parser:
    """Walks the composed YAML node tree, building model objects and collecting problems."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.problems: list[Problem] = []
        self.series_lines: dict[str, tuple[str, int]] = {}  # meter and device ids share one namespace
        self.enterprise_lines: dict[str, int] = {}
        self.workshop_lines: dict[str, int] = {}
        self.enterprises: list[Enterprise] = []
        self.workshops: list[Workshop] = []
        self.meters: list[Meter] = []
        self.devices: list[Device] = []

    def report(self, line: int, message: str) -> None:
        self.problems.append(Problem(self.path, line, message))

    # --- structure -------------------------------------------------------------------------------

    def mapping(self, node: yaml.Node, what: str, allowed: Collection[str]) -> dict[str, yaml.Node] | None:
        """The mapping's values by key; reports a non-mapping, duplicate keys and unknown keys."""
        if not isinstance(node, yaml.MappingNode):
            self.report(_line(node), f"{what} must be a mapping of keys to values, not {_describe(node)}")
            return None
        values: dict[str, yaml.Node] = {}
        key_lines: dict[str, int] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                self.report(_line(key_node), f"{what}: keys must be plain names, not {_describe(key_node)}")
                continue
            key = key_node.value
            if key == "<<":
                self.report(
                    _line(key_node), f"{what}: YAML merge keys (<<) are not supported: write the keys out"
                )
            elif key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1)
                hint = f"did you mean '{close[0]}'?" if close else "allowed: " + ", ".join(allowed)
                self.report(_line(key_node), f"{what}: unknown key '{key}' ({hint})")
            elif key in values:
                self.report(
                    _line(key_node), f"{what}: duplicate key '{key}' (first given on line {key_lines[key]})"
                )
            else:
                values[key], key_lines[key] = value_node, _line(key_node)
        return values

    def sequence(self, values: dict[str, yaml.Node], key: str, what: str) -> list[yaml.Node]:
        """The items of an optional list; a missing or empty (null) value is an empty list."""
        node = values.get(key)
        if node is None or node.tag == _NULL:
            return []
        if not isinstance(node, yaml.SequenceNode):
            self.report(
                _line(node), f"{what}: '{key}' must be a list (items start with '- '), not {_describe(node)}"
            )
            return []
        return list(node.value)

    # --- scalars ---------------------------------------------------------------------------------

    def text(
        self, values: dict[str, yaml.Node], key: str, what: str, line: int, required: bool = False
    ) -> str | None:
        """A text value; None if absent or null (reported if required). Numbers and booleans are errors."""
        node = values.get(key)
        if node is None or node.tag == _NULL:
            if required and node is None:
                self.report(line, f"{what}: missing required key '{key}'")
            elif required:
                self.report(_line(node), f"{what}: '{key}' is empty: it needs a value")
            return None
        if isinstance(node, yaml.ScalarNode) and node.tag == _STR:
            return node.value
        if isinstance(node, yaml.ScalarNode) and node.tag in _TAG_NAMES:  # implicitly typed: quoting fixes it
            self.report(
                _line(node),
                f"{what}: '{key}' must be text, but YAML reads {node.value} as {_describe(node)}: "
                f'put it in quotes, {key}: "{node.value}"',
            )
        else:
            self.report(_line(node), f"{what}: '{key}' must be text, not {_describe(node)}")
        return None

    def ident(self, values: dict[str, yaml.Node], what: str, line: int) -> str | None:
        """The required `id`, checked against ID_PATTERN."""
        value = self.text(values, "id", what, line, required=True)
        if value is not None and not ID_PATTERN.match(value):
            self.report(
                _line(values["id"]),
                f"{what}: invalid id '{value}': use 1 to 64 letters, digits, '_', '.' or '-', "
                "starting with a letter or digit",
            )
            return None
        return value

    def number(self, values: dict[str, yaml.Node], key: str, what: str) -> float | None:
        """An optional finite number (integer or decimal) as a float."""
        node = values.get(key)
        if node is None or node.tag == _NULL:
            return None
        if not (isinstance(node, yaml.ScalarNode) and node.tag in (_INT, _FLOAT)):
            self.report(_line(node), f"{what}: '{key}' must be a number, not {_describe(node)}")
            return None
        value = float(_CONSTRUCTOR.construct_object(node))
        if not math.isfinite(value):
            self.report(_line(node), f"{what}: '{key}' must be a finite number, not {node.value}")
            return None
        return value

    def interval(self, values: dict[str, yaml.Node], what: str) -> int | None:
        """The optional `interval_s`: a whole number of seconds that divides a day."""
        node = values.get("interval_s")
        if node is None or node.tag == _NULL:
            return None
        value = _CONSTRUCTOR.construct_object(node) if node.tag == _INT else None
        if not isinstance(value, int) or value <= 0 or SECONDS_PER_DAY % value:
            got = node.value if isinstance(node, yaml.ScalarNode) else _describe(node)
            self.report(
                _line(node),
                f"{what}: interval_s must be a whole number of seconds that divides a day (86400), "
                f"such as 60, 300, 900 or 3600; got {got}",
            )
            return None
        return value

    # --- sections --------------------------------------------------------------------------------

    def park(self, root: yaml.Node | None) -> Park | None:
        """The whole park; None when the file's top level is unusable (already reported)."""
        if root is None:
            self.report(1, "the file is empty: it needs a 'park:' section and an 'enterprises:' list")
            return None
        values = self.mapping(root, "the park file", _ROOT_KEYS)
        if values is None:
            return None
        if "park" not in values:
            self.report(
                _line(root), "the park file: missing required section 'park:' (id, name, timezone, ...)"
            )
            return None
        head = values["park"]
        head_line = next(_line(k) for k, v in root.value if v is head)
        park_values = self.mapping(head, "park", _PARK_KEYS) if head.tag != _NULL else {}
        if park_values is None:
            return None
        park_id = self.ident(park_values, "park", head_line)
        name = self.text(park_values, "name", "park", head_line, required=True)
        name_en = self.text(park_values, "name_en", "park", head_line)
        timezone = self.text(park_values, "timezone", "park", head_line)
        province = self.text(park_values, "province", "park", head_line)
        grid_region = self.text(park_values, "grid_region", "park", head_line)
        threshold = self.number(park_values, "coverage_threshold", "park")
        if threshold is not None and not 0 < threshold <= 1:
            self.report(_line(park_values["coverage_threshold"]),
                        f"park: 'coverage_threshold' is a share of the expected intervals between 0 and 1 (0.9 is "
                        f"90 %), not {threshold:g}")
            threshold = None
        if timezone is not None and not _valid_timezone(timezone):
            self.report(
                _line(park_values["timezone"]),
                f"park: unknown timezone '{timezone}' (use an IANA name such as Asia/Shanghai)",
            )
        for index, node in enumerate(self.sequence(values, "enterprises", "the park file"), start=1):
            self.enterprise(node, index)
        if park_id is None or name is None:
            return None
        return Park(
            id=park_id,
            name=name,
            name_en=name_en or "",
            timezone=timezone or Park.timezone,
            province=province,
            grid_region=grid_region,
            coverage_threshold=Park.coverage_threshold if threshold is None else threshold,
            enterprises=tuple(self.enterprises),
            workshops=tuple(self.workshops),
            meters=tuple(self.meters),
            devices=tuple(self.devices),
        )

    def enterprise(self, node: yaml.Node, index: int) -> None:
        """One enterprise with its own meters and devices, then its workshops."""
        what = _label(node, "enterprise", f"enterprise #{index}")
        values = self.mapping(node, what, _ENTERPRISE_KEYS)
        if values is None:
            return
        line = _line(node)
        ent_id = self.ident(values, what, line)
        if ent_id is not None:
            self.unique(self.enterprise_lines, ent_id, "enterprise", line)
        enterprise = Enterprise(
            id=ent_id or "",
            name=self.text(values, "name", what, line, required=True) or "",
            name_en=self.text(values, "name_en", what, line) or "",
            industry=self.text(values, "industry", what, line) or "",
            credit_code=self.text(values, "credit_code", what, line) or "",
            province=self.text(values, "province", what, line),
        )
        self.enterprises.append(enterprise)
        self.equipment(values, enterprise.id, None, what)
        for ws_index, workshop_node in enumerate(self.sequence(values, "workshops", what), start=1):
            self.workshop(workshop_node, enterprise.id, f"workshop #{ws_index} of {what}")

    def workshop(self, node: yaml.Node, enterprise: str, fallback: str) -> None:
        """One workshop (车间) with its meters and devices."""
        what = _label(node, "workshop", fallback)
        values = self.mapping(node, what, _WORKSHOP_KEYS)
        if values is None:
            return
        line = _line(node)
        ws_id = self.ident(values, what, line)
        if ws_id is not None:
            self.unique(self.workshop_lines, ws_id, "workshop", line)
        self.workshops.append(
            Workshop(
                id=ws_id or "",
                enterprise=enterprise,
                name=self.text(values, "name", what, line) or "",
                name_en=self.text(values, "name_en", what, line) or "",
            )
        )
        self.equipment(values, enterprise, ws_id, what)

    def equipment(
        self, values: dict[str, yaml.Node], enterprise: str, workshop: str | None, what: str
    ) -> None:
        """The meters and devices listed under an enterprise or a workshop."""
        for index, node in enumerate(self.sequence(values, "meters", what), start=1):
            self.meter(node, enterprise, workshop, f"meter #{index} of {what}")
        for index, node in enumerate(self.sequence(values, "devices", what), start=1):
            self.device(node, enterprise, workshop, f"device #{index} of {what}")

    def meter(self, node: yaml.Node, enterprise: str, workshop: str | None, fallback: str) -> None:
        """One meter; its carrier must be one of park.units.Carrier."""
        what = _label(node, "meter", fallback)
        values = self.mapping(node, what, _METER_KEYS)
        if values is None:
            return
        line = _line(node)
        meter_id = self.ident(values, what, line)
        if meter_id is not None:
            self.unique_series(meter_id, "meter", line)
        carrier_text = self.text(values, "carrier", what, line, required=True)
        name = self.text(values, "name", what, line)
        interval = self.interval(values, what)
        model = self.text(values, "model", what, line)
        address = self.text(values, "address", what, line)
        limits = self.meter_limits(values, what, carrier_text)
        if carrier_text is None:
            return
        if carrier_text not in _CARRIER_VALUES:
            self.report(
                _line(values["carrier"]),
                f"{what}: unknown carrier '{carrier_text}' (expected one of {_CARRIERS})",
            )
            return
        self.meters.append(
            Meter(
                id=meter_id or "",
                carrier=Carrier(carrier_text),
                enterprise=enterprise,
                workshop=workshop,
                name=name or "",
                interval_s=interval or Meter.interval_s,
                model=model,
                address=address,
                **limits,
            )
        )

    def meter_limits(
        self, values: dict[str, yaml.Node], what: str, carrier: str | None
    ) -> dict[str, float | None]:
        """The register size and plausible-maximum keys: positive numbers; `register_digits` (digits before
        the decimal point) is another way to give `register_max`; the kW/kVA/A keys are for electric meters."""
        limits = {key: self.number(values, key, what) for key in _METER_LIMITS}
        for key, value in limits.items():
            if value is not None and value <= 0:
                self.report(_line(values[key]), f"{what}: {key} must be above 0, got {value:g}")
                limits[key] = None
        digits_node = values.get("register_digits")
        if digits_node is not None and digits_node.tag != _NULL:
            digits = _CONSTRUCTOR.construct_object(digits_node) if digits_node.tag == _INT else None
            if not isinstance(digits, int) or not 1 <= digits <= _MAX_REGISTER_DIGITS:
                got = digits_node.value if isinstance(digits_node, yaml.ScalarNode) else _describe(digits_node)
                self.report(
                    _line(digits_node),
                    f"{what}: register_digits must be a whole number of digits before the decimal point, "
                    f"1 to {_MAX_REGISTER_DIGITS} (a 99999.9 display has 5); got {got}",
                )
            elif not _absent(values, "register_max"):
                self.report(
                    _line(digits_node),
                    f"{what}: give register_digits or register_max, not both "
                    f"(register_digits: {digits} means register_max: {10 ** digits})",
                )
            else:
                limits["register_max"] = float(10**digits)
        if carrier in _CARRIER_VALUES and carrier not in (Carrier.ELECTRICITY.value, Carrier.PV.value):
            for key in _ELECTRIC_LIMITS:
                if not _absent(values, key):
                    self.report(
                        _line(values[key]),
                        f"{what}: {key} is for electricity and pv meters; for a {carrier} meter give "
                        f"max_per_h (the most it can plausibly measure in an hour, in its unit)",
                    )
                    limits[key] = None
        if limits["max_kw"] is not None and limits["max_per_h"] is not None:
            self.report(
                _line(values["max_per_h"]),
                f"{what}: give max_kw or max_per_h, not both (for an electricity meter they are the same)",
            )
        return limits

    def device(self, node: yaml.Node, enterprise: str, workshop: str | None, fallback: str) -> None:
        """One bracelet device; checks rated_voltage_v > 0, 0 < power_factor <= 1, 0 <= idle < run current."""
        what = _label(node, "device", fallback)
        values = self.mapping(node, what, _DEVICE_KEYS)
        if values is None:
            return
        line = _line(node)
        device_id = self.ident(values, what, line)
        if device_id is not None:
            self.unique_series(device_id, "device", line)
        given = {key: self.number(values, key, what) for key in _DEVICE_NUMBERS}
        # a value that was given but is not a number is reported already: check no relation involving it
        valid = {key for key, value in given.items() if value is not None or _absent(values, key)}
        number = {key: getattr(Device, key) if given[key] is None else given[key] for key in _DEVICE_NUMBERS}
        voltage, power_factor = number["rated_voltage_v"], number["power_factor"]
        idle, run = number["idle_current_a"], number["run_current_a"]
        if voltage <= 0:
            self.report(
                _line(values["rated_voltage_v"]), f"{what}: rated_voltage_v must be above 0, got {voltage}"
            )
        if not 0 < power_factor <= 1:
            self.report(
                _line(values["power_factor"]),
                f"{what}: power_factor must be above 0 and at most 1, got {power_factor}",
            )
        if idle < 0:
            self.report(
                _line(values["idle_current_a"]), f"{what}: idle_current_a must be 0 or more, got {idle}"
            )
        elif idle >= run and {"idle_current_a", "run_current_a"} <= valid:
            at = values.get("run_current_a") or values["idle_current_a"]
            default = ", the default" if _absent(values, "run_current_a") else ""
            self.report(
                _line(at),
                f"{what}: idle_current_a ({idle}) must be below run_current_a ({run}{default}): "
                "below idle the machine is off, above run it is running",
            )
        self.devices.append(
            Device(
                id=device_id or "",
                enterprise=enterprise,
                workshop=workshop,
                name=self.text(values, "name", what, line) or "",
                rated_voltage_v=voltage,
                power_factor=power_factor,
                idle_current_a=idle,
                run_current_a=run,
                interval_s=self.interval(values, what) or Device.interval_s,
            )
        )

    # --- uniqueness ------------------------------------------------------------------------------

    def unique(self, seen: dict[str, int], ident: str, kind: str, line: int) -> None:
        """Report a second enterprise or workshop with an id already used by one of its kind."""
        if ident in seen:
            self.report(line, f"{kind} '{ident}': duplicate {kind} id (first used on line {seen[ident]})")
        else:
            seen[ident] = line

    def unique_series(self, ident: str, kind: str, line: int) -> None:
        """Report a meter or device whose id is already used by any meter or device of the park."""
        if ident in self.series_lines:
            other, other_line = self.series_lines[ident]
            self.report(
                line,
                f"{kind} '{ident}': id already used by the {other} on line {other_line} "
                "(meter and device ids must be unique across the park)",
            )
        else:
            self.series_lines[ident] = (kind, line)


def _absent(values: dict[str, yaml.Node], key: str) -> bool:
    return key not in values or values[key].tag == _NULL


def _label(node: yaml.Node, kind: str, fallback: str) -> str:
    """How messages name an entity: by its id when it has a textual one, else by position."""
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value == "id" and value.tag == _STR:
                return f"{kind} '{value.value}'"
    return fallback


def _describe(node: yaml.Node) -> str:
    """What a node is, in words a YAML novice understands."""
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    if node.tag == _STR:
        return f"the text '{node.value}'"
    if node.tag == _NULL:
        return "an empty value"
    return _TAG_NAMES.get(node.tag, f"a value tagged {node.tag}")


def _valid_timezone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


# --- writing ---------------------------------------------------------------------------------------


class _IndentedDumper(yaml.SafeDumper):
    """Indents list items under their key (`meters:\\n  - id: ...`), as people write YAML by hand."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def check_park(park: Park) -> None:
    """Raise ValueError listing repeated ids and references to enterprises or workshops not in the park.

    A park read from a file always passes; this guards parks built in code before they are written or stored.
    """
    problems: list[str] = []
    for kind, ids in (
        ("enterprise", [e.id for e in park.enterprises]),
        ("workshop", [w.id for w in park.workshops]),
        ("meter or device", [i.id for i in (*park.meters, *park.devices)]),
    ):
        problems += [
            f"{kind} id {i!r} is used more than once" for i in sorted({i for i in ids if ids.count(i) > 1})
        ]
    enterprise_ids = {e.id for e in park.enterprises}
    workshop_owner = {w.id: w.enterprise for w in park.workshops}
    problems += [
        f"workshop {w.id!r} refers to enterprise {w.enterprise!r}, which is not in the park"
        for w in park.workshops
        if w.enterprise not in enterprise_ids
    ]
    for item in (*park.meters, *park.devices):
        kind = "meter" if isinstance(item, Meter) else "device"
        if item.enterprise not in enterprise_ids:
            problems.append(
                f"{kind} {item.id!r} refers to enterprise {item.enterprise!r}, which is not in the park"
            )
        elif item.workshop is not None and workshop_owner.get(item.workshop) != item.enterprise:
            problems.append(
                f"{kind} {item.id!r} refers to workshop {item.workshop!r}, which is not a workshop of "
                f"enterprise {item.enterprise!r}"
            )
    if problems:
        raise ValueError(f"park {park.id!r} is inconsistent: " + "; ".join(problems))


def dump_park(park: Park) -> str:
    """The park as park-file YAML that `parse_park` reads back to an equal Park; defaults are left out.

    Raises ValueError (from check_park) if the park is inconsistent, as its file could not be loaded.
    """
    check_park(park)

    def attached(
        items: Iterable[Meter | Device], enterprise: str, workshop: str | None
    ) -> list[dict[str, Any]]:
        return [
            _non_default(i, always=_DEVICE_NUMBERS if isinstance(i, Device) else ())
            for i in items
            if i.enterprise == enterprise and i.workshop == workshop
        ]

    def section(owner: dict[str, Any], enterprise: str, workshop: str | None) -> dict[str, Any]:
        for key, items in (("meters", park.meters), ("devices", park.devices)):
            if listed := attached(items, enterprise, workshop):
                owner[key] = listed
        return owner

    head = _non_default(park, always={"timezone"})  # every local-time figure depends on it: always written
    enterprises = []
    for e in park.enterprises:
        entry = section(_non_default(e), e.id, None)
        workshops = [section(_non_default(w), e.id, w.id) for w in park.workshops if w.enterprise == e.id]
        if workshops:
            entry["workshops"] = workshops
        enterprises.append(entry)
    document = {"park": head, "enterprises": enterprises}
    return yaml.dump(document, Dumper=_IndentedDumper, allow_unicode=True, sort_keys=False, width=110)


_STRUCTURAL = {"enterprise", "workshop", "enterprises", "workshops", "meters", "devices"}


def _non_default(
    item: Park | Enterprise | Workshop | Meter | Device, always: Collection[str] = ()
) -> dict[str, Any]:
    """The item's own fields in declaration order, without those equal to their default (unless `always`)."""
    out: dict[str, Any] = {}
    for f in fields(item):
        value = getattr(item, f.name)
        if f.name in _STRUCTURAL or (
            f.name not in always and f.default is not MISSING and value == f.default
        ):
            continue
        out[f.name] = value.value if isinstance(value, Carrier) else value
    return out
