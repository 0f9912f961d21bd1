"""Data quality (数据质量, administrator): coverage per enterprise and per meter over a chosen period, silent meters,
quarantined readings with their rule code, reason, source and line, and restatements of carbon figures; each
table downloadable.  Everything is read through the request's scope; periods run to now in park-local time."""

from __future__ import annotations

from collections.abc import Callable

import dash_mantine_components as dmc
import pandas as pd
from dash import Input, Output, State, html

from collectors.rules import RULES
from portal import downloads
from portal.alerts import SILENT_AFTER_INTERVALS, silent_meter_alerts
from portal.auth import Role
from portal.components import completeness_notes, coverage_badge, data_table
from portal.i18n import register as register_text
from portal.i18n import t

PATH = "/quality"
TITLE_KEY = "nav.quality"
ROLES = {Role.ADMIN}
PERIODS = ("today", "7d", "month", "30d")
DEFAULT_PERIOD = "month"
RANGE = "range"  # the period choice that takes the dates picked beside it
METRIC_UNITS = {"energy_tce": "tce", "biogenic_t_co2": "tCO2"}  # the other restated metrics are in tCO2e

TEXT = {
    "nav.quality": {"zh-CN": "数据质量", "en": "Data quality"},
    "quality.period.today": {"zh-CN": "今日", "en": "Today"},
    "quality.period.7d": {"zh-CN": "近 7 日", "en": "Last 7 days"},
    "quality.period.month": {"zh-CN": "本月", "en": "This month"},
    "quality.period.range": {"zh-CN": "自选日期", "en": "Picked dates"},
    "quality.period.30d": {"zh-CN": "近 30 日", "en": "Last 30 days"},
    "quality.coverage_enterprise": {"zh-CN": "各企业数据完整率", "en": "Data coverage by enterprise"},
    "quality.coverage_meter": {"zh-CN": "各计量表数据完整率", "en": "Data coverage by meter"},
    "quality.silent": {"zh-CN": "无数据计量表", "en": "Silent meters"},
    "quality.silent_note": {"zh-CN": "超过 {n} 个计量区间没有读数的计量表（截至 {now}）",
                            "en": "Meters without a reading for more than {n} intervals (as of {now})"},
    "quality.quarantine": {"zh-CN": "被隔离的读数", "en": "Quarantined readings"},
    "quality.quarantine_note": {"zh-CN": "被拒收的输入行及其规则编号与原因，原值保留待复核",
                                "en": "Rejected input rows with their rule code and reason, kept as received for "
                                      "review"},
    "quality.restatements": {"zh-CN": "重述记录", "en": "Restatements"},
    "quality.restatements_note": {"zh-CN": "排放因子变更后重算并改变的数字：原值、新值、原因",
                                  "en": "Figures changed by a factor change: old value, new value, reason"},
    "quality.none": {"zh-CN": "无", "en": "none"},
    "quality.col.meter": {"zh-CN": "计量表", "en": "Meter"},
    "quality.col.interval": {"zh-CN": "计量区间 (分钟)", "en": "Interval (min)"},
    "quality.col.expected": {"zh-CN": "应有区间数", "en": "Expected intervals"},
    "quality.col.present": {"zh-CN": "已有区间数", "en": "Intervals present"},
    "quality.col.measured": {"zh-CN": "实测区间数", "en": "Measured intervals"},
    "quality.col.last": {"zh-CN": "最后读数截止", "en": "Last reading until"},
    "quality.col.missed": {"zh-CN": "缺失区间数", "en": "Intervals missed"},
    "quality.col.received": {"zh-CN": "接收时间", "en": "Received"},
    "quality.col.source": {"zh-CN": "来源", "en": "Source"},
    "quality.col.line": {"zh-CN": "行号", "en": "Line"},
    "quality.col.ts": {"zh-CN": "读数时间", "en": "Reading time"},
    "quality.col.value": {"zh-CN": "原值", "en": "Value as received"},
    "quality.col.code": {"zh-CN": "规则编号", "en": "Rule code"},
    "quality.col.rule_severity": {"zh-CN": "处理", "en": "Handling"},
    "quality.col.reason": {"zh-CN": "原因", "en": "Reason"},
    "quality.col.recorded": {"zh-CN": "记录时间", "en": "Recorded"},
    "quality.col.actor": {"zh-CN": "操作人", "en": "By"},
    "quality.col.level": {"zh-CN": "层级", "en": "Level"},
    "quality.col.metric": {"zh-CN": "指标", "en": "Metric"},
    "quality.col.old": {"zh-CN": "原值", "en": "Old value"},
    "quality.col.new": {"zh-CN": "新值", "en": "New value"},
    "quality.rule.reject": {"zh-CN": "拒收", "en": "rejected"},
    "quality.rule.flag": {"zh-CN": "标记", "en": "flagged"},
    "quality.rule.info": {"zh-CN": "提示", "en": "information"},
    "quality.level.park": {"zh-CN": "园区", "en": "Park"},
    "quality.level.enterprise": {"zh-CN": "企业", "en": "Enterprise"},
    "quality.level.workshop": {"zh-CN": "车间", "en": "Workshop"},
    "quality.metric.energy_tce": {"zh-CN": "综合能耗", "en": "Energy"},
    "quality.metric.scope1_t_co2e": {"zh-CN": "直接排放（范围一）", "en": "Scope 1"},
    "quality.metric.scope2_location_t_co2e": {"zh-CN": "范围二（基于位置）", "en": "Scope 2 location-based"},
    "quality.metric.scope2_market_t_co2e": {"zh-CN": "范围二（基于市场）", "en": "Scope 2 market-based"},
    "quality.metric.total_location_t_co2e": {"zh-CN": "总排放（基于位置）", "en": "Total, location-based"},
    "quality.metric.total_market_t_co2e": {"zh-CN": "总排放（基于市场）", "en": "Total, market-based"},
    "quality.metric.biogenic_t_co2": {"zh-CN": "生物质排放", "en": "Biogenic CO2"},
}
register_text(TEXT)


def chosen(preset: str | None, picked) -> str:
    """The period to show: a preset, or a picked range as 'YYYY-MM-DD..YYYY-MM-DD' (RANGE with a valid pick); the
    default otherwise."""
    if preset in PERIODS:
        return preset
    if preset == RANGE and isinstance(picked, list | tuple) and len(picked) == 2 and all(picked):
        try:
            a, b = sorted(pd.Timestamp(str(v)[:10]) for v in picked)
        except ValueError:
            return DEFAULT_PERIOD
        return f"{a:%Y-%m-%d}..{b:%Y-%m-%d}"
    return DEFAULT_PERIOD


def period_bounds(preset: str, now: pd.Timestamp) -> tuple[pd.Timestamp, pd.Timestamp]:
    """[start, end) of a preset period or a picked range ('2024-03-01..2024-03-09': the first day 00:00 to the day
    after the last), park-local, ending at the last complete quarter hour at the latest."""
    end = now.floor("15min")
    today = now.floor("D")
    if ".." in preset:
        a, b = (pd.Timestamp(x).tz_localize(now.tz) for x in preset.split(".."))
        return a, max(min(b + pd.Timedelta(days=1), end), a + pd.Timedelta("15min"))
    start = {"today": today, "7d": today - pd.DateOffset(days=6), "30d": today - pd.DateOffset(days=29),
             "month": pd.Timestamp(now.year, now.month, 1, tz=now.tz)}[preset]
    return start, max(end, start + pd.Timedelta("15min"))


def _optional_int(values: pd.Series) -> pd.Series:
    """Whole numbers shown as such, blanks as blanks (not 7.0 and NaN)."""
    return pd.Series([None if pd.isna(v) else int(v) for v in values], index=values.index, dtype=object)


def _local(ts: pd.Series, scope) -> pd.Series:
    return pd.to_datetime(ts, utc=True).dt.tz_convert(scope.park.tz).dt.strftime("%Y-%m-%d %H:%M")


def _counts(frame: pd.DataFrame, lang: str) -> dict[str, pd.Series]:
    return {t("quality.col.expected", lang): frame["expected"], t("quality.col.present", lang): frame["present"],
            t("quality.col.measured", lang): frame["measured"], t("col.coverage", lang): frame["coverage"].round(4)}


def coverage_by_enterprise(scope, preset: str, lang: str) -> pd.DataFrame:
    start, end = period_bounds(preset, scope.now())
    cov = scope.coverage("energy", start, end, by=["enterprise"]).sort_values("enterprise")
    return pd.DataFrame({t("col.enterprise", lang): cov["enterprise"].map(scope.names(lang)), **_counts(cov, lang)})


def coverage_by_meter(scope, preset: str, lang: str) -> pd.DataFrame:
    """Meters worst first."""
    start, end = period_bounds(preset, scope.now())
    cov = scope.coverage("energy", start, end, by=["series"])
    meters = {m.id: m for m in scope.park.meters}
    cov = cov.sort_values(["coverage", "series"])
    names = scope.names(lang)
    return pd.DataFrame({
        t("quality.col.meter", lang): cov["series"],
        t("col.enterprise", lang): cov["series"].map(lambda s: names[meters[s].enterprise]),
        t("col.carrier", lang): cov["series"].map(lambda s: t(f"carrier.{meters[s].carrier.value}", lang)),
        t("quality.col.interval", lang): cov["series"].map(lambda s: meters[s].interval_s // 60),
        **_counts(cov, lang)})


def silent_meters(scope, lang: str) -> pd.DataFrame:
    names = scope.names(lang)
    meters = [m for m in scope.park.meters if m.enterprise in names]
    alerts = silent_meter_alerts(scope.latest("energy"), meters, scope.now())
    return pd.DataFrame({
        t("quality.col.meter", lang): [a.subject for a in alerts],
        t("col.enterprise", lang): [names[a.enterprise] for a in alerts],
        t("col.carrier", lang): [t(f"carrier.{a.detail['carrier']}", lang) for a in alerts],
        t("quality.col.last", lang): [a.since_text() for a in alerts],
        t("quality.col.missed", lang): pd.Series([a.detail.get("missed") for a in alerts], dtype=object),
        t("quality.col.interval", lang): [a.detail["interval_min"] for a in alerts],
    })


def quarantined(scope, lang: str) -> pd.DataFrame:
    """Newest first."""
    q = scope.quarantined().sort_values(["received", "row"], ascending=[False, True])
    return pd.DataFrame({
        t("quality.col.received", lang): _local(q["received"], scope),
        t("quality.col.source", lang): q["source"],
        t("quality.col.line", lang): _optional_int(q["line"]),
        t("quality.col.meter", lang): q["series"],
        t("quality.col.ts", lang): q["ts"],
        t("quality.col.value", lang): q["value"],
        t("quality.col.code", lang): q["code"],
        t("quality.col.rule_severity", lang): q["code"].map(
            lambda c: t(f"quality.rule.{RULES[c].severity}", lang) if c in RULES else c),
        t("quality.col.reason", lang): q["reason"],
    })


def restatements(scope, lang: str) -> pd.DataFrame:
    r = scope.restatements()
    names = scope.names(lang)
    return pd.DataFrame({
        t("quality.col.recorded", lang): _local(r["recorded_at"], scope),
        t("quality.col.actor", lang): r["actor"],
        t("quality.col.reason", lang): r["reason"],
        t("quality.col.level", lang): r["level"].map(lambda v: t(f"quality.level.{v}", lang)),
        t("col.enterprise", lang): r["enterprise"].map(lambda e: names.get(e, "—")),
        t("period", lang): r["period"],
        t("quality.col.metric", lang): r["metric"].map(lambda m: t(f"quality.metric.{m}", lang)),
        t("quality.col.old", lang): r["old_value"],
        t("quality.col.new", lang): r["new_value"],
        t("col.unit", lang): r["metric"].map(lambda m: METRIC_UNITS.get(m, "tCO2e")),
    })


def _table(table_id: str, frame: pd.DataFrame, lang: str):
    """A sortable grid (portal.components.data_table); coverage in per cent (downloads keep the share), long text
    wrapped."""
    return data_table(table_id, frame, percent=(t("col.coverage", lang),), lang=lang, page_size=15,
                      percent_digits=2, wrap=(t("quality.col.reason", lang),), empty=t("quality.none", lang))


def _section(title: str, note: str, name: str, frame: pd.DataFrame, lang: str) -> list:
    return [html.H3(title), html.P(note, className="note"), downloads.buttons(f"quality-{name}", lang, frame),
            _table(f"quality-{name}-table", frame, lang)]


def enterprise_coverages(frame: pd.DataFrame, lang: str) -> dict[str, float]:
    """Enterprise name -> its coverage, from the coverage-by-enterprise table as shown."""
    if frame.empty:
        return {}
    return dict(zip(frame[t("col.enterprise", lang)], frame[t("col.coverage", lang)], strict=True))


def period_body(scope, preset: str, lang: str) -> list:
    """The two coverage tables of the chosen period; a completeness badge against the park's threshold."""
    start, end = period_bounds(preset, scope.now())
    period = (f"{t('period', lang)}: {start:%Y-%m-%d %H:%M} – {end:%Y-%m-%d %H:%M} ({scope.timezone}); "
              f"{t('coverage.note', lang)}")
    by_enterprise = coverage_by_enterprise(scope, preset, lang)
    badge = coverage_badge(enterprise_coverages(by_enterprise, lang), getattr(scope.park, "coverage_threshold", 0.9),
                           lang, "quality-complete")
    section = _section(t("quality.coverage_enterprise", lang), period, "enterprises", by_enterprise, lang)
    section[0] = html.H3([t("quality.coverage_enterprise", lang), badge])
    return [*section,
            *_section(t("quality.coverage_meter", lang), period, "meters", coverage_by_meter(scope, preset, lang),
                      lang)]


def layout(scope, lang: str) -> html.Div:
    now = scope.now()
    periods = [{"value": p, "label": t(f"quality.period.{p}", lang)} for p in (*PERIODS, RANGE)]
    today = now.tz_convert(scope.park.tz)
    picker = dmc.DatePickerInput(id="quality-range", type="range", valueFormat="YYYY-MM-DD", w=260,
                                 value=[f"{today:%Y-%m-01}", today.date().isoformat()],
                                 maxDate=today.date().isoformat())
    silent_note = t("quality.silent_note", lang).format(n=SILENT_AFTER_INTERVALS, now=f"{now:%Y-%m-%d %H:%M}")
    return html.Div([
        dmc.Group([dmc.Text(t("period", lang), fw=600),
                   dmc.SegmentedControl(id="quality-period", value=DEFAULT_PERIOD, data=periods), picker]),
        html.Div(period_body(scope, DEFAULT_PERIOD, lang), id="quality-period-body"),
        *_section(t("quality.silent", lang), silent_note, "silent", silent_meters(scope, lang), lang),
        *_section(t("quality.quarantine", lang), t("quality.quarantine_note", lang), "quarantine",
                  quarantined(scope, lang), lang),
        *_section(t("quality.restatements", lang), t("quality.restatements_note", lang), "restatements",
                  restatements(scope, lang), lang),
    ])


def register(callbacks) -> None:
    @callbacks.callback(Output("quality-period-body", "children"), Input("quality-period", "value"),
                        Input("quality-range", "value"), prevent_initial_call=True, action="period")
    def choose_period(scope, lang: str, preset: str | None, picked=None) -> list:
        return period_body(scope, chosen(preset, picked), lang)

    def period_download(name: str, table: Callable) -> None:
        """A download of a table of the chosen period, named after it."""

        def build(scope, lang: str, preset: str | None, picked=None) -> downloads.Export:
            preset = chosen(preset, picked)
            shown = downloads.period(*period_bounds(preset, scope.now()), scope.park.timezone)["period"]
            frame = table(scope, preset, lang)
            notes = completeness_notes(enterprise_coverages(frame, lang), getattr(
                scope.park, "coverage_threshold", 0.9), lang) if name == "enterprises" else ()
            return downloads.Export(frame, label=preset.replace("-", "").replace("..", "-"), period=shown, notes=notes)

        callbacks.download(f"quality-{name}", f"coverage-{name}", build, State("quality-period", "value"),
                           State("quality-range", "value"))

    period_download("enterprises", coverage_by_enterprise)
    period_download("meters", coverage_by_meter)
    callbacks.download("quality-silent", "silent-meters", silent_meters)
    callbacks.download("quality-quarantine", "quarantined", quarantined)
    callbacks.download("quality-restatements", "restatements", restatements)
