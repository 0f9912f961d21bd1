"""Bilingual PDF documents (reports for regulators, evidence packs for banks) with an embedded CJK font subset.

One small layer over fpdf2 so every PDF we issue follows the same rules:

- **Chinese renders without CJK fonts on the reader's machine**, and the PDFs are made without any on ours: the
  bundled `portal/fonts/NotoSansSC-GB2312.otf` (Noto Sans CJK SC cut to GB 2312 and Latin by
  scripts/build_pdf_font.py; SIL Open Font License 1.1, portal/fonts/OFL.txt) is embedded as a subset of the glyphs
  a document uses.  A document with a character outside it (a rare character in a name) is drawn with the full
  system face (Debian `fonts-noto-cjk`) when installed, otherwise the missing characters are logged.  Another font
  can be chosen with `PARKCARBON_PDF_FONT=/path/font.ttf[#index]` or the `font` argument; a font file that cannot
  be used raises `PdfFontError`.
- **Rendering is deferred**: the document records what is added and lays it out in `to_bytes()`, once it knows
  every character, so it can pick the font.
- **Bilingual:** headings and paragraphs carry zh-CN and English; table headers show both, and the unit.
- **Numbers** are right-aligned with thousands separators; a missing value shows as an em dash, never as 0.
- **Deterministic:** the same content and `generated_at` give the same bytes (the creation date is
  `generated_at`), so a report or a pack built twice from unchanged data hashes the same.
- **Charts** are drawn with PDF vector primitives (bar and line charts, with an optional interval band), so no
  browser or image renderer is needed.
"""

from __future__ import annotations

import functools
import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from fontTools import ttLib
from fpdf import FPDF
from fpdf.enums import XPos, YPos

FONT_ENV = "PARKCARBON_PDF_FONT"
BUNDLED_FONT = Path(__file__).resolve().parent / "fonts" / "NotoSansSC-GB2312.otf"
# Full system faces for characters outside the bundled set: (path, face index in a collection); Noto Sans CJK SC
# is face 2 of Debian's collections.
FONT_CANDIDATES: tuple[tuple[str, int], ...] = (
    ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc", 2),
    ("/usr/share/fonts/opentype/noto/NotoSansCJKsc-Regular.otf", 0),
    ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", 0),
    ("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc", 0),
    ("/usr/share/fonts/truetype/arphic/uming.ttc", 0),
)

PALETTE = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75))
INK = (33, 37, 41)
MUTED = (108, 117, 125)
RULE = (206, 212, 218)
BAND = (198, 219, 239)
DASH = "\u2014"
LOG = logging.getLogger(__name__)


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
    """A chosen font: `explicit` ("path" or "path#index"), else $PARKCARBON_PDF_FONT, else the bundled face.
    Raises PdfFontError for a chosen file that does not exist or is not a usable font."""
    choice = str(explicit) if explicit else os.environ.get(FONT_ENV)
    if not choice:
        return BUNDLED_FONT, 0
    path, _, index = choice.partition("#")
    if not Path(path).is_file():
        raise PdfFontError(f"PDF font {path} (from {'the settings' if explicit else FONT_ENV}) does not exist")
    try:
        _coverage(path, int(index or 0))
    except Exception as exc:  # fontTools raises several types for a file that is not a font
        raise PdfFontError(f"cannot use {path} (face {index or 0}) as the PDF font: {exc}") from exc
    return Path(path), int(index or 0)


def system_font() -> tuple[Path, int] | None:
    """The full CJK system face for characters outside the bundled set, if one is installed."""
    for path, index in FONT_CANDIDATES:
        if Path(path).is_file():
            return Path(path), index
    return None


@functools.lru_cache(maxsize=8)
def _coverage(path: str, index: int) -> frozenset[int]:
    """The code points a font face has glyphs for (read once per process)."""
    font = ttLib.TTFont(path, fontNumber=index, lazy=True)
    try:
        return frozenset(font.getBestCmap() or {})
    finally:
        font.close()


def choose_font(chars: set[str], explicit: str | os.PathLike[str] | None = None) -> tuple[Path, int]:
    """The face to draw `chars` with: the chosen one; else the bundled one when it has every character, else the
    full system face (logged when no face has them all)."""
    if explicit or os.environ.get(FONT_ENV):
        return find_font(explicit)
    needed = {ord(c) for c in chars if c.isprintable() and not c.isspace()}
    missing = needed - _coverage(str(BUNDLED_FONT), 0)
    if not missing:
        return BUNDLED_FONT, 0
    full = system_font()
    if full is not None:
        still = missing - _coverage(str(full[0]), full[1])
        if still:
            LOG.warning("PDF: no font has %s", "".join(sorted(map(chr, still))))
        return full
    LOG.warning("PDF: characters %s are not in the bundled font and no full CJK font is installed "
                "(apt install fonts-noto-cjk); they will be missing", "".join(sorted(map(chr, missing))))
    return BUNDLED_FONT, 0


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
    def __init__(self, doc: _Renderer, orientation: str) -> None:
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


class _Renderer:
    """Lays a recorded document out with fpdf2 in one face (no bold face: a second face would be a second subset
    to embed; headings are set apart by size, colour and rules)."""

    def __init__(self, doc: PdfDocument, path: Path, index: int) -> None:
        self.title_zh, self.title_en, self.generated_at = doc.title_zh, doc.title_en, doc.generated_at
        self.font_family = "cjk"
        self._pdf = _Pdf(self, "L" if doc.landscape else "P")  # type: ignore[arg-type]
        pdf = self._pdf
        pdf.set_creation_date(self.generated_at)
        pdf.set_title(f"{doc.title_zh} {doc.title_en}")
        pdf.set_author(doc.author)
        pdf.set_creator("ParkCarbon")
        pdf.set_producer("ParkCarbon (fpdf2)")
        pdf.set_lang("zh-CN")
        try:
            pdf.add_font(self.font_family, "", str(path), collection_font_number=index)
        except Exception as exc:  # fpdf2 raises several types for an unusable font file
            raise PdfFontError(f"cannot use {path} (face {index}) as the PDF font: {exc}") from exc
        pdf.set_auto_page_break(True, margin=16)
        pdf.set_margins(15, 12, 15)
        pdf.add_page()
        pdf.set_font(self.font_family, "", 17)
        pdf.multi_cell(0, 8, doc.title_zh, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.set_font(self.font_family, "", 12)
        pdf.set_text_color(*MUTED)
        pdf.multi_cell(0, 6, doc.title_en, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        if doc.subtitle:
            pdf.set_font(self.font_family, "", 10)
            pdf.multi_cell(0, 5, doc.subtitle, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
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
        pdf.set_font(self.font_family, "", size + 0.5)
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
        pdf.set_font(self.font_family, "", 9.5)
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


class PdfDocument:
    """A bilingual document built top to bottom; `to_bytes()` lays it out and gives the PDF.

    Each method records what to draw (and its text, to choose the font); nothing is laid out before
    `to_bytes()`.  Same content and `generated_at` -> same bytes."""

    def __init__(self, title_zh: str, title_en: str, *, subtitle: str = "", generated_at: datetime | None = None,
                 font: str | os.PathLike[str] | None = None, landscape: bool = False, author: str = "ParkCarbon"
                 ) -> None:
        self.title_zh, self.title_en, self.subtitle = title_zh, title_en, subtitle
        generated_at = generated_at or datetime.now(UTC)
        if generated_at.tzinfo is None:
            raise ValueError("generated_at must be timezone-aware")
        self.generated_at = generated_at.astimezone(UTC)
        self.landscape, self.author, self._font = landscape, author, font
        if font or os.environ.get(FONT_ENV):
            find_font(font)  # a chosen font that cannot be used is refused now, not at the end
        self._ops: list[tuple[str, tuple, dict]] = []
        self._chars: set[str] = set()
        self._collect((title_zh, title_en, subtitle, "生成于第页共 —·", "0123456789,.-%"))

    @property
    def width(self) -> float:
        """The text width in mm (A4 less the margins)."""
        return (297.0 if self.landscape else 210.0) - 30.0

    def _collect(self, value: object) -> None:
        if isinstance(value, str):
            self._chars.update(value)
        elif isinstance(value, dict):
            for k, v in value.items():
                self._collect(k)
                self._collect(v)
        elif isinstance(value, Column):
            self._collect((value.zh, value.en, value.unit))
        elif isinstance(value, list | tuple):
            for v in value:
                self._collect(v)
        elif value is not None:
            self._chars.update(format_number(value))

    def _record(self, name: str, *args: object, **kwargs: object) -> None:
        self._collect(args)
        self._collect(kwargs)
        self._ops.append((name, args, kwargs))

    def heading(self, zh: str, en: str, level: int = 1) -> None:
        self._record("heading", zh, en, level)

    def paragraph(self, zh: str, en: str | None = None) -> None:
        self._record("paragraph", zh, en)

    def kv(self, rows: Sequence[tuple[str, str, object]]) -> None:
        """Label/value lines: (label_zh, label_en, value); numbers formatted like table cells."""
        self._record("kv", [tuple(r) for r in rows])

    def table(self, columns: Sequence[Column], rows: Sequence[Sequence[object]], note: str | None = None,
              font_size: float = 8.0) -> None:
        """A table whose headers (zh, en, unit) repeat on every page; numeric columns right-aligned."""
        columns = list(columns)
        rows = [list(r) for r in rows]
        for c_i, c in enumerate(columns):  # what will be printed, for the font choice
            self._collect([format_number(r[c_i], c.decimals) if c.numeric else r[c_i] for r in rows])
        self._collect(columns)
        self._collect(note)
        self._ops.append(("table", (columns, rows, note, font_size), {}))

    def bar_chart(self, title_zh: str, title_en: str, labels: Sequence[str], values: Sequence[float | None],
                  unit: str, height: float = 55.0) -> None:
        """Vertical bars; a missing value leaves a gap labelled with an em dash, never a zero bar."""
        self._record("bar_chart", title_zh, title_en, [str(x) for x in labels], list(values), unit, height)

    def line_chart(self, title_zh: str, title_en: str, x_labels: Sequence[str],
                   series: dict[str, Sequence[float | None]], unit: str,
                   band: tuple[Sequence[float | None], Sequence[float | None]] | None = None,
                   band_label: str = "", height: float = 60.0) -> None:
        """Lines (one colour per series, legend below); `band` = (low, high) drawn as a shaded interval.  A missing
        value breaks the line instead of drawing it to zero."""
        self._record("line_chart", title_zh, title_en, [str(x) for x in x_labels],
                     {k: list(v) for k, v in series.items()}, unit, band=band, band_label=band_label, height=height)

    def page_break(self) -> None:
        self._ops.append(("page_break", (), {}))

    def to_bytes(self) -> bytes:
        path, index = choose_font(self._chars, self._font)
        renderer = _Renderer(self, path, index)
        for name, args, kwargs in self._ops:
            getattr(renderer, name)(*args, **kwargs)
        return renderer.to_bytes()


def _heading_style(family: str, size: float):
    from fpdf.fonts import FontFace

    return FontFace(family=family, size_pt=size, fill_color=(241, 243, 245))


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
