"""What each regulator report holds, computed through the portal's one data path.

A report reads only through a `portal.scope.Scope` of a park-wide regulator (the scheduled reports' system user):
the same access layer and carbon pipeline as the pages, so a report's figures are the portal's.  Builders return
a `Report`: sections (tables whose columns carry Chinese and English names and units), the monitoring-rule
failures (findings `report.*`, by enterprise name) and notes.  Every row says whether its figures are complete
(`complete`, and `reasons` when not): an incomplete figure is flagged, never shown bare.

Kinds (docs/reports.md):
* monthly     park and per-enterprise energy by type (physical units and tce), Scope 1 and 2 (location- and
              market-based), intensities, quota usage, data coverage, quarantined readings;
* key-units   key energy-consuming units (重点用能单位): daily and monthly consumption per energy type, output,
              unit consumption and output value, with the online-monitoring rules checked per enterprise;
* quarterly / annual   energy use status per enterprise (能源利用状况), park totals, compliance against quotas;
              the annual report adds the ETS-basis emissions summary of the enterprises the national market covers.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from carbon.errors import InputError
from carbon.intensity import intensities, unit_intensities
from carbon.summary import sums
from park.findings import Finding
from park.units import canonical_unit, lookup_unit
from portal.reports.config import ReportSettings
from portal.reports.periods import GRAIN, ReportPeriod

PARK_ROW = "PARK"  # the enterprise key of a park-total row
COMPLETENESS_MIN = 0.9  # key energy-consuming units: at least 90 % of the expected points (FACTORS.md)
DAILY_MONTHLY_TOLERANCE = 0.05  # daily totals agree with the monthly total within 5 %
NOT_OVER = ("统计期尚未结束：本版本的数字不完整，期末后的版本为准. "
            "The period had not ended when this version was made: its figures are incomplete; a version made after "
            "the period's end replaces it.")
TITLES = {"monthly": ("园区及企业月度能源消费与碳排放报表", "Monthly energy and emissions report"),
          "key-units": ("重点用能单位能耗在线监测数据", "Key energy-consuming units: monitoring data"),
          "quarterly": ("季度能源利用状况与碳排放汇总", "Quarterly energy use and emissions summary"),
          "annual": ("年度能源利用状况与碳排放报告", "Annual energy use and emissions report")}


@dataclass(frozen=True)
class Column:
    """A report column: key in the frame, Chinese and English names, unit; kind number, share, text or flag."""

    key: str
    zh: str
    en: str
    unit: str = ""
    kind: str = "number"

    @property
    def header(self) -> str:
        return f"{self.zh} {self.en}" + (f" ({self.unit})" if self.unit else "")

    @property
    def numeric(self) -> bool:
        return self.kind in ("number", "share")


@dataclass
class Section:
    """One table of a report.  `keys`: the columns that identify a row (for differences between versions)."""

    key: str
    zh: str
    en: str
    columns: list[Column]
    frame: pd.DataFrame
    keys: tuple[str, ...] = ("enterprise",)
    note: str = ""

    def table(self) -> pd.DataFrame:
        """The frame with bilingual headers and flags as text (是 yes / 否 no), columns in order."""
        out = pd.DataFrame(index=self.frame.index)
        for c in self.columns:
            values = self.frame[c.key] if c.key in self.frame.columns else pd.Series(np.nan, index=self.frame.index)
            if c.kind == "flag":
                values = values.map(lambda v: "" if v is None or (isinstance(v, float) and math.isnan(v))
                                    else "是 yes" if bool(v) else "否 no")
            elif c.kind == "text":
                values = values.map(_text)
            else:
                values = pd.to_numeric(values, errors="coerce").astype(float)
            out[c.header] = values.to_numpy()
        return out.reset_index(drop=True)


@dataclass
class Report:
    kind: str
    period: ReportPeriod
    park_id: str
    park_name: str
    park_name_en: str
    timezone: str
    sections: list[Section]
    failures: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def title(self) -> tuple[str, str]:
        return TITLES[self.kind]

    def section(self, key: str) -> Section:
        return next(s for s in self.sections if s.key == key)

    def canonical(self) -> dict:
        """The report's data as plain JSON values (no generation time): what the content hash is taken of."""
        return {"kind": self.kind, "period": self.period.label, "park": self.park_id,
                "sections": [{"key": s.key, "columns": [c.key for c in s.columns],
                              "rows": [[_plain(r.get(c.key)) for c in s.columns]
                                       for r in s.frame.to_dict("records")]} for s in self.sections],
                "failures": [[f.code, f.enterprise, f.carrier, f.message] for f in self.failures],
                "notes": list(self.notes)}

    def content_hash(self) -> str:
        data = json.dumps(self.canonical(), ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(data.encode("utf-8")).hexdigest()

    def figures(self) -> dict[str, float | None]:
        """Every number by "section|enterprise|item|indicator" (item: the row's other keys, e.g. a carrier or a
        day): what the differences between two versions are computed on."""
        out: dict[str, float | None] = {}
        for s in self.sections:
            numeric = [c.key for c in s.columns if c.numeric and c.key not in s.keys]
            for r in s.frame.to_dict("records"):
                enterprise = _text(r.get("enterprise", ""))
                item = "/".join(_text(r.get(k)) for k in s.keys if k != "enterprise")
                for k in numeric:
                    out[f"{s.key}|{enterprise}|{item}|{k}"] = _plain(r.get(k))
        return out


def _text(v: object) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, tuple | list):
        return ", ".join(str(x) for x in v)
    if isinstance(v, pd.Timestamp):
        return v.strftime("%Y-%m-%d")
    return str(v)


def _plain(v: object):
    """A JSON value that is the same for the same figure: floats to 10 significant digits, NaN as None."""
    if v is None:
        return None
    if isinstance(v, bool | np.bool_):
        return bool(v)
    if isinstance(v, int | np.integer):
        return int(v)
    if isinstance(v, float | np.floating):
        return None if math.isnan(v) else float(f"{float(v):.10g}")
    return _text(v)


def differences(old: dict[str, float | None], new: dict[str, float | None]) -> list[dict]:
    """Figures that changed between two versions: section, enterprise, item, indicator, old, new."""
    out = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        same = (a is None and b is None) or (a is not None and b is not None and math.isclose(a, b, rel_tol=1e-9,
                                                                                            abs_tol=1e-12))
        if not same:
            parts = key.split("|")  # an item (a product name) may itself hold "|"
            section, enterprise, item, indicator = parts[0], parts[1], "|".join(parts[2:-1]), parts[-1]
            out.append({"section": section, "enterprise": enterprise, "item": item, "indicator": indicator,
                        "old_value": a, "new_value": b})
    return out


# ---- columns shared by the reports -------------------------------------------------------------------------
ENT = Column("enterprise", "企业编号", "Enterprise ID", kind="text")
NAME = Column("name", "企业名称", "Enterprise", kind="text")
CREDIT = Column("credit_code", "统一社会信用代码", "Credit code", kind="text")
INDUSTRY = Column("industry", "行业", "Industry", kind="text")
CARRIER = Column("carrier", "能源品种", "Energy type", kind="text")
QUANTITY = Column("quantity", "实物量", "Quantity")
UNIT = Column("unit", "计量单位", "Unit", kind="text")
TCE = Column("energy_tce", "折标煤", "Energy", "tce")
COVERAGE = Column("coverage", "数据完整率", "Coverage", "%", kind="share")
COMPLETE = Column("complete", "数据完整", "Complete", kind="flag")
REASONS = Column("reasons", "不完整原因", "Why incomplete", kind="text")
SCOPES = [Column("scope1_t_co2e", "范围一排放", "Scope 1", "tCO2e"),
          Column("scope2_location_t_co2e", "范围二排放(基于位置)", "Scope 2 location-based", "tCO2e"),
          Column("scope2_market_t_co2e", "范围二排放(基于市场)", "Scope 2 market-based", "tCO2e"),
          Column("total_location_t_co2e", "碳排放合计(基于位置)", "Total location-based", "tCO2e"),
          Column("total_market_t_co2e", "碳排放合计(基于市场)", "Total market-based", "tCO2e")]
CARRIER_NAMES = {"electricity": "电力 electricity", "natural_gas": "天然气 natural gas", "steam": "蒸汽 steam",
                 "heat": "热力 heat", "diesel": "柴油 diesel", "gasoline": "汽油 gasoline", "lpg": "液化石油气 LPG",
                 "coal": "煤炭 coal", "pv": "光伏 rooftop PV", "fuel_oil": "燃料油 fuel oil"}


def carrier_name(carrier: str) -> str:
    return CARRIER_NAMES.get(carrier, carrier)


# ---- reading through the scope -----------------------------------------------------------------------------
class Reader:
    """The report's reads, all through one park-wide `Scope` (portal.scope), memoised for one report run."""

    def __init__(self, scope, cfg: ReportSettings) -> None:
        self.scope, self.cfg = scope, cfg
        self.park = scope.park
        self.tz = scope.park.tz
        self.threshold = getattr(scope.park, "coverage_threshold", COMPLETENESS_MIN)
        self._memo: dict = {}

    def _get(self, key, compute):
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    def accounts(self, start, end, grain: str, quota_basis: str | None = None):
        return self._get(("acc", start, end, grain, quota_basis),
                         lambda: self.scope.accounts(start, end, grain, quota_basis))

    def output_values(self, start, end) -> pd.DataFrame:
        return self._get(("ov", start, end), lambda: self.scope.output_values(start, end))

    def product_output(self, start, end) -> pd.DataFrame:
        return self._get(("po", start, end), lambda: self.scope.product_output(start, end))

    def quota_positions(self, year: int, end) -> pd.DataFrame:
        return self._get(("quota", year, end), lambda: self.scope.quota_positions(
            year, end, self.cfg.carbon_price_cny_per_t))

    def enterprise_frame(self) -> pd.DataFrame:
        """Every enterprise of the park with its name, credit code and industry, in park order."""
        return pd.DataFrame([{"enterprise": e.id, "name": e.name, "credit_code": e.credit_code,
                              "industry": e.industry} for e in self.scope.enterprises()],
                            columns=["enterprise", "name", "credit_code", "industry"])

    def names(self) -> dict[str, str]:
        return {e.id: e.name for e in self.scope.enterprises()}


def _with_names(reader: Reader, frame: pd.DataFrame, park_name: str = "园区合计 park total") -> pd.DataFrame:
    names = reader.names()
    out = frame.copy()
    out["name"] = [park_name if e == PARK_ROW else names.get(e, e) for e in out["enterprise"]]
    return out


def _order(reader: Reader, frame: pd.DataFrame, *then: str) -> pd.DataFrame:
    """Rows in park order of the enterprises (the park total last), then by `then`."""
    rank = {e.id: i for i, e in enumerate(reader.park.enterprises)}
    rank[PARK_ROW] = len(rank)
    out = frame.assign(_rank=frame["enterprise"].map(rank).fillna(len(rank) + 1))
    return out.sort_values(["_rank", *then], kind="stable").drop(columns="_rank").reset_index(drop=True)


def energy_by_carrier(lines: pd.DataFrame, keys: list[str], threshold: float) -> pd.DataFrame:
    """Per group of `keys` (which include "carrier"): quantity in the carrier's canonical unit (exports
    negative), tce and coverage, as carbon.summary.carrier_figures computes them; `complete` when the coverage
    reaches the threshold and no line carries a reason."""
    cols = [*keys, "quantity", "unit", "energy_tce", "coverage", "complete", "reasons"]
    if lines.empty:
        return pd.DataFrame(columns=cols)
    to_base = {c: lookup_unit(canonical_unit(c)).to_base for c in lines["carrier"].unique()}
    lines = lines.assign(quantity=lines["q_base"] * lines["sign"] / lines["carrier"].map(to_base),
                         energy_tce=lines["tce"])
    out = sums(lines, keys, ["quantity", "energy_tce"])
    why = lines.groupby(keys, dropna=False, sort=True)["reasons"].agg(
        lambda x: tuple(sorted({c for v in x for c in str(v).split("|") if c})))
    out = out.merge(why.rename("reasons").reset_index(), on=keys, how="left")
    low = out["coverage"].fillna(0.0) < threshold
    out["reasons"] = [tuple(sorted({*r, "activity.low_coverage"})) if lo else r
                      for r, lo in zip(out["reasons"], low, strict=True)]
    out["complete"] = out["reasons"].map(len) == 0
    out["unit"] = out["carrier"].map(canonical_unit)
    return out[cols]


def _totals(reader: Reader, acc, with_park: bool = True) -> pd.DataFrame:
    """Enterprise totals of single-period accounts, one row for every enterprise of the park (one without data
    has NaN figures, coverage 0, reason activity.no_data), plus the park row."""
    ent = acc.totals_at("enterprise")
    base = reader.enterprise_frame()[["enterprise"]]
    out = base.merge(ent, on="enterprise", how="left")
    none = out["level"].isna()
    out.loc[none, "coverage"] = 0.0
    out.loc[none, "measured"] = 0
    out["complete"] = out["complete"].where(~none, False).astype(bool)
    out["reasons"] = [("activity.no_data",) if n else r for n, r in zip(none, out["reasons"], strict=True)]
    if with_park:
        park = acc.totals_at("park").assign(enterprise=PARK_ROW)
        if park.empty:
            park = pd.DataFrame([{"enterprise": PARK_ROW, "coverage": 0.0, "complete": False,
                                  "reasons": ("activity.no_data",)}])
        out = pd.concat([out, park], ignore_index=True)
    return out


def _energy_section(reader: Reader, acc, key: str = "energy") -> Section:
    lines = acc.lines
    per = energy_by_carrier(lines, ["enterprise", "carrier"], reader.threshold)
    park = energy_by_carrier(lines, ["carrier"], reader.threshold).assign(enterprise=PARK_ROW)
    frame = _order(reader, _with_names(reader, pd.concat([per, park], ignore_index=True)), "carrier")
    frame["carrier"] = frame["carrier"].map(carrier_name)
    return Section(key, "分品种能源消费", "Energy by type",
                   [ENT, NAME, CARRIER, QUANTITY, UNIT, TCE, COVERAGE, COMPLETE, REASONS], frame,
                   keys=("enterprise", "carrier"),
                   note="实物量为各能源品种的法定计量单位；折标煤按 GB/T 2589-2020 (电力当量值). Quantities in each "
                        "energy type's unit; tce by GB/T 2589-2020 (electricity at its calorific equivalent).")


def _emissions_section(reader: Reader, acc) -> Section:
    frame = _order(reader, _with_names(reader, _totals(reader, acc)))
    return Section("emissions", "能耗与碳排放", "Energy and emissions (Scope 1 and 2)",
                   [ENT, NAME, TCE, *SCOPES, COVERAGE, COMPLETE, REASONS], frame)


def _intensity_section(reader: Reader, acc, start, end) -> Section:
    ov = reader.output_values(start, end)
    loc = intensities(acc, ov, "location")
    mkt = intensities(acc, ov, "market")[["enterprise", "t_co2e_per_10k_cny"]].rename(
        columns={"t_co2e_per_10k_cny": "t_co2e_per_10k_cny_market"})
    frame = reader.enterprise_frame()[["enterprise"]].merge(loc, on="enterprise", how="left").merge(
        mkt, on="enterprise", how="left")
    frame["flag"] = frame["flag"].fillna("activity.no_data")
    frame["complete"] = frame["complete"].fillna(False).astype(bool) & (frame["flag"] == "")
    frame["reasons"] = [tuple(sorted({*(r if isinstance(r, tuple) else ()), *([f] if f else [])}))
                        for r, f in zip(frame["reasons"], frame["flag"], strict=True)]
    # The park: totals over its enterprises when every one has its output value, else not shown.
    park = acc.totals_at("park")
    value = frame["output_value_10k_cny"]
    whole = len(frame) > 0 and value.notna().all() and float(value.sum()) > 0
    row = {"enterprise": PARK_ROW, "output_value_10k_cny": float(value.sum()) if whole else np.nan}
    if whole and len(park):
        row |= {"energy_tce": float(park["energy_tce"].iloc[0]),
                "tce_per_10k_cny": float(park["energy_tce"].iloc[0]) / row["output_value_10k_cny"],
                "t_co2e_per_10k_cny": float(park["total_location_t_co2e"].iloc[0]) / row["output_value_10k_cny"],
                "t_co2e_per_10k_cny_market": float(park["total_market_t_co2e"].iloc[0]) / row["output_value_10k_cny"],
                "complete": bool(park["complete"].iloc[0]), "reasons": tuple(park["reasons"].iloc[0])}
    else:
        row |= {"complete": False, "reasons": ("output.missing",)}
    frame = _order(reader, _with_names(reader, pd.concat([frame, pd.DataFrame([row])], ignore_index=True)))
    return Section("intensity", "强度指标", "Intensities",
                   [ENT, NAME, TCE, Column("output_value_10k_cny", "工业总产值", "Output value", "10k CNY"),
                    Column("tce_per_10k_cny", "单位产值能耗", "Energy per output value", "tce/10k CNY"),
                    Column("t_co2e_per_10k_cny", "单位产值碳排放(基于位置)", "Emissions per output value, location",
                           "tCO2e/10k CNY"),
                    Column("t_co2e_per_10k_cny_market", "单位产值碳排放(基于市场)",
                           "Emissions per output value, market", "tCO2e/10k CNY"), COMPLETE, REASONS], frame)


def _quota_section(reader: Reader, year: int, end, key: str = "quota", with_compliance: bool = False) -> Section:
    pos = reader.quota_positions(year, end)
    pos = pos[pos["has_plan"].fillna(False).astype(bool) | (pos["allocated_t"] != 0)].copy()
    if "complete" in pos.columns:
        pos["complete"] = pos["complete"].fillna(False).astype(bool)
        pos["reasons"] = pos["reasons"].map(lambda r: r if isinstance(r, tuple) else ())
    else:
        pos["complete"], pos["reasons"] = False, [()] * len(pos)
    pos["status"] = pos["status"].map({"surplus": "盈余 surplus", "deficit": "缺口 deficit",
                                       "unknown": "未知 unknown"}).fillna(pos["status"])
    frame = _order(reader, _with_names(reader, pos))
    columns = [ENT, NAME, Column("basis", "核算口径", "Basis", kind="text"),
               Column("emissions_t_co2e", "年初至今排放", "Emissions year to date", "tCO2e"),
               Column("allowances_t", "配额量", "Allowances", "t"),
               Column("ccer_usable_t", "可用CCER", "Usable CCER", "t"),
               Column("used_share", "配额使用率", "Share used", "%", kind="share"),
               Column("remaining_t", "剩余配额", "Remaining", "t"),
               Column("status", "状态", "Status", kind="text")]
    if with_compliance:
        columns += [Column("surrendered_t", "已清缴", "Surrendered", "t"),
                    Column("compliant", "履约", "Compliant", kind="flag")]
    return Section(key, "配额使用情况" if not with_compliance else "配额履约情况",
                   "Quota usage" if not with_compliance else "Compliance against quotas",
                   [*columns, COMPLETE, REASONS], frame,
                   note="仅列出有配额计划或配额记录的企业. Enterprises with a quota plan or allowances only.")


def _coverage_section(reader: Reader, acc) -> tuple[Section, list[Finding]]:
    tot = _totals(reader, acc, with_park=False)
    frame = _order(reader, _with_names(reader, tot))
    frame["passed"] = frame["coverage"].fillna(0.0) >= COMPLETENESS_MIN
    period = acc.totals["period"].iloc[0] if len(acc.totals) else ""
    failures = [Finding("report.completeness", f"{r.name}: data completeness {r.coverage:.1%} is below "
                        f"{COMPLETENESS_MIN:.0%}", enterprise=r.enterprise, subject=r.name, period=str(period),
                        expected=COMPLETENESS_MIN, observed=float(r.coverage))
                for r in frame.itertuples() if not r.passed]
    return Section("coverage", "数据完整率", "Data coverage",
                   [ENT, NAME, Column("measured", "实测区间数", "Measured intervals"),
                    Column("expected", "应有区间数", "Expected intervals"), COVERAGE,
                    Column("passed", "完整率≥90%", "Completeness >= 90 %", kind="flag"), REASONS], frame), failures


def _anomaly_section(reader: Reader, start, end) -> Section:
    q = reader.scope.quarantined()
    cols = ["enterprise", "code", "count"]
    if len(q):
        ts = pd.to_datetime(q["ts"], utc=True, errors="coerce")
        q = q[(ts >= start) & (ts < end)]
    if len(q):
        owner = {s.id: s.enterprise for s in reader.park.catalog().series}
        q = q.assign(enterprise=q["series"].map(owner).fillna(""))
        frame = q.groupby(["enterprise", "code"]).size().rename("count").reset_index()
    else:
        frame = pd.DataFrame(columns=cols)
    frame = _order(reader, _with_names(reader, frame), "code") if len(frame) else frame.assign(name=[])
    return Section("anomalies", "异常数据", "Anomalies: quarantined readings",
                   [ENT, NAME, Column("code", "规则编号", "Rule code", kind="text"),
                    Column("count", "隔离读数", "Readings quarantined")], frame, keys=("enterprise", "code"),
                   note="期内读数时间落在本期的被隔离读数 (规则见 docs/quality-rules.md). Readings of the period "
                        "quarantined by a data rule.")


def _anomaly_case_section(reader: Reader, start, end) -> Section:
    """Anomalies the nightly forecast job found that began in the period, per enterprise and code: opened, and
    closed (their warning acknowledged on the Warnings page) or still open."""
    a = reader.scope.anomalies(start, end)
    cols = ["enterprise", "code", "opened", "closed", "open"]
    if len(a):
        a = a.assign(enterprise=a["enterprise"].fillna(PARK_ROW))
        frame = a.groupby(["enterprise", "code"]).agg(opened=("series", "size"),
                                                      closed=("acknowledged", "sum")).reset_index()
        frame["closed"] = frame["closed"].astype(int)
        frame["open"] = frame["opened"] - frame["closed"]
        frame = _order(reader, _with_names(reader, frame[cols]), "code")
    else:
        frame = pd.DataFrame(columns=[*cols, "name"])
    return Section("anomaly_cases", "异常预警", "Anomalies found (opened and closed)",
                   [ENT, NAME, Column("code", "异常类型", "Anomaly", kind="text"),
                    Column("opened", "发现", "Opened"), Column("closed", "已确认", "Closed (acknowledged)"),
                    Column("open", "未处理", "Still open")], frame, keys=("enterprise", "code"),
                   note="夜间预测任务发现、期内开始的异常；确认后视为已处理. Anomalies the nightly forecast job found "
                        "that began in the period; acknowledged ones count as closed.")


# ---- the reports ----------------------------------------------------------------------------------------------
def _report(reader: Reader, kind: str, period: ReportPeriod, sections: list[Section], failures=(), notes=()):
    park = reader.park
    return Report(kind, period, park.id, park.name, park.name_en or park.name, park.timezone, sections,
                  list(failures), list(notes))


def monthly(reader: Reader, period: ReportPeriod) -> Report:
    start, end = period.bounds(reader.tz)
    acc = reader.accounts(start, end, "month")
    coverage, failures = _coverage_section(reader, acc)
    sections = [_emissions_section(reader, acc), _energy_section(reader, acc),
                _intensity_section(reader, acc, start, end), _quota_section(reader, period.year, end), coverage,
                _anomaly_section(reader, start, end), _anomaly_case_section(reader, start, end)]
    return _report(reader, "monthly", period, sections, failures)


def key_units(reader: Reader, period: ReportPeriod) -> Report:
    """The key energy-consuming units' monitoring data of a month, with the rules checked per enterprise."""
    start, end = period.bounds(reader.tz)
    cfg = reader.cfg
    # Which enterprises: designated, or 10 000 tce and more over the 12 months to the period's end.
    trailing = reader.accounts(start - pd.DateOffset(months=11), end, "month").totals_at("enterprise")
    year_tce = trailing.groupby("enterprise")["energy_tce"].sum(min_count=1)
    units = reader.enterprise_frame()
    units["trailing_tce"] = units["enterprise"].map(year_tce)
    units["designated"] = units["enterprise"].isin(cfg.key_units)
    units = units[units["designated"] | (units["trailing_tce"] >= cfg.key_unit_threshold_tce)].reset_index(drop=True)
    who = set(units["enterprise"])
    notes = []
    acc = reader.accounts(start, end, "month")
    monthly_rows = energy_by_carrier(acc.lines[acc.lines["enterprise"].isin(who)], ["enterprise", "carrier"],
                                     reader.threshold)
    try:
        day = reader.accounts(start, end, "day")
        day_lines = day.lines[day.lines["enterprise"].isin(who)]
        day_lines = day_lines.assign(day=day_lines["period_start"].dt.strftime("%Y-%m-%d"))
        daily = energy_by_carrier(day_lines, ["enterprise", "day", "carrier"], reader.threshold)
        day_ent = day.totals_at("enterprise")
    except InputError:  # recorded (billed) activity is monthly: the days are the metered part only
        notes.append("本月含按月记录的能耗 (账单等)，日数据仅含计量部分. The month has recorded (billed) activity; "
                     "the daily data is the metered part only.")
        agg = reader.scope.aggregate("energy", start, end, "day", by=["enterprise", "carrier"],
                                     where={"enterprise": sorted(who)} if who else None)
        agg = agg[agg["enterprise"].isin(who)]
        daily = pd.DataFrame({"enterprise": agg["enterprise"], "day": agg["start"].dt.strftime("%Y-%m-%d"),
                              "carrier": agg["carrier"], "quantity": agg["value"],
                              "unit": agg["carrier"].map(canonical_unit), "energy_tce": np.nan,
                              "coverage": agg["coverage"]})
        daily["complete"] = daily["coverage"].fillna(0.0) >= reader.threshold
        daily["reasons"] = [() if c else ("activity.low_coverage",) for c in daily["complete"]]
        day_ent = pd.DataFrame(columns=["enterprise", "coverage"])
    # The rules, per enterprise: completeness of the month, and daily sums against the month per energy type.
    ent = _totals(reader, acc, with_park=False).set_index("enterprise")
    sums_by = daily.groupby(["enterprise", "carrier"])["quantity"].sum(min_count=1).rename("daily_sum_quantity")
    monthly_rows = monthly_rows.merge(sums_by.reset_index(), on=["enterprise", "carrier"], how="outer")
    m, d = monthly_rows["quantity"], monthly_rows["daily_sum_quantity"]
    monthly_rows["deviation"] = (d - m).abs() / m.abs().where(m.abs() > 0)
    monthly_rows.loc[(m == 0) & (d.fillna(0) == 0), "deviation"] = 0.0
    monthly_rows["agrees"] = monthly_rows["deviation"] <= DAILY_MONTHLY_TOLERANCE
    monthly_rows["unit"] = monthly_rows["carrier"].map(canonical_unit)
    names = reader.names()
    failures, rules = [], []
    low_days = (day_ent[day_ent["coverage"].fillna(0.0) < COMPLETENESS_MIN].groupby("enterprise").size()
                if len(day_ent) else pd.Series(dtype=int))
    for e in units["enterprise"]:
        cov = float(ent.loc[e, "coverage"]) if e in ent.index else 0.0
        ok = cov >= COMPLETENESS_MIN
        rules.append({"enterprise": e, "rule": "report.completeness", "carrier": "", "value": cov,
                      "limit": COMPLETENESS_MIN, "passed": ok, "low_days": int(low_days.get(e, 0))})
        if not ok:
            failures.append(Finding("report.completeness", f"{names.get(e, e)}: data completeness {cov:.1%} is below "
                                    f"{COMPLETENESS_MIN:.0%}", enterprise=e, subject=names.get(e, e),
                                    period=period.label, expected=COMPLETENESS_MIN, observed=cov))
        for r in monthly_rows[monthly_rows["enterprise"] == e].itertuples():
            ok = bool(r.agrees)
            rules.append({"enterprise": e, "rule": "report.daily_monthly", "carrier": carrier_name(r.carrier),
                          "value": r.deviation, "limit": DAILY_MONTHLY_TOLERANCE, "passed": ok, "low_days": np.nan})
            if not ok:
                dev = "unknown" if pd.isna(r.deviation) else f"{r.deviation:.1%}"
                failures.append(Finding("report.daily_monthly", f"{names.get(e, e)}: {r.carrier} daily totals "
                                        f"{r.daily_sum_quantity:,.2f} vs monthly {r.quantity:,.2f} {r.unit} "
                                        f"(deviation {dev}, limit {DAILY_MONTHLY_TOLERANCE:.0%})",
                                        enterprise=e, subject=names.get(e, e), period=period.label,
                                        carrier=r.carrier, expected=DAILY_MONTHLY_TOLERANCE,
                                        observed=None if pd.isna(r.deviation) else float(r.deviation)))
    rule_frame = pd.DataFrame(rules, columns=["enterprise", "rule", "carrier", "value", "limit", "passed",
                                              "low_days"])
    # Output, unit consumption and output value.
    products = reader.product_output(start, end)
    products = products[products["enterprise"].isin(who)]
    unit_use = unit_consumption(acc, products)
    ov = reader.output_values(start, end)
    value = ov[ov["enterprise"].isin(who)].groupby("enterprise")["output_value_10k_cny"].sum()
    out_frame = units[["enterprise"]].copy()
    out_frame["energy_tce"] = out_frame["enterprise"].map(ent["energy_tce"] if len(ent) else {}).astype(float)
    out_frame["output_value_10k_cny"] = out_frame["enterprise"].map(value).astype(float)
    out_frame["tce_per_10k_cny"] = out_frame["energy_tce"] / out_frame["output_value_10k_cny"].where(
        out_frame["output_value_10k_cny"] > 0)
    out_frame["complete"] = out_frame["enterprise"].map(ent["complete"] if len(ent) else {}).fillna(False).astype(
        bool) & out_frame["output_value_10k_cny"].notna()
    out_frame["reasons"] = [tuple(sorted({*(ent.loc[e, "reasons"] if e in ent.index else ("activity.no_data",)),
                                          *(() if pd.notna(v) else ("output.missing",))}))
                            for e, v in zip(out_frame["enterprise"], out_frame["output_value_10k_cny"], strict=True)]

    daily = daily.assign(carrier=daily["carrier"].map(carrier_name))
    monthly_rows = monthly_rows.assign(carrier=monthly_rows["carrier"].map(carrier_name))
    unit_cols = [ENT, NAME, CREDIT, INDUSTRY, Column("trailing_tce", "近12个月综合能耗", "Energy, last 12 months",
                                                     "tce"),
                 Column("designated", "指定重点用能单位", "Designated", kind="flag")]
    sections = [
        Section("units", "重点用能单位名单", "Key energy-consuming units", unit_cols, _order(reader, units),
                note=f"年综合能耗 {cfg.key_unit_threshold_tce:,.0f} tce 及以上或经指定. "
                     f"{cfg.key_unit_threshold_tce:,.0f} tce a year and above, or designated."),
        Section("monthly", "月度分品种能源消费", "Monthly consumption by energy type",
                [ENT, NAME, CARRIER, QUANTITY, UNIT, TCE, COVERAGE,
                 Column("daily_sum_quantity", "日数据合计", "Sum of daily values"),
                 Column("deviation", "日月偏差", "Daily vs monthly deviation", "%", kind="share"),
                 Column("agrees", "偏差≤5%", "Within 5 %", kind="flag"), COMPLETE, REASONS],
                _order(reader, _with_names(reader, monthly_rows), "carrier"), keys=("enterprise", "carrier")),
        Section("daily", "日分品种能源消费", "Daily consumption by energy type",
                [ENT, NAME, Column("day", "日期", "Day", kind="text"), CARRIER, QUANTITY, UNIT, TCE, COVERAGE,
                 COMPLETE, REASONS], _order(reader, _with_names(reader, daily), "day", "carrier"),
                keys=("enterprise", "day", "carrier")),
        Section("output", "产值与单位产值能耗", "Output value and energy per output value",
                [ENT, NAME, TCE, Column("output_value_10k_cny", "工业总产值", "Output value", "10k CNY"),
                 Column("tce_per_10k_cny", "单位产值能耗", "Energy per output value", "tce/10k CNY"), COMPLETE,
                 REASONS], _order(reader, _with_names(reader, out_frame)),
                note="工业增加值未在本系统记录. Value added is not recorded in ParkCarbon."),
        Section("products", "产品产量与单位产品能耗", "Product output and unit consumption",
                [ENT, NAME, Column("product", "产品", "Product", kind="text"), Column("unit", "单位", "Unit",
                                                                                  kind="text"),
                 Column("quantity", "产量", "Output"), TCE, Column("tce_per_unit", "单位产品能耗", "Unit consumption",
                                                                 "tce/unit")],
                _order(reader, _with_names(reader, unit_use), "product") if len(unit_use) else unit_use.assign(
                    name=pd.Series(dtype=object)), keys=("enterprise", "product"),
                note="企业能耗按产量分摊到产品 (docs/methodology.md). Energy allocated to products by output."),
        Section("rules", "监测规则检查", "Monitoring rules",
                [ENT, NAME, Column("rule", "规则", "Rule", kind="text"), CARRIER,
                 Column("value", "实际值", "Value", "%", kind="share"), Column("limit", "限值", "Limit", "%",
                                                                            kind="share"),
                 Column("passed", "通过", "Passed", kind="flag"),
                 Column("low_days", "完整率<90%的天数", "Days below 90 %")],
                _order(reader, _with_names(reader, rule_frame), "rule", "carrier"),
                keys=("enterprise", "rule", "carrier"),
                note="完整率 ≥ 90%；日数据合计与月数据偏差 ≤ 5%. Completeness at least 90 %; daily totals "
                     "within 5 % of the monthly total."),
    ]
    if not who:
        notes.append("本月无重点用能单位. No key energy-consuming unit this month.")
    return _report(reader, "key-units", period, sections, failures, notes)


def unit_consumption(acc, products: pd.DataFrame) -> pd.DataFrame:
    """Per enterprise and product over the accounts' periods: output, the enterprise's energy and emissions
    (location-based) allocated by output (carbon.intensity.unit_intensities), and per unit."""
    cols = ["enterprise", "product", "unit", "quantity", "energy_tce", "tce_per_unit", "t_co2e_per_unit"]
    if products.empty:
        return pd.DataFrame({c: pd.Series(dtype=object if c in ("enterprise", "product", "unit") else float)
                             for c in cols})
    u = unit_intensities(acc, products)
    g = u.groupby(["enterprise", "product", "unit"], as_index=False).agg(
        quantity=("quantity", "sum"), energy_tce=("energy_tce", lambda v: v.sum(min_count=1)),
        emissions=("emissions_t_co2e", lambda v: v.sum(min_count=1)))
    q = g["quantity"].where(g["quantity"] > 0)
    g["tce_per_unit"], g["t_co2e_per_unit"] = g["energy_tce"] / q, g["emissions"] / q
    return g[cols]


def _status_section(reader: Reader, acc, start, end) -> Section:
    tot = _totals(reader, acc)
    ov = reader.output_values(start, end)
    months = len(pd.date_range(start.tz_localize(None), end.tz_localize(None), freq="MS", inclusive="left"))
    per = ov.groupby("enterprise").agg(v=("output_value_10k_cny", "sum"), n=("month", "nunique"))
    full = per[per["n"] == months]["v"]
    tot["output_value_10k_cny"] = tot["enterprise"].map(full)
    ents = tot["enterprise"] != PARK_ROW
    if ents.any() and tot.loc[ents, "output_value_10k_cny"].notna().all():
        tot.loc[~ents, "output_value_10k_cny"] = float(tot.loc[ents, "output_value_10k_cny"].sum())
    value = tot["output_value_10k_cny"].where(tot["output_value_10k_cny"] > 0)
    tot["tce_per_10k_cny"] = tot["energy_tce"] / value
    tot["t_co2e_per_10k_cny"] = tot["total_location_t_co2e"] / value
    tot["reasons"] = [tuple(sorted({*r, *(() if pd.notna(v) else ("output.missing",))}))
                      for r, v in zip(tot["reasons"], tot["output_value_10k_cny"], strict=True)]
    tot["complete"] = tot["reasons"].map(len) == 0
    frame = _order(reader, _with_names(reader, tot))
    frame["industry"] = frame["enterprise"].map({e.id: e.industry for e in reader.park.enterprises}).fillna("")
    return Section("status", "能源利用状况", "Energy use status",
                   [ENT, NAME, INDUSTRY, TCE, *SCOPES[3:], Column("output_value_10k_cny", "工业总产值", "Output value",
                                                                  "10k CNY"),
                    Column("tce_per_10k_cny", "单位产值能耗", "Energy per output value", "tce/10k CNY"),
                    Column("t_co2e_per_10k_cny", "单位产值碳排放", "Emissions per output value", "tCO2e/10k CNY"),
                    COVERAGE, COMPLETE, REASONS], frame)


def _products_section(reader: Reader, acc, start, end) -> Section:
    g = unit_consumption(acc, reader.product_output(start, end))
    frame = _order(reader, _with_names(reader, g), "product") if len(g) else g.assign(name=[])
    return Section("products", "产品产量与单位产品能耗", "Product output and unit consumption",
                   [ENT, NAME, Column("product", "产品", "Product", kind="text"), Column("unit", "单位", "Unit",
                                                                                     kind="text"),
                    Column("quantity", "产量", "Output"), TCE,
                    Column("tce_per_unit", "单位产品能耗", "Unit consumption", "tce/unit"),
                    Column("t_co2e_per_unit", "单位产品碳排放", "Emissions per unit", "tCO2e/unit")], frame,
                   keys=("enterprise", "product"))


def _ets_section(reader: Reader, period: ReportPeriod) -> Section:
    """The annual emissions on the ETS basis (national grid factor of the ETS notices) of the enterprises the
    national carbon market covers: industry in [reports] ets_industries, or a quota plan on the ETS basis."""
    start, end = period.bounds(reader.tz)
    acc = reader.accounts(start, end, "year", quota_basis="ets")
    pos = reader.quota_positions(period.year, end)
    planned = set(pos.loc[pos["has_plan"].fillna(False).astype(bool) & (pos.get("basis") == "ets"), "enterprise"]) \
        if "basis" in pos.columns else set()
    covered = [e.id for e in reader.park.enterprises if e.industry in reader.cfg.ets_industries or e.id in planned]
    tot = _totals(reader, acc, with_park=False)
    tot = tot[tot["enterprise"].isin(covered)]
    tot = tot.merge(pos[["enterprise", "allowances_t", "surrendered_t", "compliant"]], on="enterprise", how="left")
    frame = _order(reader, _with_names(reader, tot))
    frame["credit_code"] = frame["enterprise"].map({e.id: e.credit_code for e in reader.park.enterprises})
    frame["industry"] = frame["enterprise"].map({e.id: e.industry for e in reader.park.enterprises})
    return Section("ets", "全国碳市场覆盖企业年度排放汇总 (ETS口径)",
                   "ETS-basis annual emissions of covered enterprises",
                   [ENT, NAME, CREDIT, INDUSTRY, SCOPES[0],
                    Column("scope2_location_t_co2e", "购入电力与热力排放 (ETS口径)", "Purchased electricity and heat, "
                           "ETS basis", "tCO2e"),
                    Column("total_location_t_co2e", "排放总量 (ETS口径)", "Total, ETS basis", "tCO2e"),
                    Column("allowances_t", "配额量", "Allowances", "t"),
                    Column("surrendered_t", "已清缴", "Surrendered", "t"),
                    Column("compliant", "履约", "Compliant", kind="flag"), COVERAGE, COMPLETE, REASONS], frame,
                   note="电网排放因子按全国碳市场通知 (0.5703 tCO2/MWh 等)；供企业核查报告参考. Grid factor of the "
                        "national ETS notices; a basis for the enterprises' verified reports.")


def period_summary(reader: Reader, period: ReportPeriod, kind: str) -> Report:
    start, end = period.bounds(reader.tz)
    acc = reader.accounts(start, end, period.grain)
    sections = [_status_section(reader, acc, start, end), _energy_section(reader, acc),
                _products_section(reader, acc, start, end),
                _quota_section(reader, period.year, end, key="compliance", with_compliance=True)]
    if kind == "annual":
        sections.append(_ets_section(reader, period))
    failures = [Finding("report.completeness", f"{r.name}: data completeness {r.coverage:.1%} is below "
                        f"{COMPLETENESS_MIN:.0%}", enterprise=r.enterprise, subject=r.name, period=period.label,
                        expected=COMPLETENESS_MIN, observed=float(r.coverage))
                for r in sections[0].frame.itertuples()
                if r.enterprise != PARK_ROW and not (r.coverage >= COMPLETENESS_MIN)]
    return _report(reader, kind, period, sections, failures)


def build(reader: Reader, kind: str, period: ReportPeriod) -> Report:
    """The report of `kind` for `period` (a ReportPeriod of the kind's grain)."""
    if period.grain != GRAIN[kind]:
        raise ValueError(f"a {kind} report is per {GRAIN[kind]}, not per {period.grain}")
    if kind == "monthly":
        report = monthly(reader, period)
    elif kind == "key-units":
        report = key_units(reader, period)
    else:
        report = period_summary(reader, period, kind)
    if pd.Timestamp(reader.scope.now()) < period.bounds(reader.tz)[1]:
        report.notes.append(NOT_OVER)
    return report
