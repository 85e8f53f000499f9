"""Every input decoded and bounded once: encodings, Unicode normalisation (NFC), control characters, sizes and
number ranges. REST bodies, CSV/JSON imports and CLI arguments all pass through here.

Rules (the README's import section repeats them):
- Text is NFC. Single-line text may not contain control characters (TAB, CR, LF, NUL …) or lone surrogates, and
  loses leading and trailing white space; multi-line text (descriptions, notes) may contain TAB and line breaks
  (CRLF becomes LF) but no other control character.
- Integers fit in 64 bits; floats are finite.
- Files are UTF-8 (a BOM is allowed) unless an encoding is named explicitly (cp1258, cp1252, latin-1); a file
  that is not valid in its encoding is refused, naming the line and the byte.
"""

import typing
import unicodedata
from enum import Enum
from functools import lru_cache
from collections.abc import Iterable, Iterator
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
ID_MAX = 2**31 - 1  # ids are INTEGER columns: 32 bits on PostgreSQL
ENCODINGS = {"utf-8": "utf-8", "utf8": "utf-8", "utf-8-sig": "utf-8", "cp1258": "cp1258",
             "windows-1258": "cp1258", "cp1252": "cp1252", "windows-1252": "cp1252", "latin-1": "latin-1",
             "latin1": "latin-1", "iso-8859-1": "latin-1"}
MULTILINE = "x-multiline"
EXACT = "x-exact"  # secrets such as passwords: NFC, no control characters, but never trimmed
_ALLOWED_MULTILINE = {"\t", "\n"}


class InputError(ValueError):
    """Input that cannot be read at all (wrong encoding, oversized); `line` when it is known."""

    def __init__(self, msg: str, line: int | None = None, column: str | None = None):
        super().__init__(msg)
        self.msg, self.line, self.column = msg, line, column


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def clean_text(value: str, *, multiline: bool = False, exact: bool = False) -> str:
    """NFC, control characters refused (ValueError naming the character and its position), trimmed (unless
    `exact`: a password keeps its spaces)."""
    if value.isprintable() and (value.isascii() or unicodedata.is_normalized("NFC", value)):
        return value if exact else value.strip()  # the common case, checked in C
    value = nfc(value)
    if multiline:
        value = value.replace("\r\n", "\n")
    for i, ch in enumerate(value):
        category = unicodedata.category(ch)
        if category == "Cs":
            raise ValueError(f"contains an invalid character (a lone surrogate) at position {i + 1}")
        if category == "Cc" and not (multiline and ch in _ALLOWED_MULTILINE):
            raise ValueError(f"contains the control character {_char_name(ch)} at position {i + 1}"
                             + ("" if multiline else "; a single-line text may not contain TAB, CR, LF or NUL"))
    if exact:
        return value
    return value.strip() if not multiline else value.rstrip()


def _char_name(ch: str) -> str:
    names = {"\t": "TAB", "\n": "LF", "\r": "CR", "\x00": "NUL"}
    return names.get(ch, f"U+{ord(ch):04X}")


def check_int(value: int, *, lo: int = INT64_MIN, hi: int = INT64_MAX) -> int:
    if not lo <= value <= hi:
        raise ValueError(f"{value} is outside the range {lo}..{hi}")
    return value


def _clean(value: Any, multiline: bool, exact: bool = False) -> Any:
    if isinstance(value, Enum):
        return value
    if isinstance(value, str):
        return clean_text(value, multiline=multiline, exact=exact)
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return check_int(value)
    if isinstance(value, list):
        return [_clean(v, multiline) for v in value]
    return value


class _Marker:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


_MULTILINE, _EXACT = _Marker(MULTILINE), _Marker(EXACT)


def _markers(annotation: Any, metadata: list[Any]) -> set[str]:
    found = {m.name for m in metadata if isinstance(m, _Marker)}
    for arg in typing.get_args(annotation):
        if isinstance(arg, _Marker):
            found.add(arg.name)
        elif arg is not type(None):
            found |= _markers(arg, [])
    return found


@lru_cache(maxsize=None)
def _flags(cls: type, name: str) -> tuple[bool, bool]:
    field = cls.model_fields.get(name)
    if field is None:
        return False, False
    found = _markers(field.annotation, list(field.metadata))
    return MULTILINE in found, EXACT in found


class InputModel(BaseModel):
    """Base of every request body and import row: unknown fields refused, floats finite, ints in 64 bits, text
    NFC without control characters (see the module's rules)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    @field_validator("*", mode="after")
    @classmethod
    def _bounded(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None or value.__class__ in (int, bool, float):
            return check_int(value) if value.__class__ is int else value
        multiline, exact = _flags(cls, info.field_name or "")
        return _clean(value, multiline, exact)


# Text that may span lines (descriptions, notes) and text kept exactly as given (passwords).
Multiline = Annotated[str, _MULTILINE, Field(json_schema_extra={MULTILINE: True})]
Exact = Annotated[str, _EXACT]


def normalise_encoding(name: str | None) -> str:
    if not name:
        return "utf-8"
    found = ENCODINGS.get(name.strip().lower())
    if found is None:
        raise InputError(f"unknown encoding '{name}' (one of: utf-8, cp1258, cp1252, latin-1)")
    return found


def _hint(raw: bytes) -> str:
    try:
        text = raw.decode("cp1258")
    except UnicodeDecodeError:
        return "save the file as UTF-8"
    if any(ch in text for ch in "\u0300\u0301\u0303\u0309\u0323ĐđƠơƯưĂăÂâÊêÔô"):
        return ("it looks like Windows-1258 (Vietnamese ANSI): save it as UTF-8, or import it with "
                "--encoding cp1258 (API: ?encoding=cp1258)")
    return "save it as UTF-8, or name its encoding: --encoding cp1252 or latin-1 (API: ?encoding=…)"


def decode_lines(chunks: Iterable[bytes], encoding: str | None = None) -> Iterator[str]:
    """Decode a file line by line (line ends kept, NFC), so an error names its line and memory stays bounded.

    `chunks` are the file's physical lines (iterating a binary file gives them; bytes are split here).
    """
    codec = normalise_encoding(encoding)
    first = True
    for number, raw in enumerate(_physical_lines(chunks), start=1):
        if first:
            first = False
            if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
                raise InputError("the file is UTF-16; save it as UTF-8", line=1)
            if codec == "utf-8" and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
        try:
            text = raw.decode(codec)
        except UnicodeDecodeError as exc:
            bad = raw[exc.start:exc.start + 1]
            raise InputError(f"byte 0x{bad.hex().upper()} at position {exc.start + 1} is not valid {codec.upper()}"
                             f"; {_hint(raw) if codec == 'utf-8' else 'check the encoding named'}",
                             line=number) from None
        yield nfc(text)


def _physical_lines(chunks: Iterable[bytes]) -> Iterator[bytes]:
    if isinstance(chunks, (bytes, bytearray, memoryview)):
        chunks = [bytes(chunks)]
    pending = b""
    for chunk in chunks:
        data = pending + chunk
        start = 0
        while True:
            end = data.find(b"\n", start)
            if end < 0:
                break
            yield data[start:end + 1]
            start = end + 1
        pending = data[start:]
    if pending:
        yield pending
