"""One chart theme for every figure of the portal: the park palette, readable axes, thousands separators, and
Chinese date labels on Chinese pages (English ones on English pages).  A dark variant serves the big screen
(驾驶舱, portal/pages/cockpit.py).

Pages never style a figure themselves: they build it and hand it to `portal.components.graph`, which applies
`apply(fig, lang)`; tests/test_portal_theme.py checks that no page makes a dcc.Graph another way.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio

# The park palette: the portal's green first, then colours that stay apart for colour-blind readers.
PALETTE = ("#2e7d4f", "#e0a526", "#3b6ea8", "#b5533c", "#7a5ca3", "#4aa3a0", "#8c8c3a", "#c06c9b")
GOOD, WARN, BAD, NEUTRAL = "#2e7d4f", "#e0a526", "#b00020", "#8a968f"
FONT = "Noto Sans CJK SC, Source Han Sans SC, PingFang SC, Microsoft YaHei, Helvetica, Arial, sans-serif"
INK, GRID = "#1d2b24", "#e3e8e5"
DARK_BG, DARK_PANEL, DARK_INK, DARK_GRID = "#0b1a14", "#12261d", "#e6efe9", "#28453a"

# Date tick labels by zoom level (d3 time formats; plotly's `dtickrange` in milliseconds or months).
DATE_FORMATS = {
    "zh-CN": [(None, 3_600_000, "%H:%M"), (3_600_000, 86_400_000, "%m月%d日 %H时"),
              (86_400_000, "M1", "%m月%d日"), ("M1", "M12", "%Y年%m月"), ("M12", None, "%Y年")],
    "en": [(None, 3_600_000, "%H:%M"), (3_600_000, 86_400_000, "%b %d %H:%M"),
           (86_400_000, "M1", "%b %d"), ("M1", "M12", "%b %Y"), ("M12", None, "%Y")],
}
HOVER_DATE = {"zh-CN": "%Y年%m月%d日 %H:%M", "en": "%Y-%m-%d %H:%M"}


def _template(dark: bool) -> go.layout.Template:
    ink, grid = (DARK_INK, DARK_GRID) if dark else (INK, GRID)
    axis = {"gridcolor": grid, "linecolor": grid, "zerolinecolor": grid, "tickfont": {"size": 13, "color": ink},
            "title": {"font": {"size": 13, "color": ink}}, "automargin": True, "separatethousands": True,
            "exponentformat": "none"}
    return go.layout.Template(layout={
        "colorway": list(PALETTE), "separators": ".,",
        "font": {"family": FONT, "size": 13, "color": ink},
        "title": {"font": {"size": 16, "color": ink}, "x": 0.01, "xanchor": "left"},
        "paper_bgcolor": DARK_PANEL if dark else "white", "plot_bgcolor": DARK_PANEL if dark else "white",
        "xaxis": axis, "yaxis": axis,
        "legend": {"font": {"size": 12, "color": ink}, "orientation": "h"},
        "hoverlabel": {"font": {"family": FONT, "size": 13}},
        "margin": {"l": 60, "r": 30, "t": 60, "b": 50},
    })


pio.templates["parkcarbon"] = _template(dark=False)
pio.templates["parkcarbon_dark"] = _template(dark=True)
pio.templates.default = "parkcarbon"


def _is_time(values) -> bool:
    if values is None:
        return False
    try:
        first = next(iter(values), None)
    except TypeError:
        return False
    if isinstance(first, dt.datetime | dt.date | np.datetime64 | pd.Timestamp):
        return True
    if isinstance(first, str) and len(first) >= 10 and first[4] == "-" and first[7] == "-":
        return not pd.isna(pd.to_datetime(first, errors="coerce"))
    return False


def apply(fig: go.Figure, lang: str, dark: bool = False) -> go.Figure:
    """Theme `fig` in place (and return it): the park template, and date axes labelled in `lang`."""
    # A figure made after this module was imported already has the park template (the default): setting it again
    # costs a deep copy per figure, so only the dark screen's and stray figures get it set.
    if dark or tuple(fig.layout.template.layout.colorway or ()) != PALETTE or fig.layout.template.layout.paper_bgcolor \
            == DARK_PANEL:
        fig.update_layout(template="parkcarbon_dark" if dark else "parkcarbon")
    if any(_is_time(getattr(tr, "x", None)) for tr in fig.data):
        stops = [{"dtickrange": [lo, hi], "value": f} for lo, hi, f in DATE_FORMATS.get(lang, DATE_FORMATS["en"])]
        fig.update_xaxes(tickformatstops=stops, hoverformat=HOVER_DATE.get(lang, HOVER_DATE["en"]))
    return fig
