"""Synthetic parks and their readings, reproducible from a seed, for the demo and the benchmarks.

Everything here is a pure function of its arguments: the same park and seed give the same numbers, whatever
the time range is cut into.  Readings are made in whole park-local days (a day block); the random numbers of
each day come from their own `numpy.random.Generator` seeded by (seed, day, interval), so a year generated
month by month equals the year generated at once, and no year of 2 000 meters ever sits in memory.

The load shape is real: the 15-minute load of a steel plant (`park/data/steel_industry_2018.csv.gz`, see the
README there), re-timed to the target dates by weekday and time of day, warped to each industry's shift
pattern, scaled to log-normal enterprise sizes and overlaid with Chinese public holidays.  Values are in the
carrier's canonical unit (kWh, m3, t), rounded to the 0.01 resolution of a meter register.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from park.model import Device, Enterprise, Meter, Park, Workshop
from park.units import Carrier

STEEL_CSV = Path(__file__).parent / "data" / "steel_industry_2018.csv.gz"
PROFILE_TZ = "Asia/Shanghai"
SLOT_S = 900  # the profile's interval
SLOTS_PER_DAY = 86400 // SLOT_S
_NS = 1_000_000_000
_DAY_NS = 86400 * _NS
_SLOT_NS = SLOT_S * _NS
_SEED_OFFSET = 1_000_000  # keeps day numbers before 1970 non-negative for SeedSequence
_STREAM_READINGS, _STREAM_WEATHER, _STREAM_DEVICES = 1, 2, 3
TimeLike = datetime | str | pd.Timestamp
PV_SITE = (31.3, 120.6)  # latitude, longitude (deg) of the PV model: Suzhou, Jiangsu; a park has no coordinates

# ---- the steel profile ------------------------------------------------------------------------------


def load_steel_profile(path: str | Path = STEEL_CSV) -> pd.Series:
    """kWh per 15-minute interval of the shipped steel plant, indexed by interval START (Asia/Shanghai).

    The CSV stamps each row with its interval END in plant-local time, and every midnight row carries the
    date of the day that just ended (`01/01/2018 00:00` follows `01/01/2018 23:45`).  The documented repair
    (park/data/README.md): a 00:00 timestamp that goes backwards by 24 h - 15 min is moved forward one day.
    Afterwards timestamps must strictly increase in steps of exactly 15 minutes; anything else raises
    ValueError naming the first bad line, since a silently shifted profile would skew every synthetic series.

    The plant's local time (Korea, UTC+9, no DST) is taken as park-local time (China, UTC+8, no DST): the
    shape is what matters (shifts start at 08:00 local in both), so the wall-clock times are kept as they are
    and localised to Asia/Shanghai rather than shifted by an hour.
    """
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        raw = pd.read_csv(fh, usecols=["date", "Usage_kWh"])
    try:
        end = pd.to_datetime(raw["date"], format="%d/%m/%Y %H:%M")
    except ValueError as exc:
        raise ValueError(f"{path}: a date is not dd/mm/yyyy HH:MM: {exc}") from None
    ns = end.to_numpy(dtype="datetime64[ns]").astype("int64")
    step = np.diff(ns)
    midnight = (ns[1:] % _DAY_NS) == 0
    backwards = midnight & (step == -(_DAY_NS - _SLOT_NS))
    ns[1:][backwards] += _DAY_NS
    step = np.diff(ns)
    bad = np.flatnonzero(step != _SLOT_NS)
    if len(bad):
        i = int(bad[0]) + 1
        raise ValueError(
            f"{path}: line {i + 2} ({raw['date'].iloc[i]!r}) does not follow line {i + 1} "
            f"({raw['date'].iloc[i - 1]!r}) by 15 minutes even after the midnight repair; "
            f"{len(bad)} such step(s) in the file")
    if raw["Usage_kWh"].isna().any() or (raw["Usage_kWh"] < 0).any():
        raise ValueError(f"{path}: Usage_kWh has missing or negative values")
    start = pd.DatetimeIndex(ns - _SLOT_NS, name="start").as_unit("ns").tz_localize(PROFILE_TZ)
    return pd.Series(raw["Usage_kWh"].to_numpy(dtype="float64"), index=start, name="kWh")


@dataclass(frozen=True)
class _Profile:
    """The steel profile prepared for re-timing: values normalised to 1 in production hours."""

    values: np.ndarray  # (n_days * 96,), 1.0 = mean of normal weekdays 08:00-21:00
    n_days: int
    first_weekday: int  # Monday = 0 of source day 0
    fix: np.ndarray  # (n_days,) source day to read instead (abnormal days -> nearest normal same weekday)
    weekday_shape: np.ndarray  # (7, 96) mean shape of normal days per weekday


@lru_cache(maxsize=1)
def _profile() -> _Profile:
    s = load_steel_profile()
    n_days = len(s) // SLOTS_PER_DAY
    if len(s) % SLOTS_PER_DAY or s.index[0] != s.index[0].normalize():
        raise ValueError("the steel profile must cover whole days from midnight")
    days = s.to_numpy().reshape(n_days, SLOTS_PER_DAY)
    first_wd = s.index[0].weekday()
    wd = (np.arange(n_days) + first_wd) % 7
    totals = days.sum(axis=1)
    # Days far below their weekday's median are the plant's own holidays (Korean ones): never sample them.
    median = np.array([np.median(totals[wd == w]) for w in range(7)])
    normal = totals >= 0.6 * median[wd]
    fix = np.arange(n_days)
    for d in np.flatnonzero(~normal):
        for k in (1, -1, 2, -2, 3, -3, 4, -4):
            c = d + 7 * k
            if 0 <= c < n_days and normal[c]:
                fix[d] = c
                break
    prod = days[normal & (wd < 5)][:, 32:84]
    values = s.to_numpy() / prod.mean()
    norm_days = values.reshape(n_days, SLOTS_PER_DAY)
    shape = np.stack([norm_days[normal & (wd == w)].mean(axis=0) for w in range(7)])
    return _Profile(values, n_days, first_wd, fix, shape)


# ---- industries and shift patterns --------------------------------------------------------------------


@dataclass(frozen=True)
class ShiftPattern:
    """When an industry produces, as a time warp of the steel plant's day: each segment (target start h,
    target end h, source hour ranges) fills the target hours by stretching the plant's load in the source
    hours over them.  The plant runs a day shift, 08:00-12:00 and 13:00-17:00, lighter until 21:00; its
    night (21:00-08:00) is the base load.  `weekdays` maps a target weekday (Mon=0) to the plant weekday
    it copies, so a six-day or a 24/7 week keeps the plant's weekday texture."""

    name: str
    segments: tuple[tuple[float, float, tuple[tuple[float, float], ...]], ...]
    weekdays: tuple[int, ...]
    holiday_factor: float  # load on a public holiday (non-continuous plants copy a Sunday as well)
    spring_factor: float  # load in the Spring Festival week
    ramp_factor: float  # load in the days after the Spring Festival while workers return


_NIGHT = ((21.0, 24.0), (0.0, 8.0))
_DAY = ((8.0, 12.0), (13.0, 17.0))  # the plant's day shift without its lunch break
PATTERNS = {
    p.name: p
    for p in [
        # 08:00-17:00 with a lunch break, five and a half days (the plant's own Saturday is half a day)
        ShiftPattern("one_shift", ((0, 8, ((0, 8),)), (8, 17, ((8, 17),)), (17, 24, ((21, 24),))),
                     (0, 1, 2, 3, 4, 5, 6), 0.9, 0.8, 0.6),
        # 06:00-14:00 and 14:00-22:00, six days a week
        ShiftPattern("two_shift", ((0, 6, ((2, 8),)), (6, 11.5, ((8, 12),)), (11.5, 12.5, ((12, 13),)),
                                   (12.5, 22, ((13, 17), (8, 12), (13, 17))), (22, 24, ((21, 23),))),
                     (0, 1, 2, 3, 4, 4, 6), 0.9, 0.8, 0.6),
        # process plant: three shifts, every day a working day
        ShiftPattern("continuous", ((0, 8, _DAY), (8, 16, _DAY), (16, 24, _DAY)), (0, 1, 2, 3, 4, 2, 3), 0.9, 0.7, 0.9),
    ]
}
_PATTERN_NAMES = list(PATTERNS)


@dataclass(frozen=True)
class Industry:
    key: str
    zh: str
    en: str
    pattern: str
    annual_mwh: float  # median yearly electricity of an enterprise
    extras: tuple[str, ...]  # non-electric carriers in order of likelihood
    pv_share: float  # share of enterprises with rooftop PV
    gas_m3_per_kwh: float = 0.05
    steam_t_per_kwh: float = 0.002
    water_m3_per_kwh: float = 0.004
    workshops: tuple[tuple[str, str], ...] = ()


INDUSTRIES: tuple[Industry, ...] = (
    Industry("machinery", "机械", "Machinery", "one_shift", 1500, ("water", "natural_gas"), 0.4,
             workshops=(("机加工车间", "Machining shop"), ("装配车间", "Assembly shop"),
                        ("热处理车间", "Heat treatment"),
                        ("喷涂车间", "Paint shop"))),
    Industry("steel_structures", "钢构", "Steel Structures", "two_shift", 3000, ("natural_gas", "water"), 0.5,
             gas_m3_per_kwh=0.08,
             workshops=(("下料车间", "Cutting shop"), ("焊接车间", "Welding shop"), ("涂装车间", "Coating shop"),
                        ("成品库", "Finished goods store"))),
    Industry("electronics", "电子", "Electronics", "continuous", 6000, ("water", "natural_gas"), 0.3,
             workshops=(("SMT车间", "SMT line"), ("洁净车间", "Clean room"), ("测试车间", "Test floor"),
                        ("动力站", "Utility plant"))),
    Industry("chemicals", "化工", "Chemicals", "continuous", 12000, ("steam", "natural_gas", "water", "steam"), 0.1,
             steam_t_per_kwh=0.004, water_m3_per_kwh=0.01,
             workshops=(("合成车间", "Synthesis unit"), ("精馏车间", "Distillation unit"), ("罐区", "Tank farm"),
                        ("公用工程", "Utilities"))),
    Industry("textiles", "纺织印染", "Textiles & Dyeing", "continuous", 5000, ("steam", "water", "natural_gas"), 0.3,
             steam_t_per_kwh=0.005, water_m3_per_kwh=0.02,
             workshops=(("纺纱车间", "Spinning"), ("织造车间", "Weaving"), ("印染车间", "Dyeing"),
                        ("定型车间", "Finishing"))),
    Industry("food", "食品", "Food", "two_shift", 2500, ("steam", "water", "natural_gas"), 0.4,
             steam_t_per_kwh=0.003, water_m3_per_kwh=0.015,
             workshops=(("前处理车间", "Preparation"), ("加工车间", "Processing"), ("包装车间", "Packing"),
                        ("冷库", "Cold store"))),
    Industry("plastics", "塑胶", "Plastics", "two_shift", 3500, ("water",), 0.5,
             workshops=(("注塑车间", "Injection moulding"), ("挤出车间", "Extrusion"), ("模具车间", "Tool room"),
                        ("仓库", "Warehouse"))),
    Industry("auto_parts", "汽车零部件", "Auto Parts", "two_shift", 4000, ("natural_gas", "water"), 0.5,
             workshops=(("冲压车间", "Stamping"), ("焊装车间", "Body welding"), ("涂装车间", "Paint shop"),
                        ("总装车间", "Final assembly"))),
    Industry("pharma", "药业", "Pharmaceuticals", "continuous", 5000, ("steam", "water", "natural_gas"), 0.2,
             steam_t_per_kwh=0.003, water_m3_per_kwh=0.012,
             workshops=(("原料药车间", "API plant"), ("制剂车间", "Formulation"), ("质检中心", "QC lab"),
                        ("纯化水站", "Purified water"))),
    Industry("building_materials", "建材", "Building Materials", "continuous", 8000, ("natural_gas", "water"), 0.2,
             gas_m3_per_kwh=0.15,
             workshops=(("窑炉车间", "Kiln"), ("成型车间", "Forming"), ("原料车间", "Raw materials"),
                        ("包装车间", "Packing"))),
    Industry("logistics", "物流", "Logistics", "one_shift", 600, ("water",), 0.7,
             workshops=(("分拣中心", "Sorting centre"), ("冷链库", "Cold chain store"), ("办公楼", "Office"))),
    Industry("printing", "包装印刷", "Packaging & Printing", "one_shift", 1200, ("natural_gas", "water"), 0.4,
             workshops=(("印刷车间", "Press hall"), ("模切车间", "Die cutting"), ("成品库", "Finished goods store"))),
)
INDUSTRY_BY_KEY = {i.key: i for i in INDUSTRIES}
# Industry names used elsewhere (the demo park file) -> the industry whose load shape they follow.
INDUSTRY_ALIASES = {"textile_dyeing": "textiles", "electronics_assembly": "electronics", "food_processing": "food",
                    "paper": "chemicals", "cold_chain_logistics": "electronics", "steel": "steel_structures"}
_DEFAULT_INDUSTRY = INDUSTRY_BY_KEY["machinery"]


def industry_of(key: str) -> Industry:
    """The industry whose shift pattern and carriers a park's industry name follows (machinery if unknown)."""
    return INDUSTRY_BY_KEY.get(INDUSTRY_ALIASES.get(key, key), _DEFAULT_INDUSTRY)

_NAME_PREFIXES = (
    ("江南", "Jiangnan"), ("华东", "Huadong"), ("苏锡", "Suxi"), ("恒信", "Hengxin"), ("金达", "Jinda"),
    ("新宇", "Xinyu"), ("博远", "Boyuan"), ("瑞丰", "Ruifeng"), ("长江", "Changjiang"), ("中科", "Zhongke"),
    ("德润", "Derun"), ("宏泰", "Hongtai"), ("永鑫", "Yongxin"), ("汇通", "Huitong"), ("天成", "Tiancheng"),
    ("佳禾", "Jiahe"), ("振华", "Zhenhua"), ("明辉", "Minghui"), ("东升", "Dongsheng"), ("海川", "Haichuan"),
    ("鼎盛", "Dingsheng"), ("华润", "Huarun"), ("锦程", "Jincheng"), ("远航", "Yuanhang"),
)
_MACHINES = (("数控机床", "CNC machine", 12.0), ("空压机", "Air compressor", 40.0),
             ("注塑机", "Injection moulder", 25.0),
             ("冲床", "Punch press", 15.0), ("焊机", "Welder", 20.0), ("循环水泵", "Circulating pump", 10.0))
_CARRIER_NAMES = {"electricity": ("电表", "electricity"), "natural_gas": ("天然气表", "natural gas"),
                  "steam": ("蒸汽表", "steam"), "water": ("水表", "water"), "pv": ("光伏电表", "PV")}

# ---- Chinese public holidays ----------------------------------------------------------------------------

# Official Spring Festival (春节) holiday per year (first, last day).  2027-2030 are estimates (Lunar New Year's
# Eve to the 6th day) until the State Council publishes them.  Make-up working weekends (调休) are not modelled.
SPRING_FESTIVAL = {
    2015: ("2015-02-18", "2015-02-24"), 2016: ("2016-02-07", "2016-02-13"), 2017: ("2017-01-27", "2017-02-02"),
    2018: ("2018-02-15", "2018-02-21"), 2019: ("2019-02-04", "2019-02-10"), 2020: ("2020-01-24", "2020-02-02"),
    2021: ("2021-02-11", "2021-02-17"), 2022: ("2022-01-31", "2022-02-06"), 2023: ("2023-01-21", "2023-01-27"),
    2024: ("2024-02-10", "2024-02-17"), 2025: ("2025-01-28", "2025-02-04"), 2026: ("2026-02-15", "2026-02-23"),
    2027: ("2027-02-05", "2027-02-11"), 2028: ("2028-01-25", "2028-01-31"), 2029: ("2029-02-12", "2029-02-18"),
    2030: ("2030-02-02", "2030-02-08"),
}
_NATIONAL_DAY = {2023: ("2023-09-29", "2023-10-06"), 2025: ("2025-10-01", "2025-10-08")}  # else Oct 1-7
SPRING_RAMP_DAYS = 7  # after the official holiday, plants restart slowly while migrant workers return
HOLIDAY, SPRING, RAMP = 1, 2, 3


def _span(first: str, last: str) -> list[date]:
    a, b = date.fromisoformat(first), date.fromisoformat(last)
    return [a + timedelta(days=i) for i in range((b - a).days + 1)]


def public_holidays(year: int) -> dict[date, str]:
    """Main public holidays of a year: New Year's Day, Spring Festival (table above; none outside it),
    Labour Day (May 1-5) and National Day (Oct 1-7); value 'spring_festival', 'ramp' (the week after it,
    not a holiday but low load) or 'holiday'."""
    days: dict[date, str] = {date(year, 1, 1): "holiday"}
    days.update({d: "holiday" for d in _span(f"{year}-05-01", f"{year}-05-05")})
    days.update({d: "holiday" for d in _span(*_NATIONAL_DAY.get(year, (f"{year}-10-01", f"{year}-10-07")))})
    if year in SPRING_FESTIVAL:
        sf = _span(*SPRING_FESTIVAL[year])
        days.update({sf[-1] + timedelta(days=i + 1): "ramp" for i in range(SPRING_RAMP_DAYS)})
        days.update({d: "spring_festival" for d in sf})
    return days


def _holiday_kinds(day_numbers: np.ndarray) -> np.ndarray:
    """HOLIDAY / SPRING / RAMP / 0 per local day number (days since 1970-01-01)."""
    epoch = date(1970, 1, 1)
    years = {(epoch + timedelta(days=int(d))).year for d in (day_numbers.min(), day_numbers.max())}
    kinds = {"holiday": HOLIDAY, "spring_festival": SPRING, "ramp": RAMP}
    table: dict[int, int] = {}
    for y in range(min(years) - 1, max(years) + 1):  # the ramp of a late-January festival stays in its year
        for d, k in public_holidays(y).items():
            table[(d - epoch).days] = kinds[k]
    return np.array([table.get(int(d), 0) for d in day_numbers], dtype=np.int8)


# ---- the park --------------------------------------------------------------------------------------------


def _credit_code(rng: np.random.Generator, region: str = "320500") -> str:
    """A well-formed 统一社会信用代码 (GB 32100-2015 check character; the organisation code is random)."""
    chars = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    weights = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
    body = "91" + region + "".join(chars[i] for i in rng.integers(0, len(chars), 9))
    check = (31 - sum(chars.index(c) * w for c, w in zip(body, weights, strict=True)) % 31) % 31
    return body + chars[check]


def _split(n: int, parts: int) -> list[int]:
    """n items spread over parts as evenly as possible, the first parts taking the remainder."""
    return [n // parts + (1 if k < n % parts else 0) for k in range(parts)]


def synth_park(n_enterprises: int, meters_per_enterprise: int, seed: int, devices_per_enterprise: int = 0,
               park_id: str = "bench") -> Park:
    """A park of `n_enterprises` enterprises with exactly `meters_per_enterprise` meters each.

    Industries are drawn at random (their shift pattern and carriers follow); each enterprise gets 1-4
    workshops.  Electricity meters are workshop sub-meters that partition the enterprise's load (no
    incoming meter, so sums never count a kWh twice); gas, steam, water and rooftop PV meters are
    enterprise-level, and at most 40 % of an enterprise's meters are not electricity.  Ids: E0001,
    E0001-W1, E0001-M001, E0001-D01.  Same arguments, same park.
    """
    if n_enterprises < 1 or meters_per_enterprise < 0 or devices_per_enterprise < 0:
        raise ValueError("need at least one enterprise and non-negative meter and device counts")
    rng = np.random.default_rng([seed, 0x5EED])
    width = max(4, len(str(n_enterprises)))
    enterprises: list[Enterprise] = []
    workshops: list[Workshop] = []
    meters: list[Meter] = []
    devices: list[Device] = []
    used_names: set[str] = set()
    for i in range(1, n_enterprises + 1):
        eid = f"E{i:0{width}d}"
        ind = INDUSTRIES[int(rng.integers(len(INDUSTRIES)))]
        zh, en = _NAME_PREFIXES[int(rng.integers(len(_NAME_PREFIXES)))]
        name, name_en, n = f"{zh}{ind.zh}有限公司", f"{en} {ind.en} Co., Ltd.", 1
        while name in used_names:
            n += 1
            name, name_en = f"{zh}{ind.zh}第{n}有限公司", f"{en} {ind.en} No. {n} Co., Ltd."
        used_names.add(name)
        enterprises.append(Enterprise(eid, name, name_en, ind.key, _credit_code(rng)))
        pool = ind.workshops or _DEFAULT_INDUSTRY.workshops
        n_ws = int(rng.integers(1, min(4, len(pool)) + 1))
        ws = [Workshop(f"{eid}-W{k + 1}", eid, *pool[k]) for k in range(n_ws)]
        workshops += ws
        m, first = meters_per_enterprise, len(meters)
        max_extras = m - int(np.ceil(0.6 * m))
        extras = list(ind.extras) + (["pv"] if rng.random() < ind.pv_share else [])
        if "pv" in extras and len(extras) > max_extras:  # keep the roof PV if there is room for one extra
            extras = ["pv", *[e for e in extras if e != "pv"]]
        extras = extras[:max_extras]
        # In park-file order (enterprise-level meters first, then each workshop's), so that a park written
        # with park.parkfile.dump_park reads back equal.
        counts: dict[str, int] = {}
        for carrier in extras:
            counts[carrier] = counts.get(carrier, 0) + 1
            czh, cen = _CARRIER_NAMES[carrier]
            meters.append(Meter(f"{eid}-M{len(meters) - first + 1:03d}", Carrier(carrier), eid, None,
                                f"{czh}{counts[carrier]} {cen} {counts[carrier]}"))
        for w, n_el in zip(ws, _split(m - len(extras), len(ws)), strict=True):
            for k in range(1, n_el + 1):
                meters.append(Meter(f"{eid}-M{len(meters) - first + 1:03d}", Carrier.ELECTRICITY, eid, w.id,
                                    f"{w.name}电表{k} {w.name_en} electricity {k}"))
        first_dev = len(devices)
        for w, n_dev in zip(ws, _split(devices_per_enterprise, len(ws)), strict=True):
            for _ in range(n_dev):
                mzh, men, run_a = _MACHINES[int(rng.integers(len(_MACHINES)))]
                k = len(devices) - first_dev + 1
                devices.append(Device(f"{eid}-D{k:02d}", eid, w.id, f"{mzh} {k} {men} {k}",
                                      run_current_a=float(round(run_a * rng.uniform(0.6, 1.5), 1))))
    names = {"bench": ("基准测试工业园区", "Benchmark Industrial Park")}
    name, name_en = names.get(park_id, (f"合成工业园区 {park_id}", f"Synthetic Industrial Park {park_id}"))
    return Park(park_id, name, name_en, "Asia/Shanghai", "Jiangsu", "east_china", tuple(enterprises),
                tuple(workshops), tuple(meters), tuple(devices))


# ---- readings ----------------------------------------------------------------------------------------------


def _crc(text: str) -> int:
    return zlib.crc32(text.encode("utf-8"))


def _warp(pattern: ShiftPattern) -> np.ndarray:
    """Source slot (0..95) read for each target slot of the day (see ShiftPattern)."""
    out = np.full(SLOTS_PER_DAY, -1, dtype=np.int64)
    for t0, t1, sources in pattern.segments:
        target = np.arange(round(t0 * 4), round(t1 * 4))
        src = np.concatenate([np.arange(round(a * 4), round(b * 4)) for a, b in sources])
        out[target] = src[(np.arange(len(target)) * len(src)) // len(target)]
    if (out < 0).any():
        raise ValueError(f"shift pattern {pattern.name} leaves hours of the day uncovered")
    return out


@lru_cache(maxsize=1)
def _pattern_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per pattern: warp (P, 96), weekday map (P, 7) and mean normalised load over a week (P,)."""
    prof = _profile()
    warps = np.stack([_warp(p) for p in PATTERNS.values()])
    wdmap = np.array([p.weekdays for p in PATTERNS.values()], dtype=np.int64)
    means = np.array([prof.weekday_shape[wdmap[i]][:, warps[i]].mean() for i in range(len(PATTERNS))])
    return warps, wdmap, means


@dataclass
class _Columns:
    """Per-column (meter or device) parameters of one interval group, all arrays of the group's width."""

    ids: list[str]
    codes: np.ndarray  # index into the park-wide category list
    carrier: np.ndarray  # carrier names (object)
    pattern: np.ndarray  # index into PATTERNS
    week: np.ndarray  # source week offset
    phase: np.ndarray  # slot offset
    base: np.ndarray  # mean value per interval at activity 1
    floor: np.ndarray  # share of the base that runs whatever production does
    cap: np.ndarray  # activity cap
    season: np.ndarray  # winter (+) / summer (-) amplitude
    sigma: np.ndarray  # multiplicative noise
    kwp: np.ndarray  # PV peak power (0 for others)
    extra: np.ndarray  # devices: running current multiple


def _empty_columns(ids: list[str], categories: dict[str, int], carriers: list[str]) -> _Columns:
    n = len(ids)
    return _Columns(ids, np.array([categories[i] for i in ids], dtype=np.int32), np.array(carriers, dtype=object),
                    *(np.zeros(n, np.int64) for _ in range(3)), *(np.zeros(n) for _ in range(7)))


def _enterprise_scale(e: Enterprise, ind: Industry, seed: int) -> float:
    """Mean kWh per 15 minutes of the enterprise: log-normal around its industry's median."""
    rng = np.random.default_rng([seed, 1, _crc(e.id)])
    return ind.annual_mwh * 1000.0 / 35040.0 * float(rng.lognormal(0.0, 0.9))


def _meter_columns(park: Park, meters: list[Meter], seed: int, categories: dict[str, int]) -> _Columns:
    inds = {e.id: industry_of(e.industry) for e in park.enterprises}
    scale = {e.id: _enterprise_scale(e, inds[e.id], seed) for e in park.enterprises}
    _, _, pmean = _pattern_tables()
    # Electricity meters of an enterprise split its load by gamma weights (a Dirichlet share).
    weights = {m.id: float(np.random.default_rng([seed, 2, _crc(m.id)]).gamma(2.0)) for m in park.meters
               if m.carrier == Carrier.ELECTRICITY}
    totals: dict[str, float] = {}
    for m in park.meters:
        if m.id in weights:
            totals[m.enterprise] = totals.get(m.enterprise, 0.0) + weights[m.id]
    cols = _empty_columns([m.id for m in meters], categories, [m.carrier.value for m in meters])
    for j, m in enumerate(meters):
        ind = inds.get(m.enterprise, _DEFAULT_INDUSTRY)
        p = _PATTERN_NAMES.index(ind.pattern)
        rng = np.random.default_rng([seed, 3, _crc(m.id)])
        ent = scale.get(m.enterprise, ind.annual_mwh * 1000.0 / 35040.0) * m.interval_s / SLOT_S
        cols.pattern[j], cols.week[j], cols.phase[j] = p, rng.integers(-3, 4), rng.integers(-3, 4)
        cols.cap[j], cols.sigma[j] = np.inf, rng.uniform(0.03, 0.08)
        c = m.carrier
        if c == Carrier.ELECTRICITY:
            share = weights[m.id] / totals[m.enterprise]
            cols.base[j] = ent * share / pmean[p]
            cols.season[j] = 0.05
        elif c == Carrier.PV:
            cols.kwp[j] = float(np.clip(ent * 4 * rng.uniform(0.15, 0.4), 50.0, 5000.0))
            cols.sigma[j] = 0.02
        else:
            ratio = {Carrier.NATURAL_GAS: ind.gas_m3_per_kwh, Carrier.STEAM: ind.steam_t_per_kwh,
                     Carrier.WATER: ind.water_m3_per_kwh}.get(c, 0.01)
            cols.base[j] = ent * ratio * rng.lognormal(0.0, 0.3)
            cols.floor[j] = {Carrier.NATURAL_GAS: 0.1, Carrier.STEAM: 0.15, Carrier.WATER: 0.3}.get(c, 0.2)
            cols.cap[j] = 1.3
            cols.season[j] = {Carrier.NATURAL_GAS: 0.3, Carrier.STEAM: 0.2, Carrier.WATER: -0.15}.get(c, 0.0)
            cols.sigma[j] = rng.uniform(0.05, 0.12)
    return cols


def _device_columns(park: Park, devices: list[Device], seed: int, categories: dict[str, int]) -> _Columns:
    inds = {e.id: industry_of(e.industry) for e in park.enterprises}
    cols = _empty_columns([d.id for d in devices], categories, ["current"] * len(devices))
    for j, d in enumerate(devices):
        rng = np.random.default_rng([seed, 4, _crc(d.id)])
        cols.pattern[j] = _PATTERN_NAMES.index(inds.get(d.enterprise, _DEFAULT_INDUSTRY).pattern)
        cols.week[j], cols.phase[j] = rng.integers(-3, 4), rng.integers(-3, 4)
        cols.base[j] = d.run_current_a  # running current ~ run threshold x extra
        cols.extra[j] = rng.uniform(1.2, 2.5)
        cols.floor[j] = d.idle_current_a
        cols.sigma[j] = rng.uniform(0.03, 0.1)
    return cols


def _parse_time(t: TimeLike, tz: str) -> pd.Timestamp:
    ts = pd.Timestamp(t)
    return (ts.tz_localize(tz) if ts.tzinfo is None else ts).tz_convert("UTC").as_unit("ns")


def _chunk_edges(start: pd.Timestamp, end: pd.Timestamp, chunk: str | pd.Timedelta, tz: str) -> list[pd.Timestamp]:
    """Chunk boundaries (UTC) from start to end: park-local calendar days, weeks, months or years, or a
    fixed span."""
    if isinstance(chunk, str) and chunk in ("day", "week", "month", "year"):
        freq = {"day": "D", "week": "W-MON", "month": "MS", "year": "YS"}[chunk]
        local0 = start.tz_convert(tz).floor("D").tz_localize(None)
        inner = pd.date_range(local0, end.tz_convert(tz).tz_localize(None), freq=freq)
        inner = inner.tz_localize(tz, nonexistent="shift_forward", ambiguous=False).tz_convert("UTC")
        inner = [t.as_unit("ns") for t in inner if start < t < end]
    else:
        step = pd.Timedelta(chunk)
        if step <= pd.Timedelta(0):
            raise ValueError(f"chunk {chunk!r} must be positive")
        inner = list(pd.date_range(start + step, end, freq=step, inclusive="left").as_unit("ns"))
    return [start, *inner, end]


class _Generator:
    """Values of one group of columns sharing an interval, for any time range, in whole-day blocks."""

    def __init__(self, cols: _Columns, interval_s: int, seed: int, tz: str, stream: int, gap_rate: float) -> None:
        self.cols, self.iv, self.seed, self.tz, self.stream = cols, interval_s, seed, tz, stream
        self.gap_rate = gap_rate
        self.prof = _profile()
        warps, self.wdmap, _ = _pattern_tables()
        n = len(cols.ids)
        # warp per column with its phase jitter: (96, n) source slot
        s = (np.arange(SLOTS_PER_DAY)[:, None] + cols.phase[None, :]) % SLOTS_PER_DAY
        self.warp = warps[cols.pattern[None, :], s]
        self.is_pv = np.flatnonzero(cols.carrier == "pv")
        self.not_pv = np.flatnonzero(cols.carrier != "pv")
        self.all_not_pv = len(self.not_pv) == n
        pat = list(PATTERNS.values())
        self.hol = np.array([[1.0, p.holiday_factor, p.spring_factor, p.ramp_factor] for p in pat])[cols.pattern]
        self.continuous = np.array([p.name == "continuous" for p in pat])[cols.pattern]

    def block(self, lo: pd.Timestamp, hi: pd.Timestamp) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """(t_ns (n_t,), values (n_t, n), keep mask or None) for the grid points in [lo, hi)."""
        tz, iv_ns = self.tz, self.iv * _NS
        d0 = lo.tz_convert(tz).tz_localize(None).floor("D")
        d1 = (hi - pd.Timedelta(1, "ns")).tz_convert(tz).tz_localize(None).floor("D")
        local_days = pd.date_range(d0, d1 + pd.Timedelta(days=1), freq="D")
        mid = local_days.tz_localize(tz, nonexistent="shift_forward", ambiguous=False).as_unit("ns").asi8
        day_no = (local_days[:-1].as_unit("ns").asi8 // _DAY_NS).astype(np.int64)
        first = -(-mid[:-1] // iv_ns) * iv_ns
        counts = np.maximum((mid[1:] - first + iv_ns - 1) // iv_ns, 0)
        t = np.concatenate([np.arange(f, e, iv_ns, dtype=np.int64) for f, e in zip(first, mid[1:], strict=True)])
        n, n_days = len(self.cols.ids), len(counts)
        z = np.empty((len(t), n))
        u = np.empty((len(t), n)) if self.gap_rate > 0 else None
        wz = np.empty(len(t))
        cloud = np.empty(n_days)
        row = 0
        for k in range(n_days):
            r1 = row + int(counts[k])
            key = int(day_no[k]) + _SEED_OFFSET
            rng = np.random.default_rng([self.seed, self.stream, self.iv, key])
            rng.standard_normal(out=z[row:r1])
            if u is not None:
                rng.random(out=u[row:r1])
            if len(self.is_pv):
                w = np.random.default_rng([self.seed, _STREAM_WEATHER, self.iv, key])
                cloud[k] = w.beta(3.0, 1.5)
                w.standard_normal(out=wz[row:r1])
            row = r1
        i0, i1 = np.searchsorted(t, lo.value), np.searchsorted(t, hi.value)
        t, z = t[i0:i1], z[i0:i1]
        wz = wz[i0:i1]
        keep = None if u is None else (u[i0:i1] >= self.gap_rate)
        day_row = np.repeat(np.arange(n_days), counts)[i0:i1]
        wall = pd.DatetimeIndex(t.view("M8[ns]")).tz_localize("UTC").tz_convert(tz).tz_localize(None)
        wall_ns = wall.as_unit("ns").asi8
        slot = (wall_ns % _DAY_NS) // _SLOT_NS
        values = self._values(t, day_row, slot, local_days[:-1], day_no, z, cloud[day_row], wz)
        return t, values, keep

    def _source_days(self, local_days: pd.DatetimeIndex, day_no: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Source day (n_days, n) each column copies, and its holiday factor (n_days, n)."""
        c, prof = self.cols, self.prof
        doy = np.minimum(local_days.day_of_year.to_numpy() - 1, prof.n_days - 1)[:, None]
        wd = ((day_no + 3) % 7)[:, None]  # 1970-01-01 was a Thursday; Monday = 0
        kind = _holiday_kinds(day_no)[:, None]
        src_wd = self.wdmap[c.pattern[None, :], wd]
        off = (kind == HOLIDAY) | (kind == SPRING)
        src_wd = np.where(off & ~self.continuous[None, :], 6, src_wd)  # a holiday runs like a Sunday
        r = (doy - (src_wd - prof.first_weekday)) % 7
        d = np.where(r <= 3, doy - r, doy + 7 - r) + 7 * c.week[None, :]
        d = np.where(d < 0, d + 7 * ((-d + 6) // 7), d)
        last = prof.n_days - 1
        d = np.where(d > last, d - 7 * ((d - last + 6) // 7), d)
        factor = self.hol[np.arange(len(c.ids))[None, :], kind]
        return prof.fix[d], factor

    def _values(self, t: np.ndarray, day_row: np.ndarray, slot: np.ndarray, local_days: pd.DatetimeIndex,
                day_no: np.ndarray, z: np.ndarray, cloud: np.ndarray, wz: np.ndarray) -> np.ndarray:
        c = self.cols
        src_day, hfac = self._source_days(local_days, day_no)
        idx = src_day[day_row] * SLOTS_PER_DAY
        idx += self.warp[slot]
        act = self.prof.values[idx]  # (n_t, n) activity, 1 = production
        if self.stream == _STREAM_DEVICES:
            return self._currents(act, z)
        doy = ((t // _DAY_NS) - 14) % 365.25  # winter peak mid-January
        season = np.cos(2 * np.pi * doy / 365.25)
        scale = c.base[None, :] * (1.0 + c.season[None, :] * season[:, None])
        scale *= hfac[day_row]
        if np.isfinite(c.cap).any():
            np.minimum(act, c.cap[None, :], out=act)
            act *= 1.0 - c.floor[None, :]
            act += c.floor[None, :]
        act *= scale
        z *= c.sigma[None, :]
        z += 1.0
        np.maximum(z, 0.0, out=z)
        act *= z
        if len(self.is_pv):
            act[:, self.is_pv] = self._pv(t, cloud, wz, z[:, self.is_pv])
        np.round(act, 2, out=act)
        return act

    def _pv(self, t: np.ndarray, cloud: np.ndarray, wz: np.ndarray, noise: np.ndarray) -> np.ndarray:
        """kWh per interval: Haurwitz clear-sky irradiance at PV_SITE x daily cloudiness x 0.8 performance."""
        lat, lon = np.radians(PV_SITE[0]), PV_SITE[1]
        mid = t + self.iv * _NS // 2
        doy = (mid // _DAY_NS) % 365.25
        decl = np.radians(23.44) * np.sin(2 * np.pi * (doy - 80) / 365.25)
        solar_h = ((mid % _DAY_NS) / 3.6e12 + lon / 15.0) % 24.0
        cos_z = np.sin(lat) * np.sin(decl) + np.cos(lat) * np.cos(decl) * np.cos(np.radians(15.0 * (solar_h - 12.0)))
        ghi = np.where(cos_z > 0.01, 1098.0 * cos_z * np.exp(-0.057 / np.maximum(cos_z, 0.01)), 0.0)
        clear = np.clip(cloud + (1.0 - cloud) * 0.35 * wz, 0.05, 1.05)
        per_kwp = ghi / 1000.0 * clear * 0.8 * self.iv / 3600.0  # kWh per kWp in the interval
        return per_kwp[:, None] * self.cols.kwp[self.is_pv][None, :] * noise

    def _currents(self, act: np.ndarray, z: np.ndarray) -> np.ndarray:
        """Amperes: running (run threshold x extra), idle or off, chosen by activity with some randomness."""
        c = self.cols
        u = np.abs(z) / 3.0  # reuse the normals as a spread
        running = act > 0.5 + 0.3 * (u - 0.3)
        idle = ~running & (act > 0.12)
        cur = np.where(running, c.base[None, :] * c.extra[None, :], np.where(idle, c.floor * 2.0, c.floor * 0.2))
        cur = cur * (1.0 + c.sigma[None, :] * z)
        np.maximum(cur, 0.0, out=cur)
        return np.round(cur, 2)


def _frames(park: Park, groups: list[_Generator], start: TimeLike,
            end: TimeLike, chunk: str | pd.Timedelta, categories: list[str]) -> Iterator[pd.DataFrame]:
    tz = park.timezone
    lo, hi = _parse_time(start, tz), _parse_time(end, tz)
    if hi <= lo:
        raise ValueError(f"empty range: end {end} is not after start {start}")
    series_cat = pd.CategoricalDtype(categories)
    quality_cat = pd.CategoricalDtype(["measured"])
    edges = _chunk_edges(lo, hi, chunk, tz)
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        parts = []
        for g in groups:
            t, values, keep = g.block(a, b)
            n = values.shape[1]
            ts = np.repeat(t, n)
            codes = np.tile(g.cols.codes, len(t))
            vals = values.ravel()
            if keep is not None:
                k = keep.ravel()
                ts, codes, vals = ts[k], codes[k], vals[k]
            parts.append((ts, codes, vals))
        ts = np.concatenate([p[0] for p in parts])
        codes = np.concatenate([p[1] for p in parts])
        vals = np.concatenate([p[2] for p in parts])
        if len(parts) > 1:  # several intervals: merge to time order (stable keeps the column order)
            order = np.argsort(ts, kind="stable")
            ts, codes, vals = ts[order], codes[order], vals[order]
        if not len(ts):
            continue
        frame = pd.DataFrame({
            "ts": pd.DatetimeIndex(ts.view("M8[ns]")).tz_localize("UTC").tz_convert(tz),
            "series": pd.Categorical.from_codes(codes, dtype=series_cat),
            "value": vals,
            "quality": pd.Categorical.from_codes(np.zeros(len(ts), np.int8), dtype=quality_cat),
        })
        yield frame


def _check_gap_rate(gap_rate: float) -> None:
    if not 0.0 <= gap_rate < 1.0:
        raise ValueError(f"gap_rate {gap_rate} must be in [0, 1)")


def synth_readings(park: Park, start: TimeLike, end: TimeLike,
                   seed: int, chunk: str | pd.Timedelta = "month", gap_rate: float = 0.0) -> Iterator[pd.DataFrame]:
    """Interval readings of every meter of `park` over [start, end), one frame per time chunk.

    Frames have columns ts (park-local, aware; the interval start), series and quality (categoricals, so a
    month of 2 000 meters stays cheap), value (canonical unit, 0.01 resolution) and quality 'measured'; rows
    are in time order, meters in park order within a timestamp.  Grid points are multiples of each meter's
    interval since the epoch.  `chunk`: 'day', 'week', 'month', 'year' (park-local calendar) or a Timedelta.
    Naive start/end are park-local.  `gap_rate` leaves out that share of rows at random (missed readings).
    The data depend only on (park, seed, gap_rate), never on the range or the chunking.
    """
    _check_gap_rate(gap_rate)
    categories = [m.id for m in park.meters]
    index = {m: i for i, m in enumerate(categories)}
    by_interval: dict[int, list[Meter]] = {}
    for m in park.meters:
        by_interval.setdefault(m.interval_s, []).append(m)
    groups = [_Generator(_meter_columns(park, ms, seed, index), iv, seed, park.timezone, _STREAM_READINGS, gap_rate)
              for iv, ms in sorted(by_interval.items())]
    if not groups:
        return iter(())
    return _frames(park, groups, start, end, chunk, categories)


def synth_currents(park: Park, start: TimeLike, end: TimeLike,
                   seed: int, chunk: str | pd.Timedelta = "day", gap_rate: float = 0.0) -> Iterator[pd.DataFrame]:
    """Bracelet currents (A, measurement 'current') of every device, like `synth_readings`: a machine runs
    (its run threshold x 1.2-2.5), idles or is off as its enterprise's production pattern says."""
    _check_gap_rate(gap_rate)
    categories = [d.id for d in park.devices]
    index = {d: i for i, d in enumerate(categories)}
    by_interval: dict[int, list[Device]] = {}
    for d in park.devices:
        by_interval.setdefault(d.interval_s, []).append(d)
    groups = [_Generator(_device_columns(park, ds, seed, index), iv, seed, park.timezone, _STREAM_DEVICES, gap_rate)
              for iv, ds in sorted(by_interval.items())]
    if not groups:
        return iter(())
    return _frames(park, groups, start, end, chunk, categories)
