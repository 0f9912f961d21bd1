"""The one translation table of user-facing text: zh-CN (default) and English.

Terms follow the project glossary (docs/glossary.md).  A key missing from a language is an error in tests,
never a silent fallback shown to users.
"""

from __future__ import annotations

LANGUAGES = ("zh-CN", "en")
DEFAULT_LANGUAGE = "zh-CN"

TEXT: dict[str, dict[str, str]] = {
    "app.title": {"zh-CN": "园区碳排放与能源监测平台", "en": "Park Carbon and Energy Monitor"},
    "nav.overview": {"zh-CN": "园区总览", "en": "Park overview"},
    "page.not_found": {"zh-CN": "页面不存在", "en": "No such page"},
    "page.forbidden": {"zh-CN": "您的角色无权访问此页面", "en": "Your role may not open this page"},
    "role.admin": {"zh-CN": "园区管理员", "en": "Park administrator"},
    "role.enterprise": {"zh-CN": "企业用户", "en": "Enterprise user"},
    "role.bank": {"zh-CN": "银行", "en": "Bank"},
    "role.regulator": {"zh-CN": "监管部门", "en": "Regulator"},
    "kpi.live_power": {"zh-CN": "实时电力负荷", "en": "Live electric load"},
    "kpi.energy_tce": {"zh-CN": "本月综合能耗", "en": "Comprehensive energy this month"},
    "kpi.emissions_location": {"zh-CN": "本月碳排放（基于位置）", "en": "Emissions this month (location-based)"},
    "kpi.emissions_market": {"zh-CN": "本月碳排放（基于市场）", "en": "Emissions this month (market-based)"},
    "kpi.quota_alerts": {"zh-CN": "配额预警企业", "en": "Quota warnings"},
    "kpi.quota_alerts_note": {"zh-CN": "本年配额使用率 ≥ 80%", "en": "this year's allowance use >= 80%"},
    "unit.enterprises": {"zh-CN": "家", "en": "enterprises"},
    "period.month_to_date": {"zh-CN": "本月至今", "en": "month to date"},
    "chart.mix": {"zh-CN": "本月能源结构（吨标准煤）", "en": "Energy mix this month (tce)"},
    "table.ranking": {"zh-CN": "企业碳排放与碳效率排名", "en": "Enterprise emissions and carbon-efficiency ranking"},
    "ranking.note": {"zh-CN": "上一完整月；强度 = 碳排放（基于位置）/ 产值；等级见方法说明",
                     "en": "last complete month; intensity = location-based emissions / output value; grading rule "
                           "in the methodology"},
    "col.emissions_t": {"zh-CN": "碳排放 (tCO2e)", "en": "Emissions (tCO2e)"},
    "col.energy_tce": {"zh-CN": "综合能耗 (tce)", "en": "Energy (tce)"},
    "col.output_value": {"zh-CN": "产值（万元）", "en": "Output value (10k CNY)"},
    "col.intensity": {"zh-CN": "单位产值碳排放 (tCO2e/万元)", "en": "Intensity (tCO2e per 10k CNY)"},
    "col.grade": {"zh-CN": "碳排放等级", "en": "Emission grade"},
    "col.rank": {"zh-CN": "碳效率排名", "en": "Efficiency rank"},
    "col.quota_used": {"zh-CN": "本年配额使用率", "en": "Allowance used this year"},
    "col.quota_status": {"zh-CN": "配额状态", "en": "Quota status"},
    "quota.surplus": {"zh-CN": "盈余", "en": "surplus"},
    "quota.deficit": {"zh-CN": "缺口", "en": "deficit"},
    "quota.unknown": {"zh-CN": "未知", "en": "unknown"},
    "quota.none": {"zh-CN": "无配额", "en": "no quota"},
    "badge.incomplete": {"zh-CN": "不完整", "en": "incomplete"},
    "badge.complete": {"zh-CN": "数据完整", "en": "complete"},
    "badge.threshold": {"zh-CN": "数据完整率阈值 {threshold}", "en": "coverage threshold {threshold}"},
    "download.csv": {"zh-CN": "下载 CSV", "en": "Download CSV"},
    "download.xlsx": {"zh-CN": "下载 Excel", "en": "Download Excel"},
    "logout": {"zh-CN": "退出", "en": "Log out"},
    "login.username": {"zh-CN": "用户名", "en": "User name"},
    "login.password": {"zh-CN": "密码", "en": "Password"},
    "login.submit": {"zh-CN": "登录", "en": "Log in"},
    "lang.switch": {"zh-CN": "English", "en": "中文"},
    "kpi.energy_month": {"zh-CN": "本月能耗", "en": "Energy this month"},
    "kpi.energy_today": {"zh-CN": "今日能耗", "en": "Energy today"},
    "kpi.coverage": {"zh-CN": "数据完整率", "en": "Data coverage"},
    "kpi.enterprises": {"zh-CN": "企业数", "en": "Enterprises"},
    "kpi.meters": {"zh-CN": "计量表数", "en": "Meters"},
    "chart.daily_energy": {"zh-CN": "近 30 日电力消耗（按日）", "en": "Electricity, last 30 days (daily)"},
    "chart.unit_kwh": {"zh-CN": "千瓦时 (kWh)", "en": "kWh"},
    "table.enterprises": {"zh-CN": "企业本月能耗与数据完整率", "en": "Enterprises: energy and coverage this month"},
    "col.enterprise": {"zh-CN": "企业", "en": "Enterprise"},
    "col.carrier": {"zh-CN": "能源品种", "en": "Carrier"},
    "col.energy": {"zh-CN": "能耗", "en": "Energy"},
    "col.unit": {"zh-CN": "单位", "en": "Unit"},
    "col.coverage": {"zh-CN": "数据完整率", "en": "Coverage"},
    "period": {"zh-CN": "统计期", "en": "Period"},
    "coverage.note": {"zh-CN": "完整率 = 实测区间数 / 应有区间数", "en": "coverage = measured intervals / expected"},
    "tz.note": {"zh-CN": "时间为园区当地时间", "en": "times in park local time"},
    "no_data": {"zh-CN": "无数据", "en": "no data"},
    "updated": {"zh-CN": "更新于 {time}", "en": "updated {time}"},
    # AG Grid's own words (portal.components.data_table)
    "grid.page": {"zh-CN": "页", "en": "Page"},
    "grid.of": {"zh-CN": "/", "en": "of"},
    "grid.to": {"zh-CN": "至", "en": "to"},
    "grid.more": {"zh-CN": "更多", "en": "more"},
    "grid.next": {"zh-CN": "下一页", "en": "Next page"},
    "grid.previous": {"zh-CN": "上一页", "en": "Previous page"},
    "grid.first": {"zh-CN": "首页", "en": "First page"},
    "grid.last": {"zh-CN": "末页", "en": "Last page"},
    "grid.noRowsToShow": {"zh-CN": "无数据", "en": "No rows"},
    "grid.loadingOoo": {"zh-CN": "加载中…", "en": "Loading…"},
    "grid.pageSizeSelectorLabel": {"zh-CN": "每页行数：", "en": "Rows per page:"},
    "grid.ariaPageSizeSelectorLabel": {"zh-CN": "每页行数", "en": "Rows per page"},
    "carrier.electricity": {"zh-CN": "电力", "en": "Electricity"},
    "carrier.pv": {"zh-CN": "光伏", "en": "On-site PV"},
    "carrier.natural_gas": {"zh-CN": "天然气", "en": "Natural gas"},
    "carrier.steam": {"zh-CN": "蒸汽", "en": "Steam"},
    "carrier.heat": {"zh-CN": "热力", "en": "Heat"},
    "carrier.diesel": {"zh-CN": "柴油", "en": "Diesel"},
    "carrier.water": {"zh-CN": "水", "en": "Water"},
}


def register(table: dict[str, dict[str, str]]) -> None:
    """Add a page's entries to the one table; a key defined twice, or missing a language, is an error."""
    for key, texts in table.items():
        if key in TEXT and TEXT[key] != texts:
            raise KeyError(f"translation key {key!r} is defined twice with different texts")
        if set(texts) != set(LANGUAGES) or not all(texts.values()):
            raise KeyError(f"translation key {key!r} needs non-empty texts in {', '.join(LANGUAGES)}")
        TEXT[key] = texts


def t(key: str, lang: str = DEFAULT_LANGUAGE) -> str:
    """The text of `key` in `lang`; an unknown key or language raises KeyError (caught by the tests)."""
    return TEXT[key][lang]


# Industry names (park file `industry` keys: the demo park's and park.synth's) in both languages.
INDUSTRIES = {
    "machinery": ("机械", "Machinery"), "steel_structures": ("钢结构", "Steel structures"),
    "steel": ("钢铁", "Steel"), "electronics": ("电子", "Electronics"),
    "electronics_assembly": ("电子装配", "Electronics assembly"), "chemicals": ("化工", "Chemicals"),
    "textiles": ("纺织印染", "Textiles and dyeing"), "textile_dyeing": ("纺织印染", "Textile dyeing"),
    "food": ("食品", "Food"), "food_processing": ("食品加工", "Food processing"), "plastics": ("塑胶", "Plastics"),
    "auto_parts": ("汽车零部件", "Auto parts"), "pharma": ("医药", "Pharmaceuticals"),
    "building_materials": ("建材", "Building materials"), "logistics": ("物流", "Logistics"),
    "cold_chain_logistics": ("冷链物流", "Cold-chain logistics"), "printing": ("包装印刷", "Packaging and printing"),
    "paper": ("造纸", "Paper"),
}


def industry_name(key: str | None, lang: str = DEFAULT_LANGUAGE) -> str:
    """An industry's name in `lang`; an unknown key as written, its underscores as spaces ("" for none)."""
    if not key:
        return ""
    names = INDUSTRIES.get(key)
    return (names[0] if lang == "zh-CN" else names[1]) if names else key.replace("_", " ")
