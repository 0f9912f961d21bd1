"""Administration (系统管理, administrator only): users and roles (list; add or reset a user), the park's
enterprises and meters with the last park-file imports, the factor table and the park's overrides, quotas and the
append-only ledger (a form appends a movement: a correction is a new movement, never an edit), and the audit log.

Every callback refuses any role but the administrator on the server (portal.callbacks: HTTP 403, nothing written,
the refusal audit-logged), so a crafted request to /_dash-update-component changes nothing; the scope's
administration methods refuse other roles again; every change is audit-logged."""

from __future__ import annotations

import dash_mantine_components as dmc
import pandas as pd
from dash import Input, Output, State, html
from dash import ctx as dash_ctx

from carbon.errors import CarbonError, CcerCapError
from carbon.factors import FactorRegistry
from carbon.quota import MOVEMENTS, balances
from portal import downloads
from portal.auth import AuthError, Role
from portal.components import data_table
from portal.i18n import industry_name, t
from portal.i18n import register as register_text

PATH = "/admin"
TITLE_KEY = "nav.admin"
ROLES = {Role.ADMIN}
TABS = ("users", "park", "factors", "quotas", "audit")
AUDIT_ROWS = 500
HELD_MOVEMENTS = ("purchase", "sale", "ccer_offset", "surrender")  # beside the allocated total in the accounts

TEXT = {
    "nav.admin": {"zh-CN": "系统管理", "en": "Administration"},
    "admin.tab.users": {"zh-CN": "用户与角色", "en": "Users and roles"},
    "admin.tab.park": {"zh-CN": "企业与计量表", "en": "Enterprises and meters"},
    "admin.tab.factors": {"zh-CN": "排放因子", "en": "Emission factors"},
    "admin.tab.quotas": {"zh-CN": "碳配额与台账", "en": "Quotas and ledger"},
    "admin.tab.audit": {"zh-CN": "审计日志", "en": "Audit log"},
    "admin.users": {"zh-CN": "用户", "en": "Users"},
    "admin.user_form": {"zh-CN": "新增或重置用户", "en": "Add or reset a user"},
    "admin.user.name": {"zh-CN": "用户名", "en": "User name"},
    "admin.user.display": {"zh-CN": "显示名称", "en": "Display name"},
    "admin.user.role": {"zh-CN": "角色", "en": "Role"},
    "admin.user.enterprise": {"zh-CN": "所属企业（仅企业用户）", "en": "Enterprise (enterprise users only)"},
    "admin.user.password": {"zh-CN": "密码（至少 10 个字符）", "en": "Password (at least 10 characters)"},
    "admin.user.replace": {"zh-CN": "重置已有用户", "en": "Reset an existing user"},
    "admin.user.active": {"zh-CN": "启用", "en": "Active"},
    "admin.user.created": {"zh-CN": "创建时间", "en": "Created"},
    "admin.user.last_login": {"zh-CN": "最近登录", "en": "Last login"},
    "admin.user.saved": {"zh-CN": "已保存用户 {name}", "en": "User {name} saved"},
    "admin.save": {"zh-CN": "保存", "en": "Save"},
    "admin.err.name": {"zh-CN": "请填写用户名", "en": "Enter a user name"},
    "admin.err.role": {"zh-CN": "请选择角色", "en": "Choose a role"},
    "admin.err.password": {"zh-CN": "请填写密码", "en": "Enter a password"},
    "admin.err.enterprise_needed": {"zh-CN": "企业用户必须绑定一个企业",
                                    "en": "An enterprise user needs its enterprise"},
    "admin.err.exists": {"zh-CN": "用户 {name} 已存在：勾选“重置已有用户”以重置",
                         "en": "User {name} exists: tick “Reset an existing user” to reset it"},
    "admin.err.not_saved": {"zh-CN": "未保存：", "en": "Not saved: "},
    "admin.enterprises": {"zh-CN": "企业", "en": "Enterprises"},
    "admin.meters": {"zh-CN": "计量表", "en": "Meters"},
    "admin.imports": {"zh-CN": "园区文件导入记录", "en": "Park file imports"},
    "admin.park_note": {"zh-CN": "来自园区文件（只读）；修改请编辑园区文件并重新导入",
                        "en": "From the park file (read-only): edit the park file and import it again to change it"},
    "admin.col.id": {"zh-CN": "编号", "en": "ID"},
    "admin.col.name": {"zh-CN": "名称", "en": "Name"},
    "admin.col.name_en": {"zh-CN": "英文名称", "en": "English name"},
    "admin.col.industry": {"zh-CN": "行业", "en": "Industry"},
    "admin.col.credit_code": {"zh-CN": "统一社会信用代码", "en": "Credit code"},
    "admin.col.province": {"zh-CN": "省份", "en": "Province"},
    "admin.col.workshop": {"zh-CN": "车间", "en": "Workshop"},
    "admin.col.interval": {"zh-CN": "计量区间 (分钟)", "en": "Interval (min)"},
    "admin.col.model": {"zh-CN": "型号", "en": "Model"},
    "admin.col.address": {"zh-CN": "通信地址", "en": "Address"},
    "admin.col.imported_at": {"zh-CN": "导入时间", "en": "Imported"},
    "admin.col.actor": {"zh-CN": "操作人", "en": "By"},
    "admin.col.file": {"zh-CN": "文件", "en": "File"},
    "admin.col.sha256": {"zh-CN": "SHA-256（前 12 位）", "en": "SHA-256 (first 12)"},
    "admin.col.added": {"zh-CN": "新增", "en": "Added"},
    "admin.col.updated": {"zh-CN": "更新", "en": "Updated"},
    "admin.col.reactivated": {"zh-CN": "恢复", "en": "Reactivated"},
    "admin.col.deactivated": {"zh-CN": "停用", "en": "Deactivated"},
    "admin.col.unchanged": {"zh-CN": "未变", "en": "Unchanged"},
    "admin.factors_shipped": {"zh-CN": "内置排放因子与折标系数",
                              "en": "Shipped factors and coal-equivalent coefficients"},
    "admin.factors_overrides": {"zh-CN": "本园区覆盖值（最近一次导入）", "en": "The park's overrides (latest import)"},
    "admin.factor_imports": {"zh-CN": "因子文件导入记录", "en": "Factor file imports"},
    "admin.col.kind": {"zh-CN": "类别", "en": "Kind"},
    "admin.col.key": {"zh-CN": "对象", "en": "Key"},
    "admin.col.parameter": {"zh-CN": "参数", "en": "Parameter"},
    "admin.col.region": {"zh-CN": "地区", "en": "Region"},
    "admin.col.value": {"zh-CN": "数值", "en": "Value"},
    "admin.col.valid_from": {"zh-CN": "生效日", "en": "Valid from"},
    "admin.col.valid_to": {"zh-CN": "失效日", "en": "Valid to"},
    "admin.col.data_year": {"zh-CN": "数据年份", "en": "Data year"},
    "admin.col.source": {"zh-CN": "来源", "en": "Source"},
    "admin.col.publication": {"zh-CN": "出处", "en": "Publication"},
    "admin.col.verified": {"zh-CN": "已核实", "en": "Verified"},
    "admin.col.origin": {"zh-CN": "文件行", "en": "File line"},
    "admin.col.reason": {"zh-CN": "原因", "en": "Reason"},
    "admin.yes": {"zh-CN": "是", "en": "yes"},
    "admin.no": {"zh-CN": "否", "en": "no"},
    "admin.none": {"zh-CN": "无", "en": "none"},
    "admin.quota.year": {"zh-CN": "履约年度", "en": "Compliance year"},
    "admin.quota.positions": {"zh-CN": "{year} 年各企业配额账户（吨）", "en": "Allowance accounts {year} (t)"},
    "admin.quota.ledger": {"zh-CN": "{enterprise} {year} 年台账（只追加，更正请新增调整）",
                           "en": "Ledger of {enterprise}, {year} (append-only: correct with an adjustment)"},
    "admin.quota.form": {"zh-CN": "新增台账记录", "en": "Append a movement"},
    "admin.quota.plan": {"zh-CN": "分配方案", "en": "Plan"},
    "admin.quota.plan_absolute": {"zh-CN": "总量 {t:,.1f} t", "en": "absolute {t:,.1f} t"},
    "admin.quota.plan_intensity": {"zh-CN": "基准 {b} t/{unit} × 基准产量 {q:,.1f}",
                                   "en": "benchmark {b} t/{unit} × base output {q:,.1f}"},
    "admin.quota.allocated": {"zh-CN": "已分配（含核定与调整）", "en": "Allocated (incl. true-up, adjustments)"},
    "admin.quota.holdings": {"zh-CN": "持有", "en": "Holdings"},
    "admin.col.recorded": {"zh-CN": "记录时间", "en": "Recorded"},
    "admin.col.amount": {"zh-CN": "数量 (t)", "en": "Amount (t)"},
    "admin.col.price": {"zh-CN": "价格 (元/t)", "en": "Price (CNY/t)"},
    "admin.col.reference": {"zh-CN": "凭证", "en": "Reference"},
    "admin.col.note": {"zh-CN": "备注", "en": "Note"},
    "admin.col.corrects": {"zh-CN": "更正记录号", "en": "Corrects entry"},
    "admin.col.due": {"zh-CN": "应清缴量 (t，CCER 必填)", "en": "Allowances due (t, for CCER)"},
    "admin.movement.saved": {"zh-CN": "已记录台账第 {id} 条", "en": "Ledger entry {id} recorded"},
    "admin.err.movement": {"zh-CN": "未记录：", "en": "Not recorded: "},
    "admin.err.ccer": {"zh-CN": "超出 CCER 抵销上限：", "en": "Beyond the CCER cap: "},
    "admin.err.amount": {"zh-CN": "请填写数量", "en": "Enter an amount"},
    "admin.err.kind": {"zh-CN": "请选择类型", "en": "Choose a kind of movement"},
    "admin.err.enterprise": {"zh-CN": "请选择本园区的企业", "en": "Choose an enterprise of this park"},
    "admin.kind.allocation": {"zh-CN": "分配", "en": "Allocation"},
    "admin.kind.true_up": {"zh-CN": "核定调整", "en": "True-up"},
    "admin.kind.adjustment": {"zh-CN": "调整", "en": "Adjustment"},
    "admin.kind.purchase": {"zh-CN": "买入", "en": "Purchase"},
    "admin.kind.sale": {"zh-CN": "卖出", "en": "Sale"},
    "admin.kind.ccer_offset": {"zh-CN": "CCER 抵销", "en": "CCER offset"},
    "admin.kind.surrender": {"zh-CN": "清缴", "en": "Surrender"},
    "admin.audit": {"zh-CN": "审计日志（最近 {n} 条）", "en": "Audit log (latest {n})"},
    "admin.col.at": {"zh-CN": "时间", "en": "Time"},
    "admin.col.user": {"zh-CN": "用户", "en": "User"},
    "admin.col.action": {"zh-CN": "操作", "en": "Action"},
    "admin.col.target": {"zh-CN": "对象", "en": "Target"},
    "admin.col.detail": {"zh-CN": "详情", "en": "Detail"},
}
register_text(TEXT)


# ---- helpers ---------------------------------------------------------------------------------------------------


def _local(value, scope) -> str:
    if value is None or pd.isna(value):
        return ""
    return pd.Timestamp(value).tz_convert(scope.park.tz).strftime("%Y-%m-%d %H:%M")


def _optional_int(values: pd.Series) -> pd.Series:
    """Whole numbers shown as such, blanks as blanks (not 7.0 and NaN)."""
    return pd.Series([None if pd.isna(v) else int(v) for v in values], index=values.index, dtype=object)


def _enterprise_options(scope, lang: str) -> list[dict[str, str]]:
    names = scope.names(lang)
    return [{"value": e.id, "label": f"{e.id} {names[e.id]}"} for e in scope.enterprises()]


def _table(table_id: str, frame: pd.DataFrame, lang: str, page_size: int = 15):
    """A sortable (and, when long, paged and filterable) grid (portal.components.data_table); long text wraps."""
    wrap = {t(k, lang) for k in ("admin.col.source", "admin.col.publication", "admin.col.detail", "admin.col.reason",
                                 "admin.col.note", "admin.quota.plan")}
    return data_table(table_id, frame, lang=lang, page_size=page_size, wrap=wrap, empty=t("admin.none", lang))


def _columns(frame: pd.DataFrame, names: dict[str, str], lang: str) -> pd.DataFrame:
    """Keep and translate the columns `names` maps (column -> translation key)."""
    return frame[list(names)].rename(columns={c: t(k, lang) for c, k in names.items()})


def _message(text: str, ok: bool) -> dmc.Alert:
    return dmc.Alert(text, color="green" if ok else "red", variant="light")


def _number(value: object) -> float | None:
    """A NumberInput's value: a number, or None when left empty."""
    return None if value in (None, "") else float(value)


# ---- users -----------------------------------------------------------------------------------------------------


def users_table(scope, lang: str) -> pd.DataFrame:
    names = scope.names(lang)
    rows = scope.users()
    return pd.DataFrame({
        t("admin.user.name", lang): [r.username for r in rows],
        t("admin.user.display", lang): [r.display_name for r in rows],
        t("admin.user.role", lang): [t(f"role.{r.role}", lang) for r in rows],
        t("col.enterprise", lang): [names.get(r.enterprise_id, "") for r in rows],
        t("admin.user.active", lang): [t("admin.yes" if r.active else "admin.no", lang) for r in rows],
        t("admin.user.created", lang): [_local(r.created_at, scope) for r in rows],
        t("admin.user.last_login", lang): [_local(r.last_login_at, scope) for r in rows],
    })


def save_user(scope, name: str | None, display: str | None, role: str | None,
              enterprise: str | None, password: str | None, replace: bool, lang: str) -> tuple[bool, str]:
    """Add or reset a user (portal.auth.add_user hashes the password); audit-logged.  (ok, message)."""
    name = (name or "").strip()
    if not name:
        return False, t("admin.err.name", lang)
    if role not in {r.value for r in Role}:
        return False, t("admin.err.role", lang)
    if not password:
        return False, t("admin.err.password", lang)
    enterprise = enterprise if role == Role.ENTERPRISE else None
    if role == Role.ENTERPRISE and not enterprise:
        return False, t("admin.err.enterprise_needed", lang)
    exists = any(r.username == name for r in scope.users())
    if exists and not replace:
        return False, t("admin.err.exists", lang).format(name=name)
    try:
        scope.add_user(name, password, role, enterprise, (display or "").strip(), replace=exists)
    except AuthError as exc:
        return False, t("admin.err.not_saved", lang) + str(exc)
    scope.record("user_reset" if exists else "user_add", name, role=role, enterprise=enterprise)
    return True, t("admin.user.saved", lang).format(name=name)


def _users_panel(scope, lang: str) -> list:
    roles = [{"value": r.value, "label": t(f"role.{r.value}", lang)} for r in Role]
    enterprises = _enterprise_options(scope, lang)
    form = dmc.Paper(withBorder=True, p="md", mt="md", maw=520, children=dmc.Stack(gap="xs", children=[
        dmc.Text(t("admin.user_form", lang), fw=600),
        dmc.TextInput(id="admin-user-name", label=t("admin.user.name", lang)),
        dmc.TextInput(id="admin-user-display", label=t("admin.user.display", lang)),
        dmc.Select(id="admin-user-role", label=t("admin.user.role", lang), data=roles),
        dmc.Select(id="admin-user-enterprise", label=t("admin.user.enterprise", lang), data=enterprises,
                   clearable=True, searchable=True),
        dmc.PasswordInput(id="admin-user-password", label=t("admin.user.password", lang)),
        dmc.Checkbox(id="admin-user-replace", label=t("admin.user.replace", lang), checked=False),
        dmc.Button(t("admin.save", lang), id="admin-user-save", n_clicks=0),
        html.Div(id="admin-user-message"),
    ]))
    return [html.H3(t("admin.users", lang)), html.Div(_table("admin-users-table", users_table(scope, lang), lang),
                                                      id="admin-users"), form]


# ---- park ------------------------------------------------------------------------------------------------------


def enterprises_table(scope, lang: str) -> pd.DataFrame:
    return pd.DataFrame({
        t("admin.col.id", lang): [e.id for e in scope.park.enterprises],
        t("admin.col.name", lang): [e.name for e in scope.park.enterprises],
        t("admin.col.name_en", lang): [e.name_en for e in scope.park.enterprises],
        t("admin.col.industry", lang): [industry_name(e.industry, lang) for e in scope.park.enterprises],
        t("admin.col.credit_code", lang): [e.credit_code for e in scope.park.enterprises],
        t("admin.col.province", lang): [e.province or scope.park.province or "" for e in scope.park.enterprises],
    })


def meters_table(scope, lang: str) -> pd.DataFrame:
    meters = scope.park.meters
    return pd.DataFrame({
        t("admin.col.id", lang): [m.id for m in meters],
        t("col.enterprise", lang): [m.enterprise for m in meters],
        t("admin.col.workshop", lang): [m.workshop or "" for m in meters],
        t("col.carrier", lang): [t(f"carrier.{m.carrier.value}", lang) for m in meters],
        t("col.unit", lang): [m.unit for m in meters],
        t("admin.col.interval", lang): [m.interval_s // 60 for m in meters],
        t("admin.col.model", lang): [m.model or "" for m in meters],
        t("admin.col.address", lang): [m.address or "" for m in meters],
    })


def import_runs_table(scope, lang: str, limit: int = 20) -> pd.DataFrame:
    """The latest park-file imports (park.metadata.ImportRun), newest first."""
    runs = scope.import_runs(limit)
    counts = ("added", "updated", "reactivated", "deactivated", "unchanged")
    return pd.DataFrame({
        t("admin.col.id", lang): [r.id for r in runs],
        t("admin.col.imported_at", lang): [_local(r.imported_at, scope) for r in runs],
        t("admin.col.actor", lang): [r.actor for r in runs],
        t("admin.col.file", lang): [r.source_path or "" for r in runs],
        t("admin.col.sha256", lang): [(r.source_sha256 or "")[:12] for r in runs],
        **{t(f"admin.col.{c}", lang): [getattr(r, c) for r in runs] for c in counts},
    })


def _park_panel(scope, lang: str) -> list:
    return [html.P(t("admin.park_note", lang), className="note"),
            html.H3(t("admin.enterprises", lang)),
            _table("admin-enterprises-table", enterprises_table(scope, lang), lang),
            html.H3(t("admin.meters", lang)), _table("admin-meters-table", meters_table(scope, lang), lang),
            html.H3(t("admin.imports", lang)), _table("admin-imports-table", import_runs_table(scope, lang), lang)]


# ---- factors ---------------------------------------------------------------------------------------------------

FACTOR_COLUMNS = {"kind": "admin.col.kind", "key": "admin.col.key", "parameter": "admin.col.parameter",
                  "region": "admin.col.region", "value": "admin.col.value", "unit": "col.unit",
                  "valid_from": "admin.col.valid_from", "valid_to": "admin.col.valid_to",
                  "data_year": "admin.col.data_year", "verified": "admin.col.verified",
                  "source": "admin.col.source", "publication": "admin.col.publication", "origin": "admin.col.origin"}


def factor_table(rows_frame: pd.DataFrame, lang: str) -> pd.DataFrame:
    """Factor rows (FactorRegistry.frame) as shown: validity as dates, the verified flag in words."""
    f = rows_frame.copy()
    for c in ("valid_from", "valid_to"):
        f[c] = f[c].map(lambda d: "" if d is None or pd.isna(d) else str(d))
    f["data_year"] = f["data_year"].map(lambda v: "" if pd.isna(v) else str(int(v)))
    f["verified"] = f["verified"].map(lambda v: t("admin.yes" if v else "admin.no", lang))
    return _columns(f, FACTOR_COLUMNS, lang)


def _factors_panel(scope, lang: str) -> list:
    shipped = FactorRegistry.shipped()
    overrides = scope.factor_overrides()
    imports = scope.factor_imports()
    if len(imports):
        imports = imports.assign(imported_at=imports["imported_at"].map(lambda v: _local(v, scope)))
        imports = _columns(imports, {"id": "admin.col.id", "imported_at": "admin.col.imported_at",
                                     "actor": "admin.col.actor", "source_path": "admin.col.file",
                                     "reason": "admin.col.reason"}, lang)
    return [html.H3(t("admin.factors_shipped", lang)),
            _table("admin-factors-table", factor_table(shipped.frame(), lang), lang),
            html.H3(t("admin.factors_overrides", lang)),
            _table("admin-overrides-table", factor_table(shipped.frame(overrides), lang) if overrides
                   else pd.DataFrame(), lang),
            html.H3(t("admin.factor_imports", lang)), _table("admin-factor-imports-table", imports, lang)]


# ---- quotas and ledger -----------------------------------------------------------------------------------------


def _plan_text(plan, lang: str) -> str:
    if plan is None:
        return ""
    if plan.method == "absolute":
        return t("admin.quota.plan_absolute", lang).format(t=plan.absolute_t)
    return t("admin.quota.plan_intensity", lang).format(b=plan.benchmark_t_per_unit, unit=plan.unit,
                                                         q=plan.base_output)


def accounts_table(scope, year: int, lang: str) -> pd.DataFrame:
    """Per enterprise: the plan, the tonnes allocated (allocation, true-up and adjustments), bought, sold, offset
    and surrendered, and held (carbon.quota.balances)."""
    bal = balances(scope.enterprise_ledger(year)).set_index("enterprise")
    plans = {p.enterprise: p for p in scope.quota_plans(year)}
    names = scope.names(lang)
    ids = [e.id for e in scope.park.enterprises if e.id in bal.index or e.id in plans]
    frame = pd.DataFrame({t("col.enterprise", lang): [names[e] for e in ids],
                          t("admin.quota.plan", lang): [_plan_text(plans.get(e), lang) for e in ids]})
    shown = [("allocated_t", "admin.quota.allocated"), *((k, f"admin.kind.{k}") for k in HELD_MOVEMENTS),
             ("holdings_t", "admin.quota.holdings")]
    for col, key in shown:
        frame[t(key, lang)] = [round(float(bal.loc[e, col]), 3) if e in bal.index else 0.0 for e in ids]
    return frame


def ledger_table(scope, year: int, enterprise: str, lang: str) -> pd.DataFrame:
    led = scope.enterprise_ledger(year, enterprise)
    led = led.assign(recorded_at=led["recorded_at"].map(lambda v: _local(v, scope)),
                     kind=led["kind"].map(lambda k: t(f"admin.kind.{k}", lang)),
                     corrects_id=_optional_int(led["corrects_id"]))
    return _columns(led, {"id": "admin.col.id", "recorded_at": "admin.col.recorded", "kind": "admin.col.kind",
                          "amount_t": "admin.col.amount", "price_cny_per_t": "admin.col.price",
                          "reference": "admin.col.reference", "note": "admin.col.note",
                          "corrects_id": "admin.col.corrects", "actor": "admin.col.actor"}, lang)


def append_movement(scope, year: object, enterprise: str | None, kind: str | None, amount: object,
                    price: object, reference: str | None, note: str | None, corrects: object, due: object,
                    lang: str) -> tuple[bool, str]:
    """Append one movement (carbon.records.record_movement: oversold holdings, the CCER cap and unknown kinds are
    refused there) and audit-log it.  (ok, message)."""
    if enterprise not in {e.id for e in scope.park.enterprises}:
        return False, t("admin.err.enterprise", lang)
    if kind not in MOVEMENTS:
        return False, t("admin.err.kind", lang)
    amount_t = _number(amount)
    if amount_t is None:
        return False, t("admin.err.amount", lang)
    corrects_id = _number(corrects)
    try:
        entry = scope.record_movement(
            enterprise, int(year), kind, amount_t, price_cny_per_t=_number(price),
            reference=(reference or "").strip(), note=(note or "").strip(),
            corrects_id=None if corrects_id is None else int(corrects_id), allowances_due_t=_number(due))
    except CcerCapError as exc:
        return False, t("admin.err.ccer", lang) + str(exc)
    except CarbonError as exc:
        return False, t("admin.err.movement", lang) + str(exc)
    scope.record("ledger_movement", f"{enterprise}/{year}", id=entry, kind=kind, amount_t=amount_t,
                 reference=reference or "")
    return True, t("admin.movement.saved", lang).format(id=entry)


def quota_body(scope, year: int, enterprise: str, lang: str) -> list:
    name = scope.names(lang).get(enterprise, enterprise)
    return [html.H3(t("admin.quota.positions", lang).format(year=year)),
            _table("admin-accounts-table", accounts_table(scope, year, lang), lang),
            html.H3(t("admin.quota.ledger", lang).format(enterprise=name, year=year)),
            _table("admin-ledger-table", ledger_table(scope, year, enterprise, lang), lang)]


def _quotas_panel(scope, lang: str) -> list:
    year = scope.now().year
    enterprises = _enterprise_options(scope, lang)
    first = scope.park.enterprises[0].id if scope.park.enterprises else None
    kinds = [{"value": k, "label": t(f"admin.kind.{k}", lang)} for k in MOVEMENTS]
    form = dmc.Paper(withBorder=True, p="md", mt="md", maw=720, children=dmc.Stack(gap="xs", children=[
        dmc.Text(t("admin.quota.form", lang), fw=600),
        dmc.SimpleGrid(cols=2, children=[
            dmc.Select(id="admin-ledger-kind", label=t("admin.col.kind", lang), data=kinds, value="purchase"),
            dmc.NumberInput(id="admin-ledger-amount", label=t("admin.col.amount", lang), decimalScale=3),
            dmc.NumberInput(id="admin-ledger-price", label=t("admin.col.price", lang), decimalScale=2, min=0),
            dmc.TextInput(id="admin-ledger-reference", label=t("admin.col.reference", lang)),
            dmc.NumberInput(id="admin-ledger-corrects", label=t("admin.col.corrects", lang), min=1,
                            allowDecimal=False),
            dmc.NumberInput(id="admin-ledger-due", label=t("admin.col.due", lang), decimalScale=3, min=0),
        ]),
        dmc.TextInput(id="admin-ledger-note", label=t("admin.col.note", lang)),
        dmc.Button(t("admin.save", lang), id="admin-ledger-save", n_clicks=0),
        html.Div(id="admin-ledger-message"),
    ]))
    return [dmc.Group([dmc.NumberInput(id="admin-quota-year", label=t("admin.quota.year", lang), value=year,
                                       min=2000, max=2100, allowDecimal=False, w=160),
                       dmc.Select(id="admin-quota-enterprise", label=t("col.enterprise", lang), data=enterprises,
                                  value=first, w=320)]),
            html.Div(quota_body(scope, year, first, lang), id="admin-quota-body"), form]


# ---- audit log -------------------------------------------------------------------------------------------------


def audit_table(scope, lang: str) -> pd.DataFrame:
    ev = scope.audit_events(AUDIT_ROWS)
    ev = ev.assign(at=ev["at"].map(lambda v: _local(v, scope)))
    return _columns(ev, {"at": "admin.col.at", "user": "admin.col.user", "action": "admin.col.action",
                         "target": "admin.col.target", "detail": "admin.col.detail"}, lang)


def _audit_panel(scope, lang: str) -> list:
    table = audit_table(scope, lang)
    return [html.H3(t("admin.audit", lang).format(n=AUDIT_ROWS)), downloads.buttons("admin-audit", lang, table),
            html.Div(_table("admin-audit-table", table, lang, page_size=25), id="admin-audit")]


# ---- page ------------------------------------------------------------------------------------------------------


def layout(scope, lang: str) -> dmc.Tabs:
    panels = {"users": _users_panel, "park": _park_panel, "factors": _factors_panel, "quotas": _quotas_panel,
              "audit": _audit_panel}
    return dmc.Tabs(id="admin-tabs", value="users", persistence=True, persistence_type="session", children=[
        dmc.TabsList([dmc.TabsTab(t(f"admin.tab.{tab}", lang), value=tab, id=f"admin-tab-{tab}") for tab in TABS]),
        *(dmc.TabsPanel(html.Div(panels[tab](scope, lang), className="admin-panel"), value=tab, pt="md")
          for tab in TABS),
    ])


def register(callbacks) -> None:
    @callbacks.callback(Output("admin-user-message", "children"), Output("admin-users", "children"),
                        Output("admin-user-password", "value"), Input("admin-user-save", "n_clicks"),
                        State("admin-user-name", "value"), State("admin-user-display", "value"),
                        State("admin-user-role", "value"), State("admin-user-enterprise", "value"),
                        State("admin-user-password", "value"), State("admin-user-replace", "checked"),
                        State("lang", "data"), prevent_initial_call=True, action="save user")
    def user_form(scope, lang, _n, name, display, role, enterprise, password, replace):
        ok, text = save_user(scope, name, display, role, enterprise, password, bool(replace), lang)
        return _message(text, ok), _table("admin-users-table", users_table(scope, lang), lang), ""

    @callbacks.callback(Output("admin-quota-body", "children"), Output("admin-ledger-message", "children"),
                        Input("admin-quota-year", "value"), Input("admin-quota-enterprise", "value"),
                        Input("admin-ledger-save", "n_clicks"), State("admin-ledger-kind", "value"),
                        State("admin-ledger-amount", "value"), State("admin-ledger-price", "value"),
                        State("admin-ledger-reference", "value"), State("admin-ledger-note", "value"),
                        State("admin-ledger-corrects", "value"), State("admin-ledger-due", "value"),
                        State("lang", "data"), prevent_initial_call=True, action="ledger")
    def quotas(scope, lang, year, enterprise, _n, kind, amount, price, reference, note, corrects, due):
        year = int(_number(year) or scope.now().year)
        message = None
        if dash_ctx.triggered_id == "admin-ledger-save":
            ok, text = append_movement(scope, year, enterprise, kind, amount, price, reference, note, corrects,
                                       due, lang)
            message = _message(text, ok)
        return quota_body(scope, year, enterprise, lang), message

    callbacks.download("admin-audit", "audit-log", audit_table)
