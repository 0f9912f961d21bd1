"""The one finding catalogue (park/findings.py): catalogue, docs and emitting code agree in both directions."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from park import findings
from park.findings import CATALOGUE, Finding, UnknownCode

ROOT = Path(__file__).resolve().parents[1]
DOC_OF_FAMILY = {"rule": "quality-rules.md", "carbon": "findings.md", "report": "findings.md",
                 "warning": "warnings.md", "anomaly": "warnings.md"}
PREFIXES = ("reading", "series", "meter", "payload", "register", "file", "activity", "factor", "instrument",
            "output", "grade", "quota", "warning", "anomaly", "report")
# A code-shaped string literal that is not a translation key ("quota.none": {"zh-CN": ...}).
LITERAL = re.compile(r"""(?<!\bt\()["'](({})\.[a-z_0-9]+)["'](?!\s*:\s*\{{)""".format("|".join(PREFIXES)))
ROW = re.compile(r"^\| `([a-z_]+\.[a-z_0-9]+)` \| ([a-z]+) \|", flags=re.M)


def documented() -> dict[str, list[tuple[str, str]]]:
    """code -> [(docs page, severity written there)] for every code row of the three catalogue pages."""
    out: dict[str, list[tuple[str, str]]] = {}
    for page in sorted(set(DOC_OF_FAMILY.values())):
        for code, severity in ROW.findall((ROOT / "docs" / page).read_text(encoding="utf-8")):
            out.setdefault(code, []).append((page, severity))
    return out


# File names that look like codes ("report.pdf") are not findings.
FILE_NAME = re.compile(r"\.(pdf|csv|xlsx|json|md|txt|html|png|zip|toml|sig)$")
# The evidence-pack verifier reports on a pack's files with its own vocabulary (signature.*, file.added ...), not
# findings about the park's data; it is left out of the scan.
NOT_FINDINGS = (ROOT / "portal" / "evidence",)
# Flags of carbon/risk.py's indicators (why a change is not computed: base.missing, ..., output.unchanged): a risk
# indicator's own vocabulary that happens to share the `output.` prefix.  To move into the catalogue or onto a
# prefix of its own (reported to the lead).
NOT_FINDING_CODES = {"output.unchanged"}


def emitted() -> set[str]:
    """Code-shaped literals the project's code makes (the catalogue itself left out)."""
    files = [p for d in ("collectors", "park", "portal", "carbon", "forecasting") for p in (ROOT / d).rglob("*.py")
             if p != ROOT / "park" / "findings.py" and not any(x in p.parents for x in NOT_FINDINGS)]
    return {m.group(1) for p in files for m in LITERAL.finditer(p.read_text(encoding="utf-8"))
            if not FILE_NAME.search(m.group(1)) and m.group(1) not in NOT_FINDING_CODES}


def test_every_catalogued_code_is_documented_once_on_its_familys_page_with_its_severity():
    docs = documented()
    assert set(docs) == set(CATALOGUE), (
        f"catalogued, not documented: {sorted(set(CATALOGUE) - set(docs))}; "
        f"documented, not catalogued: {sorted(set(docs) - set(CATALOGUE))}")
    for code, entry in CATALOGUE.items():
        assert docs[code] == [(DOC_OF_FAMILY[entry.family], entry.severity)], code


def test_every_catalogued_code_is_made_somewhere_and_every_code_made_is_catalogued():
    made = emitted()
    assert sorted(set(CATALOGUE) - made) == [], "catalogued but never made"
    assert sorted(made - set(CATALOGUE)) == [], "made but not catalogued"


def test_the_old_catalogues_are_views_of_the_one_catalogue():
    from carbon.issues import ISSUES, Issue
    from collectors.rules import RULES
    from park.store.validate import RULES as STORE_RULES

    assert set(RULES) == {c for c, e in CATALOGUE.items() if e.family == "rule"}
    assert set(STORE_RULES) <= set(RULES)
    assert {c: (e.severity, e.sentence) for c, e in CATALOGUE.items() if e.family == "carbon"} == ISSUES
    assert Issue is Finding
    assert RULES["reading.spike"].severity == "reject"


def test_a_finding_with_an_uncatalogued_code_is_refused_where_it_is_made():
    with pytest.raises(UnknownCode, match="activity.made_up"):
        Finding("activity.made_up", "no such code")
    f = Finding("activity.low_coverage", "E1 electricity 64.5 %", enterprise="E1", period="2026-03",
                expected=2976, observed=1920)
    assert (f.severity, f.family, f.level) == ("warning", "carbon", 2)


def test_severities_sort_on_one_scale_across_families():
    order = sorted(["reading.duplicate", "warning.quota_80", "activity.no_data", "warning.quota_100"],
                   key=lambda c: findings.entry(c).level)
    assert order == ["warning.quota_100", "activity.no_data", "warning.quota_80", "reading.duplicate"]


def test_every_warning_is_a_catalogued_finding():
    from portal.alerts import KIND_CODES, Alert

    assert set(KIND_CODES.values()) == {c for c, e in CATALOGUE.items() if e.family == "warning"}
    a = Alert("meter_silent", "M1", "never", "warning", "E1", None, "alert.what.meter_never",
              {"meter": "M1", "carrier": "electricity", "interval_min": 15})
    assert a.code == "warning.meter_silent" and a.finding().severity == a.severity
    with pytest.raises(UnknownCode):
        Alert("made_up", "M1", "never", "warning", "E1", pd.Timestamp("2026-01-01", tz="UTC"), "x")


def test_quota_findings_say_no_quota_for_an_enterprise_without_a_plan_never_deficit():
    from carbon.issues import quota_findings
    from carbon.quota import LEDGER_COLUMNS, position

    ledger = pd.DataFrame([
        {"id": 1, "enterprise": "E1", "year": 2026, "kind": "allocation", "amount_t": 100.0},
        {"id": 2, "enterprise": "E2", "year": 2026, "kind": "allocation", "amount_t": 100.0},
        {"id": 3, "enterprise": "E2", "year": 2026, "kind": "ccer_offset", "amount_t": 30.0},
    ]).reindex(columns=LEDGER_COLUMNS)
    emissions = pd.DataFrame({"enterprise": ["E1", "E2", "E3"], "year": 2026,
                              "emissions_t_co2e": [85.0, 120.0, 50.0]})
    plans = pd.DataFrame({"enterprise": ["E1", "E2"], "year": [2026, 2026]})
    found = {(f.code, f.enterprise) for f in quota_findings(position(ledger, emissions, 60.0, plans))}
    # E1: 85 % used; E2: 100 + 6 usable CCER (5 % of 120) < 120, 24 t beyond the cap; E3: no plan, no quota.
    assert found == {("quota.threshold", "E1"), ("quota.deficit", "E2"), ("quota.ccer_over_cap", "E2"),
                     ("quota.no_plan", "E3")}


def test_grade_findings_name_the_enterprises_graded_against_the_whole_park():
    from carbon.issues import grade_findings

    graded = pd.DataFrame({"enterprise": ["E1", "E2", "E3"], "period_start": pd.Timestamp("2026-03-01"),
                           "group": ["park", "industry:steel", "park"], "efficiency_index": [1.1, 0.9, None]})
    assert [(f.code, f.enterprise, f.period) for f in grade_findings(graded)] == [
        ("grade.no_group", "E1", "2026-03-01")]
