"""Build portal/fonts/NotoSansSC-GB2312.otf, the CJK font our PDFs embed (a subset of it, per document).

The source is Noto Sans CJK SC Regular (face 2 of Debian's fonts-noto-cjk NotoSansCJK-Regular.ttc; SIL Open Font
License 1.1, copyright Google and Adobe: portal/fonts/OFL.txt).  We keep the glyphs of printable ASCII and Latin-1,
general punctuation, CJK symbols and full-width forms, and the 6 763 Hanzi of GB 2312, and drop the OpenType layout
tables (PDF text is laid out by fpdf2, not shaped).  The result is about 1.8 MB instead of 20 MB, so a PDF needs
0.2-0.4 s for its font instead of 2-3 s, and the PDFs render on machines without any CJK font installed.  A
document with a character outside this set is drawn with the full system font instead (portal/pdf.py).

Run: .venv/bin/python scripts/build_pdf_font.py [SOURCE.ttc#INDEX]
"""

from __future__ import annotations

import sys
from pathlib import Path

from fontTools import subset, ttLib

SOURCE = "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc#2"
TARGET = Path(__file__).resolve().parent.parent / "portal" / "fonts" / "NotoSansSC-GB2312.otf"


def characters() -> set[int]:
    chars = set(range(0x20, 0x7F)) | set(range(0xA0, 0x100)) | set(range(0x2000, 0x2070))
    chars |= set(range(0x2100, 0x2200)) | set(range(0x2200, 0x2270)) | set(range(0x2460, 0x24A0))
    chars |= set(range(0x25A0, 0x2600)) | set(range(0x3000, 0x3040)) | set(range(0xFF00, 0xFFF0))
    for first in range(0xA1, 0xF8):  # every character of GB 2312 (symbols, Hanzi levels 1 and 2)
        for second in range(0xA1, 0xFF):
            try:
                chars.add(ord(bytes([first, second]).decode("gb2312")))
            except UnicodeDecodeError:
                continue
    return chars


def main(source: str = SOURCE) -> None:
    path, _, index = source.partition("#")
    font = ttLib.TTFont(path, fontNumber=int(index or 0), recalcTimestamp=False)
    options = subset.Options()
    options.layout_features = []
    options.drop_tables += ["GSUB", "GPOS", "GDEF", "BASE", "JSTF", "VORG", "vhea", "vmtx"]
    options.name_IDs = ["*"]
    options.name_languages = ["*"]
    options.notdef_outline = True
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=characters())
    subsetter.subset(font)
    TARGET.parent.mkdir(parents=True, exist_ok=True)
    font.save(TARGET)
    print(f"{TARGET}: {TARGET.stat().st_size:,} bytes, {len(font.getGlyphOrder()):,} glyphs")


if __name__ == "__main__":
    main(*sys.argv[1:])
