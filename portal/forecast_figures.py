"""Forecast figures for the pages, read from the nightly job's cache (forecasting.cache): never trained here.

* the enterprise page's quota fan chart: cumulative emissions to date, the projected median path and its 80 % and
  95 % bands to 31 December, the allocation line; the year-end p50/p90 and run-out dates; which model made it,
  when it was trained, how old it is, its backtest MASE and interval coverage;
* the overview's list of enterprises heading for a deficit (median year-end projection above the allocation);
* the warnings they raise (portal.alerts joins them): `warning.quota_projected` and the anomalies
  (`anomaly.*`, forecasting.anomalies) the job found.
"""

from __future__ import annotations

from datetime import datetime

import dash_mantine_components as dmc
import pandas as pd
import plotly.graph_objects as go
from dash import html

from forecasting.cache import CachedForecast, load_anomalies, load_forecasts
from portal.components import fmt, graph, kpi, pct
from portal.i18n import register, t

QUOTA = "quota_t_co2e"
ANOMALY_DAYS = 7  # anomalies found in the last week stay on the Warnings page

TEXT = {
    "fc.quota.title": {"zh-CN": "年末排放预测（配额口径）", "en": "Year-end emissions forecast (quota basis)"},
    "fc.quota.chart": {"zh-CN": "累计碳排放预测与配额 (tCO2e)",
                       "en": "Cumulative emissions forecast and allowances (tCO2e)"},
    "fc.actual": {"zh-CN": "实际累计", "en": "Actual to date"},
    "fc.p50": {"zh-CN": "预测中位数 (p50)", "en": "Forecast median (p50)"},
    "fc.band80": {"zh-CN": "80% 区间", "en": "80% interval"},
    "fc.band95": {"zh-CN": "95% 区间", "en": "95% interval"},
    "fc.allocation": {"zh-CN": "配额", "en": "Allowances"},
    "fc.year_end_p50": {"zh-CN": "预计年末排放 (p50)", "en": "Projected year end (p50)"},
    "fc.year_end_p90": {"zh-CN": "预计年末排放 (p90)", "en": "Projected year end (p90)"},
    "fc.runs_out_p50": {"zh-CN": "配额耗尽日 (p50)", "en": "Allowances run out (p50)"},
    "fc.runs_out_p90": {"zh-CN": "配额耗尽日 (p90)", "en": "Allowances run out (p90)"},
    "fc.not_in_year": {"zh-CN": "年内不会耗尽", "en": "not within the year"},
    "fc.deficit": {"zh-CN": "按预测中位数，年末将超出配额 {t} 吨",
                   "en": "at the median forecast the year ends {t} t over the allowances"},
    "fc.provenance": {"zh-CN": "模型 {model}，训练于 {trained}（{age} 前），回测 MASE {mase}（相对季节朴素 {vs}），"
                               "80% 区间覆盖率 {cov80}，95% 区间覆盖率 {cov95}；数据截至 {data_end}",
                      "en": "model {model}, trained {trained} ({age} ago), backtest MASE {mase} ({vs} of seasonal "
                            "naive), 80% interval coverage {cov80}, 95% {cov95}; data to {data_end}"},
    "fc.fallback": {"zh-CN": "基线预测（非回测选出的模型）：{why}",
                    "en": "Baseline forecast (no backtest choice): {why}"},
    "fc.stale": {"zh-CN": "预测已超过 {hours} 小时未更新", "en": "the forecast is more than {hours} hours old"},
    "fc.none": {"zh-CN": "尚无预测：夜间预测任务尚未运行（parkcarbon jobs）",
                "en": "No forecast yet: the nightly forecast job has not run (parkcarbon jobs)"},
    "fc.other_year": {"zh-CN": "最新预测属于 {year} 年", "en": "The latest forecast is for {year}"},
    "fc.assumption": {"zh-CN": "区间由模拟路径求得：{text}", "en": "intervals from simulated paths: {text}"},
    "fc.deficit.title": {"zh-CN": "预计年末超出配额的企业", "en": "Enterprises heading for a deficit"},
    "fc.deficit.none": {"zh-CN": "按最新预测，没有企业预计年末超出配额",
                        "en": "At the latest forecasts no enterprise is heading for a deficit"},
    "fc.deficit.note": {"zh-CN": "预测中位数 (p50) 年末排放高于配额；来自夜间预测任务的缓存",
                        "en": "median (p50) year-end projection above the allowances; from the nightly forecast cache"},
    "fc.col.enterprise": {"zh-CN": "企业", "en": "Enterprise"},
    "fc.col.allocation": {"zh-CN": "配额 (t)", "en": "Allowances (t)"},
    "fc.col.p50": {"zh-CN": "年末 p50 (tCO2e)", "en": "Year end p50 (tCO2e)"},
    "fc.col.p90": {"zh-CN": "年末 p90 (tCO2e)", "en": "Year end p90 (tCO2e)"},
    "fc.col.gap": {"zh-CN": "预计缺口 (t)", "en": "Projected deficit (t)"},
    "fc.col.runs_out": {"zh-CN": "耗尽日 (p50)", "en": "Runs out (p50)"},
    "fc.col.model": {"zh-CN": "模型", "en": "Model"},
    "fc.col.trained": {"zh-CN": "训练时间", "en": "Trained"},
    "alert.kind.quota_projected": {"zh-CN": "预计年末超配额", "en": "Heading for a deficit"},
    "alert.what.quota_projected": {
        "zh-CN": "预计 {year} 年末排放 {p50:,.1f} tCO2e（p90 {p90:,.1f}），高于配额 {allocation:,.1f} t；"
                 "按中位数 {runs_out} 耗尽（模型 {model}，训练于 {trained}）",
        "en": "projected {year} year-end emissions {p50:,.1f} tCO2e (p90 {p90:,.1f}) above the allowances "
              "{allocation:,.1f} t; at the median they run out {runs_out} (model {model}, trained {trained})"},
    "alert.what.anomaly": {"zh-CN": "{series}，{when}：实际 {observed}，预期 {expected}",
                           "en": "{series}, {when}: observed {observed}, expected {expected}"},
    "alert.kind.anomaly.spike": {"zh-CN": "异常尖峰", "en": "Spike"},
    "alert.kind.anomaly.level_shift": {"zh-CN": "水平突变", "en": "Level shift"},
    "alert.kind.anomaly.off_hours": {"zh-CN": "夜间/假日用能异常", "en": "Unusual night or holiday use"},
    "alert.kind.anomaly.flatline": {"zh-CN": "计量表读数停滞", "en": "Meter flat-lined"},
    "alert.kind.anomaly.profile_mismatch": {"zh-CN": "表计曲线与企业不符", "en": "Meter profile mismatch"},
    "alert.kind.anomaly.unusual_day": {"zh-CN": "异常日用能", "en": "Unusual day"},
    "alert.kind.anomaly.outage": {"zh-CN": "园区大范围停电/断数", "en": "Park-wide outage"},
}
register(TEXT)


def _age(now: datetime, then: datetime) -> str:
    secs = max(0.0, (pd.Timestamp(now).tz_convert("UTC") - pd.Timestamp(then).tz_convert("UTC")).total_seconds())
    return f"{secs / 3600:.1f} h" if secs < 2 * 86400 else f"{secs / 86400:.1f} d"


def provenance(c: CachedForecast, now: datetime, tz, lang: str) -> str:
    """Which model, trained when and how long ago, its backtest MASE and coverage, the data's end."""
    score = c.result.backtest.score(c.model) if c.result and c.result.backtest and not c.fallback else None
    vs = score.mase_vs_reference if score else None
    return t("fc.provenance", lang).format(
        model=c.model, trained=f"{pd.Timestamp(c.trained_at).tz_convert(tz):%Y-%m-%d %H:%M}",
        age=_age(now, c.trained_at), mase=fmt(c.mase, 3) if c.mase is not None else "—",
        vs=pct(vs) if vs is not None else "—", cov80=pct(c.coverage_80) if c.coverage_80 is not None else "—",
        cov95=pct(c.coverage_95) if c.coverage_95 is not None else "—",
        data_end=f"{pd.Timestamp(c.data_end).tz_convert(tz):%Y-%m-%d %H:%M}")


def fan_frame(c: CachedForecast) -> pd.DataFrame:
    """The fan chart's data: per day, the actual cumulative emissions (year to date) or the quantiles of the
    projected cumulative emissions (day, actual, p2_5, p10, p50, p90, p97_5; t CO2e at the end of the day)."""
    bd = c.burn_down or {}
    ytd = pd.Series(bd.get("ytd_daily", {}), dtype=float)
    actual = pd.DataFrame({"day": pd.to_datetime(list(ytd.index)), "actual": ytd.cumsum().to_numpy()})
    fan = bd.get("fan") or {"day": []}
    proj = pd.DataFrame({"day": pd.to_datetime(fan["day"]),
                         **{k: fan.get(k, []) for k in ("p2_5", "p10", "p50", "p90", "p97_5")}})
    return pd.concat([actual, proj], ignore_index=True)


def quota_fan(c: CachedForecast, lang: str) -> go.Figure:
    """Cumulative emissions: actual to date, the projected median and its 80 % and 95 % bands, the allocation."""
    f = fan_frame(c)
    bd = c.burn_down
    fig = go.Figure()
    proj = f.dropna(subset=["p50"])
    act = f.dropna(subset=["actual"])
    if len(act):  # the bands start where the actual ends, so the fan opens from the last known point
        start = act.iloc[[-1]].assign(**{k: act["actual"].iloc[-1] for k in ("p2_5", "p10", "p50", "p90", "p97_5")})
        proj = pd.concat([start, proj], ignore_index=True)
    x = proj["day"] + pd.Timedelta("1D")  # cumulative at the end of the day
    for lo, hi, name, colour in (("p2_5", "p97_5", "fc.band95", "rgba(31,119,180,0.15)"),
                                 ("p10", "p90", "fc.band80", "rgba(31,119,180,0.30)")):
        fig.add_scatter(x=x, y=proj[lo], mode="lines", line={"width": 0}, showlegend=False, hoverinfo="skip")
        fig.add_scatter(x=x, y=proj[hi], mode="lines", line={"width": 0}, fill="tonexty", fillcolor=colour,
                        name=t(name, lang), hovertemplate="%{x|%Y-%m-%d}: %{y:,.1f} tCO2e<extra></extra>")
    fig.add_scatter(x=x, y=proj["p50"], mode="lines", name=t("fc.p50", lang), line={"dash": "dash"},
                    hovertemplate="%{x|%Y-%m-%d}: %{y:,.1f} tCO2e<extra></extra>")
    if len(act):
        fig.add_scatter(x=act["day"] + pd.Timedelta("1D"), y=act["actual"], mode="lines", name=t("fc.actual", lang),
                        hovertemplate="%{x|%Y-%m-%d}: %{y:,.1f} tCO2e<extra></extra>")
    days = f["day"]
    if len(days):
        fig.add_scatter(x=[days.min(), days.max() + pd.Timedelta("1D")], y=[bd["allocation_t"]] * 2, mode="lines",
                        name=t("fc.allocation", lang), line={"color": "#b00020"})
    fig.update_layout(yaxis_title="tCO2e")
    return fig


def render_quota_forecast(c: CachedForecast | None, year: int, now: datetime, tz, lang: str,
                          stale_hours: float = 36.0) -> list:
    """The fan chart section of the enterprise page (beside the ledger's burn-down)."""
    title = html.H3(t("fc.quota.title", lang))
    if c is None or not c.burn_down:
        return [title, dmc.Alert(t("fc.none", lang), color="gray", id="fc-quota-none")]
    forecast_year = pd.Timestamp(c.data_end).tz_convert(tz).year  # the origin: the first forecast day's year
    if forecast_year != year:
        return [title, dmc.Alert(t("fc.other_year", lang).format(year=forecast_year), color="gray",
                                 id="fc-quota-other-year")]
    bd = c.burn_down
    note = provenance(c, now, tz, lang)
    cards = html.Div(className="kpis", id="fc-quota-kpis", children=[
        kpi(t("fc.year_end_p50", lang), fmt(bd["year_end_p50_t"], 1), "tCO2e", str(year), "fc-p50"),
        kpi(t("fc.year_end_p90", lang), fmt(bd["year_end_p90_t"], 1), "tCO2e", str(year), "fc-p90"),
        kpi(t("fc.runs_out_p50", lang), bd["runs_out_p50"] or t("fc.not_in_year", lang), "", "", "fc-runs-out-p50"),
        kpi(t("fc.runs_out_p90", lang), bd["runs_out_p90"] or t("fc.not_in_year", lang), "", "", "fc-runs-out-p90"),
    ])
    out = [title, html.P(note, className="note", id="fc-quota-provenance"), cards]
    if bd["heading_for_deficit"]:
        out.append(dmc.Alert(t("fc.deficit", lang).format(t=fmt(bd["year_end_p50_t"] - bd["allocation_t"], 1)),
                             color="red", id="fc-quota-deficit"))
    if c.fallback:
        out.append(dmc.Alert(t("fc.fallback", lang).format(why=c.fallback), color="yellow", id="fc-quota-fallback"))
    if c.age(now) > pd.Timedelta(hours=stale_hours):
        out.append(dmc.Alert(t("fc.stale", lang).format(hours=int(stale_hours)), color="yellow", id="fc-quota-stale"))
    out.append(graph(quota_fan(c, lang), "fc-quota-fan", lang, title=t("fc.quota.chart", lang), height=340))
    notes = [*(c.result.notes if c.result else []), t("fc.assumption", lang).format(text=bd["assumption"])]
    out.append(html.Ul([html.Li(n) for n in notes], className="note", id="fc-quota-notes"))
    return out


def deficits(forecasts: list[CachedForecast], year: int, tz) -> pd.DataFrame:
    """Enterprises whose cached median year-end projection for `year` exceeds the allocation, largest gap first:
    enterprise, allocation_t, p50_t, p90_t, gap_t, runs_out_p50, model, trained_at."""
    rows = []
    for c in forecasts:
        bd = c.burn_down
        if c.quantity != QUOTA or not bd or pd.Timestamp(c.data_end).tz_convert(tz).year != year:
            continue
        if bd["heading_for_deficit"]:
            rows.append({"enterprise": c.subject, "allocation_t": bd["allocation_t"], "p50_t": bd["year_end_p50_t"],
                         "p90_t": bd["year_end_p90_t"], "gap_t": bd["year_end_p50_t"] - bd["allocation_t"],
                         "runs_out_p50": bd["runs_out_p50"], "model": c.model,
                         "trained_at": pd.Timestamp(c.trained_at).tz_convert(tz)})
    cols = ["enterprise", "allocation_t", "p50_t", "p90_t", "gap_t", "runs_out_p50", "model", "trained_at"]
    return pd.DataFrame(rows, columns=cols).sort_values("gap_t", ascending=False).reset_index(drop=True)


def deficit_table(frame: pd.DataFrame, names: dict[str, str], lang: str) -> pd.DataFrame:
    return pd.DataFrame({
        t("fc.col.enterprise", lang): [names.get(e, e) for e in frame["enterprise"]],
        t("fc.col.allocation", lang): frame["allocation_t"].round(1),
        t("fc.col.p50", lang): frame["p50_t"].round(1), t("fc.col.p90", lang): frame["p90_t"].round(1),
        t("fc.col.gap", lang): frame["gap_t"].round(1),
        t("fc.col.runs_out", lang): frame["runs_out_p50"].fillna(t("fc.not_in_year", lang)),
        t("fc.col.model", lang): frame["model"],
        t("fc.col.trained", lang): [f"{x:%Y-%m-%d %H:%M}" for x in frame["trained_at"]]})


def render_deficits(frame: pd.DataFrame, names: dict[str, str], lang: str) -> list:
    """The overview's section: enterprises heading for a deficit at the latest forecasts."""
    from portal.components import data_table

    title = html.H3(t("fc.deficit.title", lang))
    note = html.P(t("fc.deficit.note", lang), className="note")
    if frame.empty:
        return [title, note, html.P(t("fc.deficit.none", lang), className="note", id="fc-deficit-none")]
    return [title, note, data_table("fc-deficit-table", deficit_table(frame, names, lang))]


# ---- warnings (joined by portal.alerts.current_alerts) ---------------------------------------------------------
def _value(v: float | None, unit: str) -> str:
    """An anomaly's value with its unit: kWh and A with two decimals, a correlation r, a count of meters."""
    if v is None or pd.isna(v):
        return "—"
    if unit == "r":
        return f"r = {v:.2f}"
    if unit == "meters":  # an outage: meters consuming (observed) of the meters expected to
        return f"{v:.0f}"
    return f"{v:,.2f} {unit}"


def forecast_alerts(access, user, now: datetime) -> list:
    """`warning.quota_projected` for each visible enterprise heading for a deficit this year, and the anomalies
    the nightly job found in the last week, as portal.alerts.Alert (acknowledgeable like every warning)."""
    from portal.alerts import Alert

    park = access.park
    if access.engine is None:
        return []
    now = pd.Timestamp(now).tz_convert(park.tz)
    allowed = access.scope(user)
    subjects = None if allowed is None else set(allowed)
    out = []
    for c in load_forecasts(access.engine, park.id, QUOTA, subjects, with_result=False):
        bd = c.burn_down
        if not bd or not bd["heading_for_deficit"] or pd.Timestamp(c.data_end).tz_convert(park.tz).year != now.year:
            continue
        out.append(Alert("quota_projected", c.subject, str(now.year), "warning", c.subject,
                         pd.Timestamp(c.trained_at).tz_convert(park.tz), "alert.what.quota_projected",
                         {"year": now.year, "p50": bd["year_end_p50_t"], "p90": bd["year_end_p90_t"],
                          "allocation": bd["allocation_t"], "runs_out": bd["runs_out_p50"] or "—",
                          "model": c.model,
                          "trained": f"{pd.Timestamp(c.trained_at).tz_convert(park.tz):%Y-%m-%d %H:%M}"}))
    rows = load_anomalies(access.engine, park.id, since=now - pd.Timedelta(days=ANOMALY_DAYS))
    for r in rows:
        if allowed is not None and r.enterprise_id not in allowed:
            continue
        start = pd.Timestamp(r.start).tz_convert(park.tz)
        end = pd.Timestamp(r.end).tz_convert(park.tz)
        out.append(Alert(r.code, r.series, start.isoformat(), r.severity, r.enterprise_id, start,
                         "alert.what.anomaly", {"series": r.series, "when": f"{start:%Y-%m-%d %H:%M}–{end:%H:%M}"
                                                if end - start <= pd.Timedelta(days=1) and end.date() == start.date()
                                                else f"{start:%Y-%m-%d %H:%M}–{end:%Y-%m-%d %H:%M}",
                                                "observed": _value(r.observed, r.unit),
                                                "expected": _value(r.expected, r.unit)}))
    return out
