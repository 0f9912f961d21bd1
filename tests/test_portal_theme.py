"""One chart theme (portal/theme.py) for every figure: no page makes a dcc.Graph but through
portal.components.graph, which applies the park palette, thousands separators and date labels in the page's
language."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go

from portal import theme
from portal.components import graph

PAGES = Path(__file__).resolve().parents[1] / "portal" / "pages"


def test_no_page_makes_a_graph_but_through_the_themed_one():
    offenders = [p.name for p in PAGES.glob("*.py") if re.search(r"\bGraph\(", p.read_text(encoding="utf-8"))]
    assert offenders == []


def test_a_chinese_page_labels_dates_in_chinese_and_separates_thousands():
    days = pd.date_range("2026-03-01", periods=5, freq="D", tz="Asia/Shanghai")
    g = graph(go.Figure(go.Bar(x=days, y=[1200.5, 2300, 3400, 4500, 5600])), "g", "zh-CN", title="每日用电量")
    layout = g.figure.layout
    assert layout.template.layout.colorway[0] == theme.PALETTE[0]
    assert layout.template.layout.separators == ".,"
    assert layout.template.layout.yaxis.separatethousands is True
    formats = {s.value for s in layout.xaxis.tickformatstops}
    assert "%m月%d日" in formats and "%Y年%m月" in formats
    english = graph(go.Figure(go.Bar(x=days, y=[1, 2, 3, 4, 5])), "g", "en").figure.layout
    assert "%b %d" in {s.value for s in english.xaxis.tickformatstops}


def test_category_axes_get_no_date_labels_and_the_dark_theme_is_dark():
    g = graph(go.Figure(go.Bar(x=["电力", "天然气"], y=[1, 2])), "g", "zh-CN", dark=True)
    assert not g.figure.layout.xaxis.tickformatstops
    assert g.figure.layout.template.layout.paper_bgcolor == theme.DARK_PANEL
