"""Plain-text tables for the terminal commands of every domain."""

import unicodedata
from collections.abc import Sequence


def _width(text: str) -> int:
    """Terminal columns: combining marks (decomposed Vietnamese tones) take none."""
    return sum(0 if unicodedata.combining(ch) else 2 if unicodedata.east_asian_width(ch) in "WF" else 1
               for ch in text)


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[str(c) for c in headers]] + [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max(_width(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c + " " * (w - _width(c)) for c, w in zip(row, widths)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _bare(ch: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFD", ch) if not unicodedata.combining(ch))


# Every precomposed Latin letter with its base letter (Vietnamese: 134 of them), so folding is one translate().
_FOLD = {cp: _bare(chr(cp)) for cp in range(0xC0, 0x2000) if chr(cp).isalpha() and _bare(chr(cp)) != chr(cp)}
_FOLD[ord("đ")] = _FOLD[ord("Đ")] = "d"
_FOLD = str.maketrans(_FOLD)


def fold(text: str) -> str:
    """Text as people type it when searching: no diacritics, no case, single spaces ("Quảng Ninh" → "quang ninh")."""
    bare = text.translate(_FOLD)
    if not bare.isascii():  # combining marks (NFD input) or letters beyond the table
        bare = "".join(ch for ch in unicodedata.normalize("NFD", bare) if not unicodedata.combining(ch))
        bare = bare.translate(_FOLD)
    return " ".join(bare.casefold().split())
