"""report.pdf of an evidence pack: bilingual (zh-CN and English), the CJK font embedded as a subset (portal/pdf.py).

Every number in it comes from the pack's own data (PackData and summary.json), so an auditor can find it in the
CSV files; its date is the data's "as of", so the same data gives the same bytes.
"""

from __future__ import annotations

import math

import pandas as pd

from portal.pdf import Column, PdfDocument

CARRIER_NAMES = {"electricity": "电力", "natural_gas": "天然气", "pv": "光伏", "heat": "热力", "steam": "蒸汽",
                 "coal": "煤", "diesel": "柴油", "water": "水", "lpg": "液化石油气"}
QUALITY_NAMES = {"measured": ("实测", "measured"), "estimated": ("估算/补录", "estimated or entered"),
                 "partial": ("部分缺失", "partly missing"), "no_data": ("无数据", "no data")}


def _v(x):
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else x


def report_pdf(data, summ: dict, restated: pd.DataFrame, *, park, key_id: str, as_of, consent_row) -> bytes:
    e = data.enterprise
    p = data.period
    doc = PdfDocument("绿色信贷证据报告", "Green-loan evidence report",
                      subtitle=f"{e.name} / {e.name_en or e.name} · {p.label}", generated_at=as_of)
    doc.heading("基本信息", "About this report")
    doc.kv([
        ("园区", "Park", f"{park.name} ({park.name_en})"),
        ("企业", "Enterprise", f"{e.name} ({e.name_en or e.name}, {e.id})"),
        ("统一社会信用代码", "Credit code", e.credit_code or "—"),
        ("统计期", "Period", f"{p.start:%Y-%m-%d %H:%M} – {p.end:%Y-%m-%d %H:%M} ({park.timezone})"
                          + ("" if p.complete else " · 截至当前 to date")),
        ("数据截至", "Data as of", f"{as_of:%Y-%m-%d %H:%M} UTC"),
        ("授权", "Consent", f"#{consent_row.id} · {consent_row.bank} · {consent_row.purpose}"),
        ("签名密钥", "Signing key", key_id[:32] + "…"),
    ])
    doc.table([Column("计量表", "Meter"), Column("能源品种", "Carrier"), Column("车间", "Workshop"),
               Column("单位", "Unit")],
              [[m.id, f"{CARRIER_NAMES.get(str(m.carrier), str(m.carrier))} {m.carrier}", m.workshop or "—", m.unit]
               for m in data.meters])

    t = summ["totals"]
    doc.heading("能耗与碳排放", "Energy and emissions")
    doc.kv([
        ("综合能耗", "Energy", f"{t['energy_tce']:,.3f} tce" if _v(t["energy_tce"]) is not None else "—"),
        ("范围一", "Scope 1", _fmt(t["scope1_t_co2e"], "t CO2e")),
        ("范围二（基于位置）", "Scope 2 location-based", _fmt(t["scope2_location_t_co2e"], "t CO2e")),
        ("范围二（基于市场）", "Scope 2 market-based", _fmt(t["scope2_market_t_co2e"], "t CO2e")),
        ("合计（基于位置）", "Total location-based", _fmt(t["total_location_t_co2e"], "t CO2e")),
        ("合计（基于市场）", "Total market-based", _fmt(t["total_market_t_co2e"], "t CO2e")),
        ("数据完整率", "Data coverage", _pct(t["coverage"])),
    ])
    doc.table([Column("能源品种", "Carrier"), Column("实物量", "Quantity", numeric=True, decimals=3),
               Column("单位", "Unit"), Column("折标煤", "Energy", "tce", True, 3),
               Column("范围一", "Scope 1", "t CO2e", True, 3),
               Column("范围二 位置", "Scope 2 loc.", "t CO2e", True, 3),
               Column("范围二 市场", "Scope 2 mkt.", "t CO2e", True, 3),
               Column("完整率", "Coverage", "%", True, 1)],
              [[c["carrier"], _v(c["quantity"]), c["unit"], _v(c["energy_tce"]), _v(c["scope1_t_co2e"]),
                _v(c["scope2_location_t_co2e"]), _v(c["scope2_market_t_co2e"]),
                None if _v(c["coverage"]) is None else c["coverage"] * 100] for c in summ["by_carrier"]],
              note="出口（上网）电量为负数 Exports are negative.")
    months = list(summ["monthly"])
    doc.table([Column("月份", "Month"), Column("折标煤", "Energy", "tce", True, 3),
               Column("范围一", "Scope 1", "t CO2e", True, 3), Column("范围二 位置", "Scope 2 loc.", "t CO2e", True, 3),
               Column("范围二 市场", "Scope 2 mkt.", "t CO2e", True, 3),
               Column("合计 位置", "Total loc.", "t CO2e", True, 3)],
              [[m, *(summ["monthly"][m][k] for k in ("energy_tce", "scope1_t_co2e", "scope2_location_t_co2e",
                                                     "scope2_market_t_co2e", "total_location_t_co2e"))]
               for m in months])
    if len(months) > 1:
        doc.bar_chart("每月碳排放（基于位置）", "Emissions per month (location-based)", months,
                      [summ["monthly"][m]["total_location_t_co2e"] for m in months], "t CO2e")

    q = summ.get("quota")
    doc.heading("碳配额", "Quota position")
    if not q:
        doc.paragraph("本企业在该年度没有配额记录（不在碳排放权交易范围内）。",
                      "No allowances recorded for the year: the enterprise is not in the emissions trading scheme.")
    else:
        doc.kv([("年度", "Year", str(q["year"])), ("核算口径", "Basis", str(q.get("basis") or "—")),
                ("配额", "Allowances", _fmt(q["allowances_t"], "t")),
                ("可用 CCER", "Usable CCER", _fmt(q["ccer_usable_t"], "t")),
                ("截至期末排放", "Emissions to the period's end", _fmt(q["emissions_t_co2e"], "t CO2e")),
                ("剩余", "Remaining", _fmt(q["remaining_t"], "t")),
                ("已用比例", "Used", _pct(q["used_share"])),
                ("状态", "Status", {"surplus": "盈余 surplus", "deficit": "缺口 deficit"}.get(q["status"],
                                                                                         str(q["status"])))])

    i = summ["intensities"]
    doc.heading("强度", "Intensities")
    doc.kv([("产值（企业申报，自证）", "Output value (declared)", _fmt(i["output_value_10k_cny"], "万元 10k CNY")),
            ("单位产值碳排放", "Emissions per output value", _fmt(i["t_co2e_per_10k_cny"], "t CO2e / 万元", 4)),
            ("单位产值能耗", "Energy per output value", _fmt(i["tce_per_10k_cny"], "tce / 万元", 4))])
    if i["missing_output_months"]:
        doc.paragraph("缺少以下月份的产值，不计算强度：" + "、".join(i["missing_output_months"]),
                      "Output value missing for " + ", ".join(i["missing_output_months"]) +
                      ": no intensity is given.")

    bl = i.get("baseline") or {}
    if bl.get("used"):
        doc.kv([("基准期", "Baseline period", str(bl["period"])),
                ("基准期单位产值碳排放", "Baseline emissions per output value",
                 _fmt(bl.get("t_co2e_per_10k_cny"), "t CO2e / 万元", 4)),
                ("基准期单位产值能耗", "Baseline energy per output value",
                 _fmt(bl.get("tce_per_10k_cny"), "tce / 万元", 4)),
                ("碳排放强度变化", "Change in emissions intensity", _pct(bl.get("change_t_co2e_per_10k_cny"))),
                ("能耗强度变化", "Change in energy intensity", _pct(bl.get("change_tce_per_10k_cny")))])
        if bl.get("note"):
            doc.paragraph("基准期说明：部分月份数据不完整。", "Baseline: " + bl["note"] + ".")
    else:
        doc.paragraph("无基准期：授权范围不含上一年同期。", "Baseline: " + str(bl.get("note") or "none") + ".")

    if "savings" in consent_row.data:
        doc.heading("节能量（IPMVP 方案C）", "Measured savings (IPMVP Option C)")
        sv = data.savings
        if sv is None:
            doc.paragraph("未计算节能量：" + data.savings_note, "Savings not computed: " + data.savings_note)
        else:
            u = sv.unit
            unc = sv.uncertainty.get(0.9)
            doc.kv([
                ("项目开始", "Project start", str(consent_row.project_start)),
                ("基期", "Baseline", f"{sv.baseline_start:%Y-%m} – {sv.baseline_end - pd.Timedelta(days=1):%Y-%m}"),
                ("报告期", "Reporting",
                 f"{sv.reporting_start:%Y-%m} – {sv.reporting_end - pd.Timedelta(days=1):%Y-%m}"),
                ("基线模型", "Baseline model", sv.fit.formula),
                ("校准基线", "Adjusted baseline", _fmt(sv.adjusted_baseline, u, 0)),
                ("报告期用量", "Reporting consumption", _fmt(sv.reporting_consumption, u, 0)),
                ("节能量", "Energy saved", _fmt(sv.energy_saved, u, 0)),
                ("节能量（折标煤）", "Energy saved (tce)", _fmt(sv.energy_saved_tce, "tce")),
                ("减排量", "CO2 avoided", _fmt(sv.co2_avoided_t_co2e, "t CO2e")),
                ("90% 区间", "90 % interval", "—" if unc is None else
                 f"{unc.interval_lower:,.0f} – {unc.interval_upper:,.0f} {u}"),
                ("拟合", "Fit", f"R² {sv.fit.r2:.3f}, CV(RMSE) {sv.fit.cv_rmse:.1%}, NMBE {sv.fit.nmbe:.2%}, "
                 f"n {sv.fit.n}" + (" · 符合 ASHRAE Guideline 14" if sv.meets_guideline14 else
                                    " · 未达 ASHRAE Guideline 14 要求 (does not meet Guideline 14)")),
            ])
            doc.paragraph("方法：基期用量对产值和工作日回归（statsmodels OLS），代入报告期条件得到校准基线，"
                          "节能量 = 校准基线 − 报告期用量。数据见 savings.csv，"
                          "可用 parkcarbon evidence verify --recompute 复算。",
                          "Method: a regression of the baseline months' consumption on output value and working "
                          "days, applied to the reporting months; savings = adjusted baseline - reporting "
                          "consumption (docs/savings.md). Data in savings.csv; verify --recompute refits it.")

    doc.heading("设备开工率与停产风险", "Equipment utilisation and shutdown risk")
    u = data.utilisation
    if "utilisation" not in consent_row.data:
        doc.paragraph("授权不含设备数据。", "The consent does not cover equipment data.")
    elif u.empty:
        doc.paragraph("本企业未安装设备手环。", "The enterprise has no equipment bracelets.")
    else:
        rows = []
        for dev, g in u.groupby("device", sort=True):
            vals = g["utilisation"].astype(float)
            rows.append([dev, g["name"].iloc[0], vals.mean() * 100, float(g["running_h"].astype(float).sum()),
                         int((g["running_h"].astype(float) == 0).sum()), (data.rated_kw or {}).get(dev)])
        doc.table([Column("设备", "Device"), Column("名称", "Name"), Column("平均开工率", "Utilisation", "%", True),
                   Column("运行时长", "Running", "h", True), Column("未运行天数", "Days not running", "", True, 0),
                   Column("额定功率（估）", "Rated power (est.)", "kW", True)], rows,
                  note="开工率 = 班次内运行时间 / 计划班次时间；数据不全时为下限。Utilisation = running in shift / "
                       "planned shift hours; a lower bound when coverage is below 100 %.")
    if "risk" in consent_row.data and data.signals is not None:
        if data.signals.empty:
            doc.paragraph("无停产风险信号。", "No shutdown-risk signal.")
        else:
            doc.table([Column("信号", "Signal"), Column("级别", "Severity"), Column("说明", "Message", width=4)],
                      [[r.code, r.severity, r.message] for r in data.signals.itertuples()])

    if "risk" in consent_row.data and data.risk is not None and len(data.risk):
        doc.heading("生产经营风险指标", "Production and energy risk indicators")
        doc.table([Column("指标", "Indicator"), Column("最近3个月", "Last 3 months", numeric=True, decimals=3),
                   Column("同比", "vs last year", "%", True), Column("同业企业数", "Peers", "", True, 0),
                   Column("同业中位数", "Peer median", numeric=True, decimals=3),
                   Column("同业百分位", "Peer percentile", "%", True), Column("说明", "Note", width=3)],
                  [[f"{r.indicator_zh} {r.indicator}", _v(r.latest), None if _v(r.change) is None else r.change * 100,
                    _v(r.peer_count), _v(r.peer_median),
                    None if _v(r.peer_percentile_rank) is None else r.peer_percentile_rank * 100,
                    r.flag or r.peer_note or ""] for r in data.risk.itertuples()],
                  note="同业为园区内同行业的其他企业，只给出数量、中位数和百分位，不显示名称；少于3家不给出。"
                       "Peers: the other enterprises of the same industry in the park, anonymised; withheld below 3.")

    doc.heading("数据完整率与质量", "Data coverage and quality")
    q = data.energy_daily["quality"].value_counts()
    doc.table([Column("质量代码", "Quality code"), Column("说明", "Meaning"),
               Column("表日数", "Meter-days", "", True, 0)],
              [[code, f"{QUALITY_NAMES[code][0]} {QUALITY_NAMES[code][1]}", int(q.get(code, 0))]
               for code in QUALITY_NAMES])
    if not summ["complete"]:
        reasons = sorted({r for r in data.monthly["reasons"] if isinstance(r, str) and r})
        doc.paragraph("部分数字不完整：" + "；".join(reasons), "Some figures are incomplete: " + "; ".join(reasons))

    doc.heading("方法与排放因子", "Methodology and factors")
    doc.paragraph("能耗按 GB/T 2589-2020 折标准煤；范围一、范围二按 GB/T 32150 与 GHG Protocol 计算，"
                  "范围二同时给出基于位置和基于市场两种方法。"
                  "每一核算行所用因子编号见 emissions_lines.csv，因子值及来源见 factors.csv。",
                  "Energy in tonnes of standard coal equivalent (GB/T 2589-2020); Scope 1 and 2 per GB/T 32150 and "
                  "the GHG Protocol, Scope 2 both location- and market-based. The factor ids of every accounting line "
                  "are in emissions_lines.csv, the factor rows with their sources in factors.csv.")
    doc.table([Column("因子编号", "Factor id", width=4), Column("数值", "Value", numeric=True, decimals=4),
               Column("单位", "Unit"), Column("来源", "Source", width=3)],
              [[f.id, f.value, f.unit, f"{f.source} {f.publication or ''}".strip()] for f in data.factors.itertuples()])

    doc.heading("数据重述", "Restatements")
    if restated.empty:
        doc.paragraph("与此前签发的证据包相比，本期数字没有变化。",
                      "No figure differs from a pack issued before.")
    else:
        doc.table([Column("月份", "Month"), Column("指标", "Figure"),
                   Column("原数", "Issued", numeric=True, decimals=3), Column("现数", "Now", numeric=True, decimals=3),
                   Column("差额", "Difference", numeric=True, decimals=3)],
                  [[r.month, r.figure, r.previously_issued, r.now, r.difference] for r in restated.itertuples()])
    doc.heading("数据可信度", "Trust tier of the figures")
    doc.table([Column("数据", "Figure"), Column("可信度", "Tier"), Column("依据", "Why", width=4)],
              [[r.figure, f"{r.tier_zh} {r.tier}", r.reason] for r in data.trust.itertuples()],
              note="他证：园区计量；互证：与独立记录核对一致；自证：企业申报。Measured by the park (他证), "
                   "cross-checked (互证), declared by the enterprise (自证).")
    bc = summ.get("meter_vs_bill") or {}
    if not bc.get("available"):
        doc.paragraph(f"电表与账单互证：本期无企业计量表的账单可供核对；{bc.get('estimated_or_entered_meter_days', 0)}"
                      " 个表日含估算或手工录入数据。", "Meter against utility bill: " + str(bc.get("note") or
                                                                             "no bill was available") + ".")
    else:  # per billing period: the meter over exactly the billing period against the bill (bill_check.csv)
        n = bc.get("status_counts") or {}
        doc.paragraph(f"电表与账单互证：{bc.get('bills_compared', 0)} 个账单期按账单起止时间逐一核对电表电量，"
                      f"{n.get('agree', 0)} 个一致，{n.get('differ', 0)} 个不一致，{n.get('incomplete_meter', 0)} 个"
                      "电表数据不全；明细见 bill_check.csv。",
                      "Meter against utility bill: " + str(bc.get("note")) + ".")
        status_zh = {"agree": "一致", "differ": "不一致", "incomplete_meter": "电表不全", "no_meter": "无电表数据",
                     "no_bill": "无账单"}
        doc.table([Column("计量表", "Meter"), Column("起", "From"), Column("止", "To"),
                   Column("电表", "Metered", numeric=True, decimals=1),
                   Column("账单", "Billed", numeric=True, decimals=1),
                   Column("差额", "Difference", numeric=True, decimals=1), Column("单位", "Unit"),
                   Column("覆盖率", "Coverage"), Column("状态", "Status", width=2)],
                  [[r["meter"], str(r["period_start"])[:16].replace("T", " "),
                    str(r["period_end"])[:16].replace("T", " "), r["metered"], r["billed"], r["difference"],
                    r["unit"], _pct(r["coverage"]), f"{status_zh.get(r['status'], r['status'])} {r['status']}"]
                   for r in bc.get("compared") or []],
                  note="电表电量为账单期内各计量间隔之和；差额 = 电表 − 账单。Metered: the sum of the meter's "
                       "intervals within the billing period; difference = metered − billed.")
    doc.paragraph("如何验证：见证据包中的 README.txt。", "How to verify: see README.txt in the pack.")
    return doc.to_bytes()


def _fmt(v, unit: str, decimals: int = 3) -> str:
    return "—" if _v(v) is None else f"{v:,.{decimals}f} {unit}"


def _pct(v) -> str:
    return "—" if _v(v) is None else f"{v * 100:.1f} %"
