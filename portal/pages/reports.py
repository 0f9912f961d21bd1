"""Reports (监管报表, regulator and administrator): the archive of regulator reports (kind, period, every version
with when it was made, its outcome, its rule failures and delivery), the run log, and a download of any file of
any version.  Everything is read through the request's scope (report_versions, report_runs, report_files,
report_file); the reports themselves are made by the scheduled jobs or `parkcarbon report run` (docs/reports.md).
"""

from __future__ import annotations

import pandas as pd
from dash import Input, Output, State, dcc, html, no_update

from portal.auth import Role
from portal.components import data_table
from portal.i18n import register as register_text
from portal.i18n import t

PATH = "/reports"
TITLE_KEY = "nav.reports"
ROLES = {Role.REGULATOR, Role.ADMIN}

TEXT = {
    "nav.reports": {"zh-CN": "监管报表", "en": "Reports"},
    "reports.archive": {"zh-CN": "报表归档", "en": "Report archive"},
    "reports.archive_note": {
        "zh-CN": "月报、重点用能单位监测数据、季报和年报按计划自动生成；"
                 "数据变化（迟到读数、重述）时生成新版本，旧版本保留，并记录逐项变化。",
        "en": "Monthly, key energy-consuming units, quarterly and annual reports are made on schedule; when the data "
              "changes (a late reading, a restatement) a new version is made, older ones are kept, and every "
              "changed figure is recorded."},
    "reports.runs": {"zh-CN": "运行记录", "en": "Run log"},
    "reports.download": {"zh-CN": "下载", "en": "Download"},
    "reports.jobs": {"zh-CN": "计划任务记录", "en": "Scheduled jobs"},
    "reports.jobs_note": {"zh-CN": "报表计划任务的每次运行（应运行时间、结果），包括未能生成报表的运行。",
                          "en": "Every run of the report jobs (when it was due, its outcome), including runs that "
                                "could not make a report."},
    "reports.col.job": {"zh-CN": "任务", "en": "Job"},
    "reports.col.due": {"zh-CN": "应运行时间", "en": "Due"},
    "reports.version": {"zh-CN": "报表版本", "en": "Report version"},
    "reports.file": {"zh-CN": "文件", "en": "File"},
    "reports.none": {"zh-CN": "尚无报表", "en": "no reports yet"},
    "reports.col.kind": {"zh-CN": "报表", "en": "Report"},
    "reports.col.version": {"zh-CN": "版本", "en": "Version"},
    "reports.col.generated": {"zh-CN": "生成时间", "en": "Generated"},
    "reports.col.outcome": {"zh-CN": "结果", "en": "Outcome"},
    "reports.col.failures": {"zh-CN": "未通过规则数", "en": "Rule failures"},
    "reports.col.delivered": {"zh-CN": "发送", "en": "Mailed"},
    "reports.col.hash": {"zh-CN": "数据指纹", "en": "Content SHA-256"},
    "reports.col.trigger": {"zh-CN": "触发", "en": "Trigger"},
    "reports.col.started": {"zh-CN": "开始", "en": "Started"},
    "reports.col.detail": {"zh-CN": "详情", "en": "Detail"},
    "reports.kind.monthly": {"zh-CN": "月报", "en": "Monthly"},
    "reports.kind.key-units": {"zh-CN": "重点用能单位", "en": "Key energy-consuming units"},
    "reports.kind.quarterly": {"zh-CN": "季报", "en": "Quarterly"},
    "reports.kind.annual": {"zh-CN": "年报", "en": "Annual"},
    "reports.outcome.success": {"zh-CN": "成功", "en": "success"},
    "reports.outcome.data-quality": {"zh-CN": "规则未通过", "en": "rule failed"},
    "reports.outcome.unchanged": {"zh-CN": "数据未变", "en": "unchanged"},
    "reports.outcome.error": {"zh-CN": "错误", "en": "error"},
    "reports.outcome.running": {"zh-CN": "运行中", "en": "running"},
    "reports.trigger.manual": {"zh-CN": "手动", "en": "manual"},
    "reports.trigger.scheduled": {"zh-CN": "计划", "en": "scheduled"},
}
register_text(TEXT)


def _local(values: pd.Series, scope) -> pd.Series:
    return pd.to_datetime(values, utc=True).dt.tz_convert(scope.park.tz).dt.strftime("%Y-%m-%d %H:%M")


def _word(prefix: str, lang: str):
    def word(v) -> str:
        try:
            return t(f"{prefix}.{v}", lang)
        except KeyError:
            return str(v or "")
    return word


def archive_table(scope, lang: str) -> pd.DataFrame:
    v = scope.report_versions()
    return pd.DataFrame({
        t("reports.col.kind", lang): v["kind"].map(_word("reports.kind", lang)),
        t("period", lang): v["period"],
        t("reports.col.version", lang): v["version"],
        t("reports.col.generated", lang): _local(v["generated_at"], scope),
        t("reports.col.outcome", lang): v["outcome"].map(_word("reports.outcome", lang)),
        t("reports.col.failures", lang): v["failures"],
        t("reports.col.delivered", lang): v["delivered"],
        t("reports.col.hash", lang): v["content_hash"].str[:16],
    })


def runs_table(scope, lang: str) -> pd.DataFrame:
    r = scope.report_runs()
    return pd.DataFrame({
        t("reports.col.started", lang): _local(r["started_at"], scope),
        t("reports.col.kind", lang): r["kind"].map(_word("reports.kind", lang)),
        t("period", lang): r["period"],
        t("reports.col.trigger", lang): r["trigger"].map(_word("reports.trigger", lang)),
        t("reports.col.outcome", lang): r["outcome"].map(_word("reports.outcome", lang)),
        t("reports.col.version", lang): pd.Series([None if pd.isna(x) else int(x) for x in r["version"]],
                                                  dtype=object),
        t("reports.col.detail", lang): r["detail"].fillna(""),
    })


def job_runs_table(scope, lang: str) -> pd.DataFrame:
    j = scope.report_job_runs()
    return pd.DataFrame({
        t("reports.col.job", lang): j["job"].str.removeprefix("reports.").map(_word("reports.kind", lang)),
        t("reports.col.due", lang): _local(j["scheduled_for"], scope),
        t("reports.col.started", lang): _local(j["started"], scope),
        t("reports.col.outcome", lang): j["outcome"].str.replace("_", "-").map(_word("reports.outcome", lang)),
        t("reports.col.detail", lang): j["summary"].fillna(""),
    })


def version_options(scope, lang: str) -> list[dict]:
    v = scope.report_versions()
    return [{"value": int(r.id), "label": f"{t(f'reports.kind.{r.kind}', lang)} {r.period} v{r.version}"}
            for r in v.itertuples()]


def file_options(scope, version_id: int | None) -> list[dict]:
    if version_id is None:
        return []
    f = scope.report_files(int(version_id))
    return [{"value": int(r.id), "label": f"{r.name} ({r.size:,} B)"} for r in f.itertuples()]


def layout(scope, lang: str) -> html.Div:
    archive = archive_table(scope, lang)
    versions = version_options(scope, lang)
    first = versions[0]["value"] if versions else None
    return html.Div([
        html.H3(t("reports.archive", lang)), html.P(t("reports.archive_note", lang), className="note"),
        data_table("reports-archive-table", archive, lang=lang, page_size=15, empty=t("reports.none", lang)),
        html.H3(t("reports.download", lang)),
        html.Div(className="downloads", children=[
            dcc.Dropdown(id="reports-version", options=versions, value=first, clearable=False,
                         placeholder=t("reports.version", lang), style={"minWidth": "260px"}),
            dcc.Dropdown(id="reports-file", options=file_options(scope, first), clearable=False,
                         placeholder=t("reports.file", lang), style={"minWidth": "360px"}),
            html.Button(t("reports.download", lang), id="reports-get", className="dl"),
            dcc.Download(id="reports-download"),
        ]),
        html.H3(t("reports.runs", lang)),
        data_table("reports-runs-table", runs_table(scope, lang), lang=lang, page_size=15,
                   wrap=(t("reports.col.detail", lang),), empty=t("reports.none", lang)),
        html.H3(t("reports.jobs", lang)), html.P(t("reports.jobs_note", lang), className="note"),
        data_table("reports-jobs-table", job_runs_table(scope, lang), lang=lang, page_size=10,
                   wrap=(t("reports.col.detail", lang),), empty=t("reports.none", lang)),
    ])


def register(callbacks) -> None:
    @callbacks.callback(Output("reports-file", "options"), Output("reports-file", "value"),
                        Input("reports-version", "value"), prevent_initial_call=True, action="choose version")
    def choose_version(scope, lang: str, version_id):
        options = file_options(scope, version_id)
        return options, (options[0]["value"] if options else None)

    @callbacks.callback(Output("reports-download", "data"), Input("reports-get", "n_clicks"),
                        State("reports-version", "value"), State("reports-file", "value"), prevent_initial_call=True,
                        action="download report")
    def download(scope, lang: str, _clicks, version_id, file_id):
        if version_id is None or file_id is None:
            return no_update
        name, data = scope.report_file(int(version_id), int(file_id))
        return dcc.send_bytes(data, name)
