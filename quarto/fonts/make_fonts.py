"""Rebuild SeedTestHangul-{Regular,Bold}.ttf from Debian's fonts-nanum (NanumSquare, OFL 1.1).

Why these files: typst needs font files (no network, no system fonts relied on), and the
report must print any Korean name. NanumSquare covers all 11,172 Hangul syllables in ~0.7 MB
per weight; the subset keeps Hangul, Latin-1, Greek (θ), punctuation, arrows and CJK
symbols and drops hinting (PDF and screens at report sizes do not need it): 0.55 MB each.
The OFL forbids Reserved Font Names ("Nanum...") on modified versions, hence the new name.

Run (as root, or with the .deb downloaded by other means):
    apt-get download fonts-nanum && dpkg-deb -x fonts-nanum_*.deb /tmp/nanum
    .venv/bin/python quarto/fonts/make_fonts.py /tmp/nanum/usr/share/fonts/truetype/nanum
"""

from __future__ import annotations

import sys
from pathlib import Path

from fontTools import subset
from fontTools.ttLib import TTFont

FAMILY = "SeedTest Hangul"
UNICODES = (
    "U+0020-007E,U+00A0-00FF,U+0391-03C9,U+2010-2027,U+2030-203A,U+2190-2193,U+2248,U+2260,"
    "U+2264-2265,U+3000-303F,U+3131-318E,U+AC00-D7A3,U+FF01-FF5E"
)


def build(src: Path, dst: Path, style: str) -> None:
    font = TTFont(src)
    options = subset.Options()
    options.layout_features = ["*"]
    options.name_IDs = ["*"]
    options.hinting = False
    sub = subset.Subsetter(options)
    sub.populate(unicodes=subset.parse_unicodes(UNICODES))
    sub.subset(font)
    name = font["name"]
    for rec in list(name.names):
        if rec.nameID in (1, 2, 3, 4, 6, 16, 17, 18, 21, 22):
            name.removeNames(nameID=rec.nameID)
    ps = f"SeedTestHangul-{style}"
    full = FAMILY if style == "Regular" else f"{FAMILY} {style}"
    values = {
        1: FAMILY,
        2: style,
        3: f"{ps} (subset of NanumSquare)",
        4: full,
        6: ps,
        16: FAMILY,
        17: style,
    }
    for nid, val in values.items():
        name.setName(val, nid, 3, 1, 0x409)
        name.setName(val, nid, 1, 0, 0)
    font["OS/2"].usWeightClass = 700 if style == "Bold" else 400
    if style == "Bold":
        font["OS/2"].fsSelection = (font["OS/2"].fsSelection & ~0x40) | 0x20
        font["head"].macStyle |= 1
    font.save(dst)


def main() -> None:
    src = Path(sys.argv[1])
    here = Path(__file__).resolve().parent
    build(src / "NanumSquareR.ttf", here / "SeedTestHangul-Regular.ttf", "Regular")
    build(src / "NanumSquareB.ttf", here / "SeedTestHangul-Bold.ttf", "Bold")


if __name__ == "__main__":
    main()
