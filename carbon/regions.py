"""Regions of the factor registry: provinces, the seven regional grids, national and global (IPCC defaults).

A factor lookup walks a region chain from the most specific to the widest: province -> regional grid ->
national -> global.  The province-to-grid map is data (`carbon/data/regions.csv`); a park's `grid_region`
overrides it (Inner Mongolia, for one, is split between two grids).
"""

from __future__ import annotations

import csv
from functools import lru_cache
from pathlib import Path

import pandas as pd

from carbon.errors import InputError
from park.model import Park

DATA = Path(__file__).parent / "data"
NATIONAL, GLOBAL = "national", "global"
GRID_REGIONS: dict[str, tuple[str, str]] = {
    "north_china": ("华北", "North China"),
    "northeast": ("东北", "Northeast"),
    "east_china": ("华东", "East China"),
    "central_china": ("华中", "Central China"),
    "northwest": ("西北", "Northwest"),
    "south": ("南方", "South"),
    "southwest": ("西南", "Southwest"),
}
_WIDE = {NATIONAL: ("全国", "national"), GLOBAL: ("IPCC 默认值", "global (IPCC default)")}
_SUFFIXES = ("壮族自治区", "回族自治区", "维吾尔自治区", "自治区", "省", "市", " province", " municipality")


@lru_cache(maxsize=1)
def provinces() -> dict[str, tuple[str, str]]:
    """province key -> (Chinese name, grid region), from carbon/data/regions.csv."""
    with open(DATA / "regions.csv", encoding="utf-8", newline="") as fh:
        return {r["province"]: (r["province_zh"], r["grid_region"]) for r in csv.DictReader(fh)}


@lru_cache(maxsize=1)
def _aliases() -> dict[str, str]:
    out = {k: k for k in [*GRID_REGIONS, NATIONAL, GLOBAL]}
    out.update({zh: k for k, (zh, _) in {**GRID_REGIONS, **_WIDE}.items()})
    out.update({"china": NATIONAL, "cn": NATIONAL, "ipcc": GLOBAL, "world": GLOBAL})
    for key, (zh, _) in provinces().items():
        out[key] = key
        out[zh] = key
    return out


def normalise_region(text: str) -> str:
    """The registry's key for a province, grid region, 'national' or 'global' written in English or Chinese.

    'Jiangsu', '江苏省', 'jiangsu' -> 'jiangsu'; '华东', 'East China' -> 'east_china'.  Unknown names raise
    InputError listing the known ones.
    """
    raw = str(text).strip()
    key = raw.lower()
    for suffix in _SUFFIXES:
        if key.endswith(suffix) and len(key) > len(suffix):
            key = key[: -len(suffix)]
            break
    key = key.strip().replace(" ", "_").replace("-", "_")
    try:
        return _aliases()[key]
    except KeyError:
        known = ", ".join([*GRID_REGIONS, *provinces(), NATIONAL, GLOBAL])
        raise InputError(f"unknown region {text!r}; known: {known}") from None


def region_chain(province: str | None, grid_region: str | None) -> tuple[str, ...]:
    """Regions to try, most specific first: province, grid region (the park's, else the province's), national,
    global."""
    chain: list[str] = []
    prov = normalise_region(province) if province else None
    if prov and prov in provinces():
        chain.append(prov)
    grid = normalise_region(grid_region) if grid_region else (provinces()[prov][1] if prov in provinces() else None)
    if grid and grid not in GRID_REGIONS:
        raise InputError(f"grid region {grid_region!r} is not one of the seven regional grids: "
                         f"{', '.join(GRID_REGIONS)}")
    if grid:
        chain.append(grid)
    return (*chain, NATIONAL, GLOBAL)


def enterprise_regions(park: Park) -> pd.DataFrame:
    """Per enterprise: province (the enterprise's, else the park's), grid_region and the factor region chain.

    An enterprise with its own province gets that province's grid; otherwise the park's grid_region (or its
    province's grid) applies.
    """
    rows = []
    for e in park.enterprises:
        if e.province:
            chain = region_chain(e.province, None)
            province = e.province
        else:
            chain = region_chain(park.province, park.grid_region)
            province = park.province
        grid = next((r for r in chain if r in GRID_REGIONS), None)
        rows.append({"enterprise": e.id, "province": province, "grid_region": grid, "regions": chain})
    return pd.DataFrame(rows, columns=["enterprise", "province", "grid_region", "regions"])

