"""Bilingual PDF documents (reports for regulators, evidence packs for banks) with an embedded CJK font subset.

One small layer over fpdf2 so every PDF we issue follows the same rules:

- **Chinese renders without CJK fonts on the reader's machine.** The Noto Sans CJK SC face (Debian
  `fonts-noto-cjk`, SIL Open Font License 1.1) is embedded as a subset of the glyphs used.  Another font can be
  chosen with `PARKCARBON_PDF_FONT=/path/font.ttf[#index]` (a TrueType/OpenType file or collection; `#index` picks
  the face of a collection).  Without any usable font, `PdfFontError` says what to install.
- **Bilingual:** headings and paragraphs carry zh-CN and English; table headers show both, and the unit.
- **Numbers** are right-aligned with thousands separators; a missing value shows as an em dash, never as 0.
- **Deterministic:** the same content and `generated_at` give the same bytes (the creation date is
  `generated_at`), so a report or a pack built twice from unchanged data hashes the same.
- **Charts** are drawn with PDF vector primitives (bar and line charts, with an optional interval band), so no
  browser or image renderer is needed.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from fpdf import FPDF
from fpdf.enums import XPos, YPos

FONT_ENV = "PARKCARBON_PDF_FONT"
# (path, face index in a collection): Noto Sans CJK SC is face 2 of Debian's collections.
FONT_CANDIDATES: tuple[tuple[str, int], ...] = (
    ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc", 2),
    ("/usr/share/fonts/opentype/noto/NotoSansCJKsc-Regular.otf", 0),
    ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", 0),
    ("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc", 0),
    ("/usr/share/fonts/truetype/arphic/uming.ttc", 0),
)
BOLD_OF = {"/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc":
           "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc"}

PALETTE = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75))
INK = (33, 37, 41)
MUTED = (108, 117, 125)
RULE = (206, 212, 218)
BAND = (198, 219, 239)
DASH = "\u2014"


class PdfFontError(RuntimeError):
    """No font able to render Chinese was found: the message says what to install or set."""


@dataclass(frozen=True)
class Column:
    """A table column: bilingual header, its unit, and whether its values are numbers (right-aligned, formatted)."""

    zh: str
    en: str
    unit: str = ""
    numeric: bool = False
    decimals: int = 1
    width: float | None = None  # relative weight; default from the header and values


def find_font(explicit: str | os.PathLike[str] | None = None) -> tuple[Path, int]:
    """The CJK font to embed: `explicit` ("path" or "path#index"), else $PARKCARBON_PDF_FONT, else a known system
    font.  Raises PdfFontError naming what was tried."""
    choice = str(explicit) if explicit else os.environ.get(FONT_ENV)
    if choice:
        path, _, index = choice.partition("#")
        if not Path(path).is_file():
            raise PdfFontError(f"PDF font {path} (from {'the settings' if explicit else FONT_ENV}) does not exist")
        return Path(path), int(index or 0)
    for path, index in FONT_CANDIDATES:
        if Path(path).is_file():
            return Path(path), index
    raise PdfFontError("no font that can render Chinese was found for PDF output; install the Debian package "
                       f"fonts-noto-cjk (apt install fonts-noto-cjk) or set {FONT_ENV}=/path/to/font.ttf")


def format_number(value: object, decimals: int = 1) -> str:
    """12 345.6 style with thousands separators (comma); None/NaN -> em dash (never 0)."""
    if value is None:
        return DASH
    if isinstance(value, bool):
        return "是 yes" if value else "否 no"
    if isinstance(value, int):
        return f"{value:,}"
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(number):
        return DASH
    if math.isinf(number):
        return "∞" if number > 0 else "-∞"
    return f"{number:,.{decimals}f}"


class _Pdf(FPDF):
    def __init__(self, doc: PdfDocument, orientation: str) -> None:
        super().__init__(orientation=orientation, unit="mm", format="A4")
        self._doc = doc

    def header(self) -> None:
        self.set_font(self._doc.font_family, size=7.5)
        self.set_text_color(*MUTED)
        self.cell(0, 5, f"{self._doc.title_zh}  {self._doc.title_en}", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_draw_color(*RULE)
        self.line(self.l_margin, self.get_y(), self.w - self.r_margin, self.get_y())
        self.ln(3)
        self.set_text_color(*INK)

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font(self._doc.font_family, size=7.5)
        self.set_text_color(*MUTED)
        stamp = self._doc.generated_at.strftime("%Y-%m-%d %H:%M UTC")
        self.cell(0, 5, f"生成于 Generated {stamp}", align="L")
        self.set_x(self.l_margin)
        self.cell(0, 5, f"第 {self.page_no()} 页 / 共 {{nb}} 页   Page {self.page_no()} of {{nb}}", align="R")
        self.set_text_color(*INK)


class PdfDocument:
    """A bilingual document built top to bottom; `to_bytes()` gives the PDF."""

    def __init__(self, title_zh: str, title_en: str, *, subtitle: str = "", generated_at: datetime | None = None,
                 font: str | os.PathLike[str] | None = None, landscape: bool = False, author: str = "ParkCarbon"
                 ) -> None:
        self.title_zh, self.title_en, self.subtitle = title_zh, title_en, subtitle
        generated_at = generated_at or datetime.now(UTC)
        if generated_at.tzinfo is None:
            raise ValueError("generated_at must be timezone-aware")
        self.generated_at = generated_at.astimezone(UTC)
        path, index = find_font(font)
        self.font_family = "cjk"
        self._pdf = _Pdf(self, "L" if landscape else "P")
        pdf = self._pdf
        pdf.set_creation_date(self.generated_at)
        pdf.set_title(f"{title_zh} {title_en}")
        pdf.set_author(author)
        pdf.set_creator("ParkCarbon")
        pdf.set_producer("ParkCarbon (fpdf2)")
        pdf.set_lang("zh-CN")
        try:
            pdf.add_font(self.font_family, "", str(path), collection_font_number=index)
            bold = BOLD_OF.get(str(path))
            pdf.add_font(self.font_family, "B", bold if bold and Path(bold).is_file() else str(path),
                         collection_font_number=index)
        except Exception as exc:  # fpdf2 raises several types for an unusable font file
            raise PdfFontError(f"cannot use {path} (face {index}) as the PDF font: {exc}") from exc
        pdf.set_auto_page_break(True, margin=16)
        pdf.set_margins(15, 12, 15)
        pdf.add_page()
        pdf.set_font(self.font_family, "B", 16)
        pdf.multi_cell(0, 8, title_zh, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.set_font(self.font_family, "", 12)
        pdf.set_text_color(*MUTED)
        pdf.multi_cell(0, 6, title_en, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        if subtitle:
            pdf.set_font(self.font_family, "", 10)
            pdf.multi_cell(0, 5, subtitle, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.set_text_color(*INK)
        pdf.ln(3)

    @property
    def width(self) -> float:
        return self._pdf.epw

    def heading(self, zh: str, en: str, level: int = 1) -> None:
        pdf = self._pdf
        size = {1: 13.0, 2: 11.0}.get(level, 10.0)
        if pdf.get_y() > pdf.h - 40:
            pdf.add_page()
        pdf.ln(2 if level > 1 else 4)
        pdf.set_font(self.font_family, "B", size)
        pdf.multi_cell(0, size * 0.5, f"{zh}  {en}", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        if level == 1:
            pdf.set_draw_color(*RULE)
            pdf.line(pdf.l_margin, pdf.get_y() + 0.5, pdf.w - pdf.r_margin, pdf.get_y() + 0.5)
        pdf.ln(2)
        pdf.set_font(self.font_family, "", 9.5)

    def paragraph(self, zh: str, en: str | None = None) -> None:
        pdf = self._pdf
        pdf.set_font(self.font_family, "", 9.5)
        pdf.multi_cell(0, 5, zh, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        if en:
            pdf.set_text_color(*MUTED)
            pdf.set_font(self.font_family, "", 8.5)
            pdf.multi_cell(0, 4.5, en, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
            pdf.set_text_color(*INK)
        pdf.ln(1.5)

    def kv(self, rows: Sequence[tuple[str, str, object]]) -> None:
        """Label/value lines: (label_zh, label_en, value); numbers formatted like table cells."""
        pdf = self._pdf
        label_w = min(70.0, self.width * 0.4)
        for zh, en, value in rows:
            pdf.set_font(self.font_family, "", 9)
            pdf.set_text_color(*MUTED)
            y = pdf.get_y()
            pdf.multi_cell(label_w, 5, f"{zh} {en}", new_x=XPos.RIGHT, new_y=YPos.TOP)
            label_bottom = pdf.get_y()
            pdf.set_xy(pdf.l_margin + label_w, y)
            pdf.set_text_color(*INK)
            text = value if isinstance(value, str) else format_number(value)
            pdf.multi_cell(self.width - label_w, 5, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
            pdf.set_y(max(pdf.get_y(), label_bottom))
        pdf.ln(1.5)

    def table(self, columns: Sequence[Column], rows: Sequence[Sequence[object]], note: str | None = None,
              font_size: float = 8.0) -> None:
        """A table whose headers (zh, en, unit) repeat on every page; numeric columns right-aligned."""
        pdf = self._pdf
        if not rows:
            self.paragraph("（本期无数据）", "(no data for this period)")
            return
        weights = [c.width or max(1.0, min(4.0, max(len(c.zh) * 2, len(c.en)) / 8)) for c in columns]
        scale = self.width / sum(weights)
        widths = [w * scale for w in weights]
        pdf.set_font(self.font_family, "", font_size)
        pdf.set_draw_color(*RULE)
        aligns = tuple("RIGHT" if c.numeric else "LEFT" for c in columns)
        with pdf.table(col_widths=widths, text_align=aligns, line_height=font_size * 0.5,
                       headings_style=_heading_style(self.font_family, font_size), repeat_headings=1,
                       borders_layout="HORIZONTAL_LINES", padding=0.8) as tbl:
            head = tbl.row()
            for c in columns:
                unit = f" ({c.unit})" if c.unit else ""
                head.cell(f"{c.zh}{unit}\n{c.en}")
            for values in rows:
                row = tbl.row()
                for c, v in zip(columns, values, strict=True):
                    row.cell(format_number(v, c.decimals) if c.numeric else ("" if v is None else str(v)))
        if note:
            pdf.set_text_color(*MUTED)
            pdf.set_font(self.font_family, "", 7.5)
            pdf.multi_cell(0, 4, note, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
            pdf.set_text_color(*INK)
        pdf.ln(2)

    # -- charts --------------------------------------------------------------------------------------------------

    def _chart_frame(self, title_zh: str, title_en: str, height: float) -> tuple[float, float, float, float]:
        pdf = self._pdf
        if pdf.get_y() + height + 12 > pdf.h - pdf.b_margin:
            pdf.add_page()
        pdf.set_font(self.font_family, "B", 9)
        pdf.multi_cell(0, 5, f"{title_zh}  {title_en}", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        top = pdf.get_y() + 1
        left = pdf.l_margin + 18
        right = pdf.w - pdf.r_margin - 2
        return left, top, right, top + height

    def _axis(self, left: float, top: float, right: float, bottom: float, lo: float, hi: float, unit: str) -> None:
        pdf = self._pdf
        pdf.set_font(self.font_family, "", 6.5)
        pdf.set_text_color(*MUTED)
        pdf.set_draw_color(*RULE)
        for tick in _ticks(lo, hi):
            y = bottom - (tick - lo) / (hi - lo) * (bottom - top)
            pdf.line(left, y, right, y)
            pdf.set_xy(pdf.l_margin, y - 2)
            pdf.cell(16, 4, format_number(tick, _tick_decimals(lo, hi)), align="R")
        pdf.set_xy(pdf.l_margin, top - 5)
        pdf.cell(30, 4, unit)
        pdf.set_text_color(*INK)

    def bar_chart(self, title_zh: str, title_en: str, labels: Sequence[str], values: Sequence[float | None],
                  unit: str, height: float = 55.0) -> None:
        """Vertical bars; a missing value leaves a gap labelled with an em dash, never a zero bar."""
        pdf = self._pdf
        left, top, right, bottom = self._chart_frame(title_zh, title_en, height)
        present = [v for v in values if v is not None and not math.isnan(v)]
        lo, hi = _range([0.0, *present])
        self._axis(left, top, right, bottom, lo, hi, unit)
        n = max(1, len(labels))
        slot = (right - left) / n
        pdf.set_font(self.font_family, "", 6)
        zero_y = bottom - (0 - lo) / (hi - lo) * (bottom - top)
        for i, (label, value) in enumerate(zip(labels, values, strict=True)):
            x = left + i * slot + slot * 0.15
            if value is None or math.isnan(value):
                pdf.set_xy(x, zero_y - 4)
                pdf.cell(slot * 0.7, 4, DASH, align="C")
            else:
                y = bottom - (value - lo) / (hi - lo) * (bottom - top)
                pdf.set_fill_color(*PALETTE[0])
                pdf.rect(x, min(y, zero_y), slot * 0.7, abs(zero_y - y), style="F")
            if n <= 31 or i % math.ceil(n / 31) == 0:
                pdf.set_xy(left + i * slot, bottom + 0.5)
                pdf.cell(slot, 3.5, str(label), align="C")
        pdf.set_y(bottom + 6)

    def line_chart(self, title_zh: str, title_en: str, x_labels: Sequence[str],
                   series: dict[str, Sequence[float | None]], unit: str,
                   band: tuple[Sequence[float | None], Sequence[float | None]] | None = None,
                   band_label: str = "", height: float = 60.0) -> None:
        """Lines (one colour per series, legend below); `band` = (low, high) drawn as a shaded interval.  A missing
        value breaks the line instead of drawing it to zero."""
        pdf = self._pdf
        left, top, right, bottom = self._chart_frame(title_zh, title_en, height)
        values = [v for s in series.values() for v in s if v is not None and not math.isnan(v)]
        if band:
            values += [v for s in band for v in s if v is not None and not math.isnan(v)]
        lo, hi = _range(values or [0.0, 1.0])
        self._axis(left, top, right, bottom, lo, hi, unit)
        n = len(x_labels)

        def xy(i: int, v: float) -> tuple[float, float]:
            x = left + (i / max(1, n - 1)) * (right - left)
            return x, bottom - (v - lo) / (hi - lo) * (bottom - top)

        if band:
            low, high = band
            idx = [i for i in range(n) if _ok(low[i]) and _ok(high[i])]
            if idx:
                points = [xy(i, float(high[i])) for i in idx] + [xy(i, float(low[i])) for i in reversed(idx)]
                pdf.set_fill_color(*BAND)
                pdf.polygon(points, style="F")
        for k, (_name, data) in enumerate(series.items()):
            pdf.set_draw_color(*PALETTE[k % len(PALETTE)])
            pdf.set_line_width(0.45)
            for i in range(1, n):
                if _ok(data[i - 1]) and _ok(data[i]):
                    pdf.line(*xy(i - 1, float(data[i - 1])), *xy(i, float(data[i])))
        pdf.set_line_width(0.2)
        pdf.set_font(self.font_family, "", 6)
        step = max(1, math.ceil(n / 12))
        for i in range(0, n, step):
            x, _ = xy(i, lo)
            pdf.set_xy(x - 10, bottom + 0.5)
            pdf.cell(20, 3.5, str(x_labels[i]), align="C")
        pdf.set_xy(left, bottom + 5)
        legend = list(series)
        for k, name in enumerate(legend):
            pdf.set_fill_color(*PALETTE[k % len(PALETTE)])
            pdf.rect(pdf.get_x(), pdf.get_y() + 1.2, 4, 1.5, style="F")
            pdf.set_x(pdf.get_x() + 5)
            pdf.cell(pdf.get_string_width(name) + 5, 4, name)
        if band and band_label:
            pdf.set_fill_color(*BAND)
            pdf.rect(pdf.get_x(), pdf.get_y() + 0.5, 4, 3, style="F")
            pdf.set_x(pdf.get_x() + 5)
            pdf.cell(pdf.get_string_width(band_label) + 5, 4, band_label)
        pdf.set_draw_color(*RULE)
        pdf.set_y(bottom + 11)

    def page_break(self) -> None:
        self._pdf.add_page()

    def to_bytes(self) -> bytes:
        return bytes(self._pdf.output())


def _heading_style(family: str, size: float):
    from fpdf.fonts import FontFace

    return FontFace(family=family, emphasis="BOLD", size_pt=size, fill_color=(241, 243, 245))


def _ok(v: float | None) -> bool:
    return v is not None and not (isinstance(v, float) and math.isnan(v))


def _range(values: Sequence[float]) -> tuple[float, float]:
    lo, hi = min(values), max(values)
    if lo > 0:
        lo = 0.0 if lo < 0.5 * hi else lo
    if hi == lo:
        hi = lo + 1.0
    return lo, hi + (hi - lo) * 0.05


def _ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    raw = (hi - lo) / count
    magnitude = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1.0
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(lo / step) * step
    ticks, t = [], first
    while t <= hi + 1e-9:
        ticks.append(round(t, 10))
        t += step
    return ticks


def _tick_decimals(lo: float, hi: float) -> int:
    span = hi - lo
    return 0 if span >= 10 else (1 if span >= 1 else 2)
