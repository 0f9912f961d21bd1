"""The data-quality rules: stable codes, severity and a sentence, the "rule" family of the one finding catalogue
(park/findings.py).  Documented in docs/quality-rules.md; codes never change meaning once released (reports and
warnings refer to them)."""

from __future__ import annotations

from park.findings import Code, codes

# A rule is an entry of the one catalogue (park/findings.py) of the family "rule": code, severity, sentence.
Rule = Code

RULES: dict[str, Rule] = codes("rule")


def sentence(code: str) -> str:
    return RULES[code].sentence
