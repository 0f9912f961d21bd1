"""The factor registry: emission factors and conversion coefficients as sourced data rows, with dated lookups.

Every row carries its value, unit, region, validity (valid_from .. valid_to, inclusive), source, publication
and a `verified` flag.  The shipped tables live in `carbon/data/` (one CSV per kind); a park adds or
overrides rows in its own factor file (CSV, validated with line numbers, see `parse_factor_file`).

A lookup (`FactorRegistry.resolve`) for (kind, key, parameter, region chain, date) returns a `Resolution`:
the row in force and, when it is not the one wanted, why (region fall-back province -> grid -> national ->
global; closest prior year).  The rule, documented in docs/methodology.md section 2:

1. Grid factors of the statistical series (average, residual, fossil) describe a data year; reporting year Y
   uses data year Y - `grid_lag_years` (2 by default: the latest published), or a pinned `grid_data_year`.
   Other factors (fuels, heat, tce, the ETS grid series) are looked up at the activity date itself.
2. Rows whose validity covers the target date win; among them the most specific region (an enterprise's own
   row first), a park override before a shipped row, then the latest valid_from.
3. If none covers it, the closest prior row (latest valid_to) is used, the most specific region first,
   and the result says so (`factor.prior_year`).
4. With `as_of`, rows published after that date are invisible: an earlier report can be reproduced.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from carbon.errors import FactorFileError, FactorNotFoundError, InputError
from carbon.regions import GLOBAL, GRID_REGIONS, NATIONAL, normalise_region
from park.parkfile import Problem
from park.units import UnitError, lookup_unit

DATA = Path(__file__).parent / "data"
CO2_PER_C = 44.0 / 12.0

# kind -> parameter -> (numerator units -> scale to the normalised numerator, allowed denominator dimensions)
_CO2 = {"tco2": 1.0, "kgco2": 1e-3, "tco2e": 1.0, "kgco2e": 1e-3}
_ENERGY = {"gj": 1.0, "mj": 1e-3, "kj": 1e-6, "tj": 1e3}
_CARBON = {"tc": 1.0, "kgc": 1e-3}
_COAL = {"tce": 1.0, "kgce": 1e-3, "gce": 1e-6}
_FRACTION = "fraction"
PARAMETERS: dict[str, dict[str, tuple[dict[str, float] | str, tuple[str, ...]]]] = {
    "grid": {b: (_CO2, ("electric_energy",)) for b in ("average", "residual", "fossil", "ets")},
    "fuel": {
        "ncv": (_ENERGY, ("mass", "volume")),  # GJ per kg or m3
        "carbon_content": (_CARBON, ("heat",)),  # tC per GJ
        "oxidation": (_FRACTION, ()),
        "biogenic_fraction": (_FRACTION, ()),
    },
    "heat": {
        "emission": (_CO2, ("heat",)),  # tCO2 per GJ
        "enthalpy": (_ENERGY, ("mass",)),  # GJ per kg
        "feedwater_enthalpy": (_ENERGY, ("mass",)),
    },
    "tce": {b: (_COAL, ("electric_energy", "volume", "mass", "heat")) for b in ("equivalent", "equal", "all")},
}
LAGGED_GRID_BASES = frozenset({"average", "residual", "fossil"})
GRID_LEVELS = (None, "provincial", "regional", "national")


def region_level(region: str) -> str:
    """'provincial', 'regional' or 'national' (national and global: the widest)."""
    if region in (NATIONAL, GLOBAL):
        return "national"
    return "regional" if region in GRID_REGIONS else "provincial"
KEY_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


@dataclass(frozen=True)
class FactorRow:
    """One sourced factor.  `value` is as published, in `unit`; `per_base` is the same in the normalised unit
    (per kWh, m3, kg or GJ: the base unit of the denominator's dimension)."""

    kind: str  # grid | fuel | heat | tce
    key: str  # electricity, natural_gas, diesel, heat, steam, ...
    parameter: str  # grid: average|residual|fossil|ets; fuel: ncv|carbon_content|oxidation|biogenic_fraction; ...
    region: str
    value: float
    unit: str
    valid_from: date
    valid_to: date | None
    source: str
    publication: str = ""
    published: date | None = None  # the last day of the publication month when only the month is known
    verified: bool = False
    data_year: int | None = None
    enterprise: str | None = None
    note: str = ""
    origin: str = ""  # "shipped grid_electricity.csv:12" or "park <path>:5"
    per_base: float = field(default=math.nan, compare=False)
    denominator: str = field(default="", compare=False)  # dimension of the denominator, "" for fractions

    @property
    def id(self) -> str:
        """Stable identity: what the row is about and from when, not its value."""
        who = f"@{self.enterprise}" if self.enterprise else ""
        return f"{self.kind}/{self.key}/{self.parameter}/{self.region}{who}/{self.valid_from.isoformat()}"

    @property
    def is_override(self) -> bool:
        return self.origin.startswith("park")

    def covers(self, on: date) -> bool:
        return self.valid_from <= on and (self.valid_to is None or on <= self.valid_to)


@dataclass(frozen=True)
class FactorPolicy:
    """Which factors to use.  The defaults are what a Chinese park reports with (see docs/methodology.md)."""

    grid_lag_years: int = 2  # reporting year Y uses grid data year Y - 2, the latest published
    grid_data_year: int | None = None  # pin one data year instead
    as_of: date | None = None  # only rows published on or before: reproduces an earlier report
    location_basis: str = "average"  # grid series of location-based Scope 2: "average" or "ets"
    energy_basis: str = "equivalent"  # electricity in tce: "equivalent" (当量值) or "equal" (等价值)
    # Geographic level of grid factors: None = the most specific published (province, else regional grid, else
    # national); "provincial", "regional" or "national" fixes it, so that years compare like for like.  A factor
    # from a wider level than the one fixed is flagged factor.level_fallback (the figure is then incomplete).
    grid_level: str | None = None

    def __post_init__(self) -> None:
        if self.location_basis not in ("average", "ets"):
            raise InputError(f"location_basis {self.location_basis!r} must be 'average' or 'ets'")
        if self.energy_basis not in ("equivalent", "equal"):
            raise InputError(f"energy_basis {self.energy_basis!r} must be 'equivalent' or 'equal'")
        if self.grid_lag_years < 0:
            raise InputError(f"grid_lag_years {self.grid_lag_years} must not be negative")
        if self.grid_level not in GRID_LEVELS:
            raise InputError(f"grid_level {self.grid_level!r} must be one of "
                             f"{', '.join(str(level) for level in GRID_LEVELS)}")

    def grid_regions(self, regions: tuple[str, ...]) -> tuple[str, ...]:
        """The region chain of grid lookups: the fixed level and wider (all of it when no level is fixed)."""
        if self.grid_level is None:
            return regions
        floor = GRID_LEVELS.index(self.grid_level)
        return tuple(r for r in regions if GRID_LEVELS.index(region_level(r)) >= floor)

    def target_date(self, kind: str, parameter: str, on: date) -> date:
        """The date whose factor applies to activity on `on`."""
        if kind != "grid" or parameter not in LAGGED_GRID_BASES:
            return on
        year = self.grid_data_year if self.grid_data_year is not None else on.year - self.grid_lag_years
        return date(year, on.month, min(on.day, 28))


DEFAULT_POLICY = FactorPolicy()


@dataclass(frozen=True)
class Resolution:
    """The row a lookup chose, and whether and why it is not the one wanted."""

    row: FactorRow
    regions: tuple[str, ...]
    on: date  # the activity date
    target: date  # the date looked up (the data year's date for lagged grid factors)
    region_fallback: bool
    prior_year: bool
    level_fallback: bool = False  # the row is from a wider level than FactorPolicy.grid_level fixes

    @property
    def reason(self) -> str:
        parts = []
        if self.level_fallback:
            parts.append(f"no {self.row.key}/{self.row.parameter} factor at the fixed {region_level(self.regions[0])} "
                         f"level; used {self.row.region} ({region_level(self.row.region)})")
        if self.region_fallback:
            parts.append(f"no {self.row.key}/{self.row.parameter} factor for {self.regions[0]}; "
                         f"used {self.row.region}")
        if self.prior_year:
            parts.append(f"none valid on {self.target.isoformat()}; used the closest prior, valid "
                         f"{self.row.valid_from.isoformat()} to {self.row.valid_to.isoformat()}")
        return "; ".join(parts)


class FactorRegistry:
    """An immutable set of factor rows with dated, region-aware lookups.  Build it with `shipped()` and
    `with_overrides()`; pass it into the accounting functions."""

    def __init__(self, rows: Iterable[FactorRow]) -> None:
        self.rows: tuple[FactorRow, ...] = tuple(rows)
        self._by_key: dict[tuple[str, str, str], list[FactorRow]] = {}
        for row in self.rows:
            self._by_key.setdefault((row.kind, row.key, row.parameter), []).append(row)
        self._cache: dict[tuple, Resolution] = {}
        self._frames: dict[tuple, tuple[tuple[FactorRow, ...], pd.DataFrame]] = {}
        self._fingerprint: str | None = None

    @classmethod
    def shipped(cls, directory: Path = DATA) -> FactorRegistry:
        """The registry of the tables shipped in carbon/data (FactorFileError if one is broken)."""
        rows: list[FactorRow] = []
        problems: list[Problem] = []
        for name, (kind, columns) in SHIPPED_TABLES.items():
            path = directory / name
            got, bad = _parse_rows(path.read_text(encoding="utf-8"), f"{path}", kind, columns, f"shipped {name}")
            rows += got
            problems += bad
        if problems:
            raise FactorFileError(problems)
        return cls(rows)

    def with_overrides(self, rows: Iterable[FactorRow]) -> FactorRegistry:
        """A new registry with a park's rows added (they win over shipped rows of the same region and dates)."""
        return FactorRegistry([*self.rows, *rows])

    def has(self, kind: str, key: str, parameter: str) -> bool:
        """Whether any row exists for (kind, key, parameter), whatever its region and dates."""
        return (kind, key, parameter) in self._by_key

    def fingerprint(self) -> str:
        """SHA-256 over every row's identity, value and unit: two registries that compute alike share it."""
        if self._fingerprint is None:  # the rows never change: computed once
            h = hashlib.sha256()
            for r in sorted(self.rows, key=lambda r: (r.id, r.origin)):
                h.update(f"{r.id}|{r.value!r}|{r.unit}|{r.origin}\n".encode())
            self._fingerprint = h.hexdigest()
        return self._fingerprint

    def frame(self, rows: Iterable[FactorRow] | None = None) -> pd.DataFrame:
        """Rows as a table (all, or the given ones): what an evidence pack ships beside the figures."""
        rows = tuple(self.rows if rows is None else rows)
        # The rows never change: one table per set of rows (an accounting asks for the few it used), a copy out
        key = tuple(map(id, rows))
        frames = self.__dict__.setdefault("_frames", {})  # (a registry unpickled from before the cache: none)
        hit = frames.get(key)
        if hit is None or len(hit[0]) != len(rows) or any(a is not b for a, b in zip(hit[0], rows, strict=True)):
            cols = ["id", "kind", "key", "parameter", "region", "enterprise", "value", "unit", "per_base",
                    "valid_from", "valid_to", "data_year", "source", "publication", "published", "verified",
                    "origin", "note"]
            data = [{c: getattr(r, c) for c in cols} for r in rows]
            table = pd.DataFrame(data, columns=cols).drop_duplicates("id", keep="last").sort_values("id")
            hit = (rows, table.reset_index(drop=True))
            if len(frames) < 256:
                frames[key] = hit
        return hit[1].copy()

    def _orders(self, kind: str, key: str, parameter: str, regions: tuple[str, ...], policy: FactorPolicy,
                enterprise: str | None) -> tuple[dict[str, int], list[FactorRow], list[FactorRow]]:
        """For one lookup whatever its date: the region ranks, the candidate rows (in the region chain, general or
        this enterprise's, published by the policy's as-of date) by (specificity, newest start) for rows in force,
        and those with an end by (latest end, specificity) for the closest prior row."""
        orders = self.__dict__.setdefault("_orders_cache", {})  # (a registry unpickled from before the cache)
        cache_key = (kind, key, parameter, regions, policy, enterprise)
        hit = orders.get(cache_key)
        if hit is not None:
            return hit
        rank = {r: i for i, r in enumerate(regions)}
        candidates = [
            r for r in self._by_key.get((kind, key, parameter), ())
            if r.region in rank and (r.enterprise is None or r.enterprise == enterprise)
            and (policy.as_of is None or r.published is None or r.published <= policy.as_of)
        ]

        def specificity(r: FactorRow) -> tuple[int, int, int]:
            return (0 if r.enterprise else 1, rank[r.region], 0 if r.is_override else 1)

        covering_order = sorted(candidates, key=lambda r: (*specificity(r), -r.valid_from.toordinal()))
        prior_order = sorted((r for r in candidates if r.valid_to is not None),
                             key=lambda r: (-r.valid_to.toordinal(), *specificity(r)))
        orders[cache_key] = (rank, covering_order, prior_order)
        return orders[cache_key]

    def resolve(self, kind: str, key: str, parameter: str, regions: Sequence[str], on: date,
                policy: FactorPolicy = DEFAULT_POLICY, enterprise: str | None = None) -> Resolution:
        """The row in force for activity on `on`; FactorNotFoundError if there is none (see the module doc)."""
        wanted = tuple(regions)
        regions = policy.grid_regions(wanted) if kind == "grid" else wanted
        cache_key = (kind, key, parameter, regions, on, policy, enterprise)
        hit = self._cache.get(cache_key)
        if hit is not None:
            return hit
        target = policy.target_date(kind, parameter, on)
        rank, covering_order, prior_order = self._orders(kind, key, parameter, regions, policy, enterprise)
        # The rows that may apply are ordered once per lookup (not per date): the first row in force on the target
        # date in order of specificity and then newest first; else the one whose validity ended last, then the
        # most specific (section 2.3).  Sorting is stable, so ties keep the registry's order, as min() did.
        row = next((r for r in covering_order if r.covers(target)), None)
        covering = row is not None
        if row is None:
            row = next((r for r in prior_order if r.valid_from <= target), None)
        if row is None:
            raise FactorNotFoundError(kind, key, parameter, regions, on, enterprise)
        fell_back = not row.enterprise and rank[row.region] > 0
        level_fell = (kind == "grid" and policy.grid_level is not None
                      and region_level(row.region) != policy.grid_level)
        result = Resolution(row, regions, on, target, region_fallback=fell_back, prior_year=not covering,
                            level_fallback=level_fell)
        self._cache[cache_key] = result
        return result


# ---- parsing and validation ----------------------------------------------------------------------------------

COLUMNS = ("kind", "key", "parameter", "region", "enterprise", "value", "unit", "valid_from", "valid_to",
           "data_year", "source", "publication", "published", "verified", "note")
REQUIRED = ("kind", "key", "parameter", "region", "value", "unit", "valid_from", "source", "verified")
# shipped file -> (kind, {file column: registry column}); key/parameter columns are renamed per kind
SHIPPED_TABLES: dict[str, tuple[str, dict[str, str]]] = {
    "grid_electricity.csv": ("grid", {"basis": "parameter"}),
    "fuels.csv": ("fuel", {"fuel": "key"}),
    "heat.csv": ("heat", {"carrier": "key"}),
    "standard_coal.csv": ("tce", {"carrier": "key", "basis": "parameter"}),
}
_TRUE, _FALSE = {"true", "yes", "1", "y", "是"}, {"false", "no", "0", "n", "否"}


def parse_factor_file(source: str | bytes | Path, path: str | None = None) -> list[FactorRow]:
    """Read a park factor file (CSV, UTF-8) into rows; FactorFileError lists every problem with its line.

    Columns (header row, any order): kind, key, parameter, region, value, unit, valid_from, source, verified;
    optional enterprise, valid_to, data_year, publication, published, note.  See docs/methodology.md
    section 2.4 for an example.
    """
    if isinstance(source, Path):
        path = path or str(source)
        source = source.read_bytes()
    path = path or "<factor file>"
    if isinstance(source, bytes):
        try:
            source = source.decode("utf-8-sig")
        except UnicodeDecodeError as e:
            line = source.count(b"\n", 0, e.start) + 1
            raise FactorFileError([Problem(path, line, "the file is not UTF-8 text: save it as UTF-8 CSV")]) from None
    rows, problems = _parse_rows(source, path, None, {}, f"park {path}")
    if problems:
        raise FactorFileError(problems)
    return rows


def _parse_rows(text: str, path: str, kind: str | None, rename: dict[str, str],
                origin: str) -> tuple[list[FactorRow], list[Problem]]:
    """Rows and problems of one CSV text; `kind` is fixed for shipped tables and a column in park files."""
    problems: list[Problem] = []
    reader = csv.DictReader(io.StringIO(text))
    header = [rename.get(h.strip(), h.strip()) for h in (reader.fieldnames or [])]
    if kind:
        header = ["kind", *header]
        if "key" not in header:
            header.append("key")
    missing = [c for c in REQUIRED if c not in header]
    unknown = [c for c in header if c not in COLUMNS]
    if missing or unknown:
        msg = []
        if missing:
            msg.append(f"missing column(s) {', '.join(missing)}")
        if unknown:
            msg.append(f"unknown column(s) {', '.join(unknown)}")
        return [], [Problem(path, 1, "; ".join(msg) + f"; columns are {', '.join(COLUMNS)}")]
    rows: list[FactorRow] = []
    for raw in reader:
        line = reader.line_num
        values = {rename.get(k.strip(), k.strip()): (v or "").strip() for k, v in raw.items() if k is not None}
        if kind:
            values["kind"] = kind
            values.setdefault("key", "electricity")
        if not any(values.get(c) for c in REQUIRED if c != "kind"):
            continue  # blank line
        row, bad = _row(values, path, line, f"{origin}:{line}")
        problems += bad
        if row is not None:
            rows.append(row)
    problems += _overlaps(rows, path)
    return rows, problems


def _row(v: dict[str, str], path: str, line: int, origin: str) -> tuple[FactorRow | None, list[Problem]]:
    problems: list[Problem] = []

    def bad(message: str) -> None:
        problems.append(Problem(path, line, message))

    for col in REQUIRED:
        if not v.get(col):
            bad(f"{col} is empty")
    kind, key, parameter = v.get("kind", "").lower(), v.get("key", "").lower(), v.get("parameter", "").lower()
    if kind and kind not in PARAMETERS:
        bad(f"kind {v['kind']!r} is not one of {', '.join(PARAMETERS)}")
    if kind in PARAMETERS and parameter and parameter not in PARAMETERS[kind]:
        bad(f"parameter {v['parameter']!r} is not one of {', '.join(PARAMETERS[kind])} for kind {kind}")
    if key and not KEY_PATTERN.match(key):
        bad(f"key {v['key']!r} must be lower-case letters, digits and '_' (e.g. natural_gas)")
    if kind == "grid" and key and key != "electricity":
        bad(f"grid factors have key 'electricity', not {v['key']!r}")
    if kind == "tce" and key == "steam":
        bad("steam has no tce coefficient of its own: its tce follows from its heat content (heat/steam/enthalpy, "
            "the same one its emissions use) and the heat coefficient (tce/heat/all)")
    region = ""
    if v.get("region"):
        try:
            region = normalise_region(v["region"])
        except InputError as exc:
            bad(str(exc))
    value = math.nan
    if v.get("value"):
        try:
            value = float(v["value"])
        except ValueError:
            bad(f"value {v['value']!r} is not a number")
    if not math.isnan(value) and (not math.isfinite(value) or value < 0):
        bad(f"value {v['value']!r} must be a finite number >= 0")
    valid_from = _date(v["valid_from"], "valid_from", bad) if v.get("valid_from") else None
    valid_to = _date(v["valid_to"], "valid_to", bad) if v.get("valid_to") else None
    if valid_from and valid_to and valid_to < valid_from:
        bad(f"valid_to {valid_to} is before valid_from {valid_from}")
    published = _published(v.get("published", ""), bad)
    verified = v.get("verified", "").lower()
    if verified and verified not in _TRUE | _FALSE:
        bad(f"verified {v['verified']!r} must be true or false")
    data_year = None
    if v.get("data_year"):
        try:
            data_year = int(v["data_year"])
        except ValueError:
            bad(f"data_year {v['data_year']!r} is not a year")
    per_base, dim = math.nan, ""
    if parameter in PARAMETERS.get(kind, {}) and not math.isnan(value) and v.get("unit"):
        try:
            per_base, dim = normalise(kind, parameter, value, v["unit"])
        except InputError as exc:
            bad(str(exc))
    if problems or valid_from is None:
        return None, problems
    row = FactorRow(kind, key, parameter, region, value, v["unit"], valid_from, valid_to, v["source"],
                    v.get("publication", ""), published, verified in _TRUE, data_year, v.get("enterprise") or None,
                    v.get("note", ""), origin, per_base, dim)
    return row, problems


def normalise(kind: str, parameter: str, value: float, unit: str) -> tuple[float, str]:
    """The value per base unit of its denominator (kWh, m3, kg, GJ) and that denominator's dimension.

    'tCO2/MWh' 0.5617 -> 0.0005617 per kWh; 'GJ/10^4 m3' 389.31 -> 0.038931 per m3; 'tC/TJ' 15.3 ->
    0.0153 per GJ; 'fraction' or '%' for oxidation and biogenic shares.
    """
    numerators, dims = PARAMETERS[kind][parameter]
    if numerators == _FRACTION:
        u = unit.strip().lower()
        if u not in ("fraction", "%", "1"):
            raise InputError(f"unit {unit!r} of {parameter} must be 'fraction' or '%'")
        share = value / 100.0 if u == "%" else value
        if not 0.0 < share <= 1.0 and not (parameter == "biogenic_fraction" and share == 0.0):
            raise InputError(f"{parameter} {value} {unit} must be a share in (0, 1]")
        return share, ""
    if "/" not in unit:
        raise InputError(f"unit {unit!r} must be 'numerator/denominator', e.g. tCO2/MWh, GJ/t, kgce/kWh")
    num, den = (p.strip() for p in unit.split("/", 1))
    scale = numerators.get(num.lower())
    if scale is None:
        raise InputError(f"unit {unit!r}: numerator {num!r} is not one of {', '.join(numerators)} for {parameter}")
    try:
        d = lookup_unit(den)
    except UnitError as exc:
        raise InputError(f"unit {unit!r}: {exc}") from None
    if d.dimension not in dims:
        raise InputError(f"unit {unit!r}: a {parameter} factor is per {' or '.join(dims)}, not per {d.dimension}")
    return value * scale / d.to_base, d.dimension


def _date(text: str, name: str, bad) -> date | None:
    try:
        return date.fromisoformat(text)
    except ValueError:
        bad(f"{name} {text!r} is not a date (YYYY-MM-DD)")
        return None


def _published(text: str, bad) -> date | None:
    """A publication date; YYYY-MM means the end of that month and YYYY the end of that year (conservative:
    a lookup `as_of` a date inside the month does not yet see it)."""
    if not text:
        return None
    try:
        if re.fullmatch(r"\d{4}", text):
            return date(int(text), 12, 31)
        if re.fullmatch(r"\d{4}-\d{2}", text):
            month = pd.Period(text, freq="M")
            return month.end_time.date()
        return date.fromisoformat(text)
    except ValueError:
        bad(f"published {text!r} is not YYYY, YYYY-MM or YYYY-MM-DD")
        return None


def _overlaps(rows: list[FactorRow], path: str) -> list[Problem]:
    """Two rows of one file for the same factor, region and enterprise whose validity overlaps."""
    problems = []
    seen: dict[tuple, list[FactorRow]] = {}
    for r in rows:
        group = seen.setdefault((r.kind, r.key, r.parameter, r.region, r.enterprise), [])
        for other in group:
            end_a = r.valid_to or date.max
            end_b = other.valid_to or date.max
            if r.valid_from <= end_b and other.valid_from <= end_a:
                problems.append(Problem(path, int(r.origin.rsplit(":", 1)[1]),
                                        f"{r.kind}/{r.key}/{r.parameter} for {r.region} overlaps the row on line "
                                        f"{other.origin.rsplit(':', 1)[1]} ({other.valid_from} to "
                                        f"{other.valid_to or 'open'}): end the older one with valid_to"))
        group.append(r)
    return problems


def override_rows(frame: pd.DataFrame) -> list[FactorRow]:
    """Rows from a frame with the file's columns (as stored in the metadata database); validated like a file."""
    buf = io.StringIO()
    frame.reindex(columns=list(COLUMNS)).fillna("").to_csv(buf, index=False)
    rows, problems = _parse_rows(buf.getvalue(), "<stored overrides>", None, {}, "park stored")
    if problems:
        raise FactorFileError(problems)
    origins = frame["origin"].tolist() if "origin" in frame.columns else None
    if origins:
        rows = [replace(r, origin=o) for r, o in zip(rows, origins, strict=True)]
    return rows


# The columns of activity lines a lookup reads: pass `lines[LOOKUP_COLUMNS]` (narrow frames subset faster).
LOOKUP_COLUMNS = ["enterprise", "carrier", "regions", "on"]


class FactorLookup:
    """Resolves factors for many activity lines at once and remembers what it used: the rows (for the result's
    factor table), the fall-backs, the misses, and per line (by the lines' index) the codes that make a figure
    incomplete (`line_codes`: factor.missing, factor.prior_year, factor.level_fallback).  One per computation;
    the registry is injected."""

    INCOMPLETE = ("factor.missing", "factor.prior_year", "factor.level_fallback")

    def __init__(self, registry: FactorRegistry, policy: FactorPolicy, strict: bool = True) -> None:
        self.registry, self.policy, self.strict = registry, policy, strict
        self.used: dict[str, FactorRow] = {}
        self.fallbacks: dict[tuple, tuple[Resolution, set[str]]] = {}
        self.missing: list[tuple[FactorNotFoundError, str]] = []
        self.line_codes: dict[object, set[str]] = {}
        self._specific = {(r.kind, r.key, r.parameter) for r in registry.rows if r.enterprise}

    def per_base(self, kind: str, parameter: str | pd.Series, lines: pd.DataFrame,
                 key: pd.Series | None = None, alternative: str | None = None,
                 dimension: pd.Series | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(value per base unit, row id) for every line; lines need enterprise, regions (tuple), on (date) and,
        unless `key` is given, carrier.  `alternative`: a parameter to try when `parameter` has no row (the tce
        basis 'all').  `dimension`: the lines' quantity dimensions, which must be the factor's denominator (an NCV
        per m3 never multiplies kilograms: InputError).  Misses give NaN and '' when not strict."""
        n = len(lines)
        cols = {
            "key": np.asarray(lines["carrier"] if key is None else key, dtype=object),
            "parameter": np.asarray(parameter, dtype=object) if isinstance(parameter, pd.Series)
            else np.full(n, parameter, dtype=object),
            "regions": np.asarray(lines["regions"], dtype=object),
            "on": np.asarray(lines["on"], dtype=object),
        }
        enterprise = np.asarray(lines["enterprise"], dtype=object)
        if self._specific:
            pairs, pair_of = pd.factorize(pd.Series(list(zip(cols["key"], cols["parameter"], strict=True)),
                                                    dtype=object))
            mine = np.array([(kind, k, p) in self._specific or (kind, k, alternative) in self._specific
                             for k, p in pair_of], dtype=bool)
            specific = mine[pairs] if n else np.zeros(0, dtype=bool)
        else:
            specific = np.zeros(n, dtype=bool)
        cols["who"] = np.where(specific, enterprise, None)
        if dimension is not None:
            cols["dimension"] = np.asarray(dimension, dtype=object)
        # One group per distinct (key, parameter, regions, on, who[, dimension]), numbered in order of first
        # appearance: lookups (and what they record) run in the order of the lines.
        group = np.zeros(n, dtype=np.int64)
        for v in cols.values():
            c = pd.factorize(v)[0].astype(np.int64) + 1  # None / NaN: 0
            group = pd.factorize(group * (int(c.max(initial=0)) + 1) + c)[0].astype(np.int64)
        first = np.unique(group, return_index=True)[1]
        values = np.full(len(first), np.nan)
        ids = np.full(len(first), "", dtype=object)
        flags: list[tuple[str, ...]] = []
        fell_back: list[tuple[int, set[str]]] = []
        for g, i in enumerate(first):
            c = {k: v[i] for k, v in cols.items()}
            res = self._one(kind, c["key"], c["parameter"], c["regions"], c["on"], c["who"], alternative)
            if res is None:
                flags.append(("factor.missing",))
                continue
            if dimension is not None and res.row.denominator and res.row.denominator != c["dimension"]:
                row = lines.iloc[i]
                raise InputError(f"{row['carrier']} of {row['enterprise']} from {row['on']} is measured in "
                                 f"{c['dimension']} but factor {res.row.id} is per {res.row.denominator} "
                                 f"({res.row.unit}): record the quantity in a unit of {res.row.denominator}, or add "
                                 f"a factor per {c['dimension']}")
            values[g], ids[g] = res.row.per_base, res.row.id
            flags.append(tuple(code for code, on in (("factor.prior_year", res.prior_year),
                                                     ("factor.level_fallback", res.level_fallback)) if on))
            fb = self.fallbacks.get((kind, c["key"], c["parameter"], c["regions"], c["on"], c["who"]))
            if fb is not None:
                fell_back.append((g, fb[1]))
        if fell_back:
            targets = dict(fell_back)
            sel = np.isin(group, list(targets))
            order = np.argsort(group[sel], kind="stable")
            gs, es = group[sel][order], enterprise[sel][order]
            cuts = np.flatnonzero(np.diff(gs)) + 1
            if len(gs):  # every fallen-back group has lines
                for g, names in zip(gs[np.r_[0, cuts]].tolist(), np.split(es, cuts), strict=True):
                    targets[g].update(names.tolist())
        flagged = np.array([bool(f) for f in flags], dtype=bool)
        if flagged.any():
            mask = flagged[group]
            for idx, g in zip(lines.index[mask], group[mask].tolist(), strict=True):
                self.line_codes.setdefault(idx, set()).update(flags[g])
        return values[group], ids[group]

    def _one(self, kind: str, key: str, parameter: str, regions: tuple[str, ...], on: date, who: str | None,
             alternative: str | None) -> Resolution | None:
        try:
            try:
                res = self.registry.resolve(kind, key, parameter, regions, on, self.policy, who)
            except FactorNotFoundError:
                if alternative is None:
                    raise
                res = self.registry.resolve(kind, key, alternative, regions, on, self.policy, who)
        except FactorNotFoundError as exc:
            if self.strict:
                raise
            self.missing.append((exc, key))
            return None
        self.used[res.row.id] = res.row
        if res.region_fallback or res.prior_year or res.level_fallback:
            self.fallbacks.setdefault((kind, key, parameter, regions, on, who), (res, set()))
        return res

    def fallback_frame(self) -> pd.DataFrame:
        """One row per fall-back: what was wanted, what was used, why, and for which enterprises."""
        cols = ["code", "kind", "key", "parameter", "wanted_region", "on", "target", "factor_id", "used_region",
                "reason", "enterprises"]
        rows = []
        for res, who in self.fallbacks.values():
            code = ("factor.prior_year" if res.prior_year else
                    "factor.level_fallback" if res.level_fallback else "factor.region_fallback")
            rows.append([code, res.row.kind, res.row.key, res.row.parameter, res.regions[0], res.on, res.target,
                         res.row.id, res.row.region, res.reason, ", ".join(sorted(who))])
        # ordered by kind, key, parameter and date, stably (as a frame's multi-column sort), before the frame is made
        rows.sort(key=lambda r: (r[1], r[2], r[3], r[5]))
        return pd.DataFrame(rows, columns=cols)
