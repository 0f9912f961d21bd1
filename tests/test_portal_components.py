"""The one table component (portal.components.data_table, dash-ag-grid): numbers right-aligned with thousands
separators and gaps as "—", shares as percentages, the grid's own words translated, wide tables scrolled not cut,
empty tables said so; and the grid's JavaScript served by the portal itself (parks run offline)."""

from __future__ import annotations

import re

import dash_ag_grid as dag
import pandas as pd
import pytest

from park.metadata import create_engine_from_url, import_park
from park.model import Enterprise, Meter, Park
from park.settings import Settings
from park.store.embedded import EmbeddedStore
from park.units import Carrier
from portal.app import create_app
from portal.auth import add_user
from portal.components import GRID_TEXT, data_table
from portal.context import PortalContext
from portal.i18n import t
from tests.support import portal as support

FRAME = pd.DataFrame({"企业": ["甲公司", "乙公司"], "能耗 (kWh)": [1234567.125, None], "年份": [2024, 2025],
                      "数据完整率": [0.875, 0.5], "说明": ["a", "b"]})


def test_numbers_are_right_aligned_with_separators_and_gaps_stay_gaps():
    grid = data_table("t", FRAME, percent=["数据完整率"])
    assert isinstance(grid, dag.AgGrid)
    cols = {c["field"]: c for c in grid.columnDefs}
    energy = cols["能耗 (kWh)"]
    assert energy["type"] == "rightAligned"
    fn = energy["valueFormatter"]["function"]
    assert "d3.format(',.3f')" in fn and "'—'" in fn  # thousands separators; a gap is a dash, never 0
    assert "d3.format('.1%')" in cols["数据完整率"]["valueFormatter"]["function"]
    assert "," not in cols["年份"]["valueFormatter"]["function"]  # 2024, not 2,024
    assert "type" not in cols["企业"] and cols["企业"]["minWidth"] >= 72
    assert data_table("t", FRAME, wrap=["说明"]).columnDefs[4]["wrapText"]
    pd.testing.assert_frame_equal(pd.DataFrame(grid.rowData), FRAME)  # the numbers are sent unformatted
    assert grid.rowData[1]["能耗 (kWh)"] is None  # a gap is sent as null
    assert [c["headerName"] for c in grid.columnDefs] == list(FRAME.columns)


def test_wide_tables_scroll_and_every_column_is_rendered():
    wide = pd.DataFrame({f"column number {i}": [float(i)] for i in range(40)})
    grid = data_table("w", wide)
    assert grid.columnSize == "autoSize" and grid.dashGridOptions["suppressColumnVirtualisation"]
    assert grid.dashGridOptions["suppressFieldDotNotation"]  # "No." or "1.5" in a header is not a path
    assert len(grid.columnDefs) == 40


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_the_grids_own_words_come_from_the_translation_table(lang):
    frame = FRAME if lang == "zh-CN" else FRAME.rename(columns={"企业": "Enterprise", "能耗 (kWh)": "Energy (kWh)",
                                                                 "年份": "Year", "数据完整率": "Coverage",
                                                                 "说明": "Note"})
    for grid in (data_table("t", frame), data_table("t", FRAME, lang=lang)):
        locale = grid.dashGridOptions["localeText"]
        assert set(locale) == set(GRID_TEXT) and locale["page"] == t("grid.page", lang)


def test_long_tables_are_paged_and_empty_ones_say_so():
    long = pd.DataFrame({"v": range(45)})
    grid = data_table("l", long, page_size=15)
    assert grid.dashGridOptions["pagination"] and grid.dashGridOptions["paginationPageSize"] == 15
    empty = data_table("e", FRAME.iloc[0:0], lang="en")
    assert not isinstance(empty, dag.AgGrid) and empty.children == "no data" and empty.id == "e"


def test_the_grid_script_is_served_by_the_portal_not_a_cdn(tmp_path):
    park = Park(id="p", name="园区", enterprises=(Enterprise("E1", "甲公司"),),
                meters=(Meter("E1-M1", Carrier.ELECTRICITY, "E1"),))
    engine = create_engine_from_url(f"sqlite:///{tmp_path / 'meta.db'}")
    import_park(engine, park)
    store = EmbeddedStore(tmp_path / "ts.duckdb", park.catalog(), "Asia/Shanghai")
    add_user(engine, "p", "admin", "correct horse battery", "admin")
    ctx = PortalContext(Settings(data_dir=tmp_path), engine, park, store)
    client = create_app(ctx, "k" * 32).server.test_client()
    support.login(client, "admin", "correct horse battery")
    html = client.get("/").get_data(as_text=True)
    scripts = re.findall(r'<script src="([^"]+)"', html)
    grid = [s for s in scripts if "dash_ag_grid" in s]
    assert grid and all(s.startswith("/_dash-component-suites/") for s in grid)
    assert not [s for s in scripts if s.startswith(("http:", "https:", "//"))]
    assert client.get(grid[0]).status_code == 200
    store.close()


def test_the_coverage_badge_says_complete_or_names_who_is_below_the_threshold():
    from portal.components import completeness_notes, coverage_badge

    ok = coverage_badge({"甲公司": 0.95, "乙公司": 0.9}, 0.9, "zh-CN", "b")
    assert ok.children == "数据完整" and "90.0%" in ok.title
    low = coverage_badge({"Alpha": 0.95, "Beta": 0.136, "Gamma": float("nan")}, 0.9, "en")
    assert low.children == "incomplete" and "Beta: 13.6%" in low.title and "Gamma: —" in low.title
    assert "Alpha" not in low.title
    assert completeness_notes({"Beta": 0.136}, 0.9, "en") == ("incomplete (coverage threshold 90.0%): Beta: 13.6%",)
    assert coverage_badge({}, 0.9, "en").children is None


def _digits_reference(values):
    """The pandas form _digits had (kept as the reference of the array form)."""
    finite = values.dropna()
    finite = finite[finite.abs() < 1e15]
    for d in range(5):
        if ((finite * 10**d).round(6) % 1 == 0).all():
            return d
    return 4


def test_the_decimals_a_column_needs_are_those_of_the_series_form():
    """portal.components._digits on arrays gives what its Series form gave, for any mix of values, gaps,
    infinities and huge numbers (Hypothesis), and for nullable columns."""
    import pandas as pd
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from portal.components import _digits

    @settings(max_examples=400, deadline=None)
    @given(st.lists(st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                              st.integers(-10**6, 10**6).map(lambda i: i / 1000),
                              st.integers(-10**17, 10**17).map(float)), max_size=20))
    def check(xs):
        s = pd.Series(xs, dtype=float)
        assert _digits(s) == _digits_reference(s)

    check()
    for s in (pd.Series([1, None, 3], dtype="Int64"), pd.Series([1.5, None], dtype="Float64"),
              pd.Series([1.25, 2]), pd.Series([], dtype=float)):
        assert _digits(s) == _digits_reference(s)
