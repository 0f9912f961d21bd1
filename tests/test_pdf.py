"""portal/pdf.py: Chinese text survives (extracted by poppler's pdftotext), the CJK font is embedded as a subset
(pdffonts), numbers are formatted and missing ones shown as a dash, charts draw, and the same content gives the
same bytes."""

from __future__ import annotations

import os
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from portal.pdf import DASH, Column, PdfDocument, PdfFontError, find_font, format_number

POPPLER = shutil.which("pdftotext") and shutil.which("pdffonts") and shutil.which("pdftoppm")
needs_poppler = pytest.mark.skipif(not POPPLER and os.environ.get("CI") != "true",
                                   reason="poppler-utils (pdftotext, pdffonts, pdftoppm) not installed")
AT = datetime(2026, 11, 3, 1, 0, tzinfo=UTC)


def _document() -> PdfDocument:
    doc = PdfDocument("园区能源与碳排放月报", "Park energy and emissions monthly report", subtitle="2026-10",
                      generated_at=AT)
    doc.heading("能源消费", "Energy consumption")
    doc.paragraph("本报告数据完整率 93.5%。", "Data coverage of this report: 93.5 %.")
    doc.kv([("企业", "Enterprise", "华东钢构有限公司"), ("综合能耗", "Energy", 12345.678)])
    doc.table([Column("企业", "Enterprise"), Column("电力", "Electricity", "kWh", numeric=True, decimals=0),
               Column("排放", "Emissions", "tCO2e", numeric=True, decimals=2)],
              [["华东钢构", 1234567.4, 765.4321], ["绿源纺织", None, 0.0]] * 40,
              note="— 表示缺少数据，不是零。 A dash means missing, not zero.")
    doc.bar_chart("月度用电", "Monthly electricity", ["1月", "2月", "3月"], [10.0, None, 30.0], "MWh")
    doc.line_chart("配额消耗预测", "Quota burn-down", ["01", "02", "03", "04"], {"p50": [1.0, 2.0, None, 4.0]},
                   "tCO2e", band=([0.5, 1.5, 2.5, 3.0], [1.5, 2.5, 3.5, 5.0]), band_label="80 %")
    return doc


def test_number_format_never_turns_missing_into_zero():
    assert format_number(1234567.891, 2) == "1,234,567.89"
    assert format_number(None) == DASH
    assert format_number(float("nan")) == DASH
    assert format_number(0.0, 1) == "0.0"
    assert format_number(12) == "12"


def test_same_content_same_bytes():
    assert _document().to_bytes() == _document().to_bytes()


def test_generated_at_must_be_aware():
    with pytest.raises(ValueError):
        PdfDocument("标题", "Title", generated_at=datetime(2026, 1, 1))


def test_missing_font_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("PARKCARBON_PDF_FONT", str(tmp_path / "none.ttf"))
    with pytest.raises(PdfFontError, match="does not exist"):
        find_font()
    bad = tmp_path / "bad.ttf"
    bad.write_bytes(b"not a font")
    with pytest.raises(PdfFontError, match="cannot use"):
        PdfDocument("标题", "Title", generated_at=AT, font=bad)


@needs_poppler
def test_chinese_text_and_numbers_extract_and_font_is_an_embedded_subset(tmp_path: Path):
    path = tmp_path / "r.pdf"
    path.write_bytes(_document().to_bytes())
    text = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True,
                          check=True).stdout
    assert "园区能源与碳排放月报" in text and "Park energy and emissions monthly report" in text
    assert "1,234,567" in text and "765.43" in text
    assert "华东钢构有限公司" in text and "12,345.7" in text
    assert "第 1 页" in text and "Page 1 of" in text
    fonts = subprocess.run(["pdffonts", str(path)], capture_output=True, text=True, check=True).stdout
    rows = [line.split() for line in fonts.splitlines()[2:] if line.strip()]
    assert rows, fonts
    for row in rows:  # every font embedded (emb) and subset (sub): readable without CJK fonts installed
        assert row[-5:-3] == ["yes", "yes"], fonts
    subprocess.run(["pdftoppm", "-r", "40", "-png", "-f", "1", "-l", "1", str(path), str(tmp_path / "p")],
                   check=True)
    image = next(tmp_path.glob("p*.png"))
    assert image.stat().st_size > 2000


def test_the_bundled_face_is_used_unless_a_character_is_missing_from_it():
    from portal.pdf import BUNDLED_FONT, choose_font, system_font

    assert choose_font(set("园区能源与碳排放月报 Monthly 12,345.6 tCO2e ×"))[0] == BUNDLED_FONT
    rare = set("䶮")  # CJK Extension A: not in GB 2312
    full = system_font()
    assert choose_font(rare) == (full if full else (BUNDLED_FONT, 0))


@needs_poppler
def test_a_rare_character_is_still_drawn(tmp_path: Path):
    from portal.pdf import system_font

    if system_font() is None:
        pytest.skip("no full CJK system font (fonts-noto-cjk) to draw characters outside GB 2312")
    doc = PdfDocument("企业 䶮 科技", "Enterprise report", generated_at=AT)
    doc.table([Column("企业", "Enterprise")], [["䶮龑科技有限公司"]])
    path = tmp_path / "rare.pdf"
    path.write_bytes(doc.to_bytes())
    text = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True).stdout
    assert "䶮龑科技有限公司" in text
