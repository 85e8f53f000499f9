"""Bulk import and export machinery: rows in (CSV or JSON), a report of every bad row, all-or-nothing.

Reading is streamed line by line (see core/inputs.py for decoding), so an import's memory is bounded by the
batch its importer keeps, not by the file. CSV rules:
- line 1 is the header; a column the object type does not know is refused, and a required column that is
  missing is reported on line 1 by name;
- a row is reported by the physical line it starts on (quoted line breaks inside a cell count as lines);
- an empty cell means "no value" (the field's default, or empty text); cells lose surrounding spaces;
- a cell that starts with = + - @ TAB or CR (other than a plain number) is written with a leading '
  (spreadsheets would run it as a formula: OWASP CSV injection), and so is a cell starting with ' before one of
  those; that one ' is removed again when the file is read back, so export → import → export gives the same
  file. JSON is written and read as it is.
"""

import csv
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson
from pydantic import BaseModel, ValidationError

from tslcd.core.errors import DomainValidationError
from tslcd.core.inputs import INT64_MAX, InputError, decode_lines, nfc

FIELD_MAX_CHARS = 10_000  # one cell; the longest text any object type stores is far shorter
MAX_ERRORS = 1000  # an import reports this many bad rows at most, then a count
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "'")
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")

csv.field_size_limit(FIELD_MAX_CHARS + 1)


class RowError(BaseModel):
    row: int  # line number in the CSV file (header is line 1), or 1-based index in a JSON array
    column: str | None = None
    msg: str


class ImportReport(BaseModel):
    object_type: str
    created: int = 0
    updated: int = 0
    unchanged: int = 0  # rows with an id whose values equal the stored ones: nothing written, nothing audited
    errors: list[RowError] = []
    more_errors: int = 0  # bad rows beyond the first MAX_ERRORS, counted only

    @property
    def ok(self) -> bool:
        return not self.errors


class ImportRejected(DomainValidationError):
    """An import with bad rows; nothing of it was written."""

    def __init__(self, report: ImportReport):
        n = len(report.errors) + report.more_errors
        super().__init__(f"{n} bad row{'s' if n != 1 else ''} in the {report.object_type} import; nothing was imported",
                         errors=[e.model_dump() for e in report.errors], title="Import rejected")
        self.report = report


@dataclass
class Rows:
    """Collects row errors while an importer converts rows."""

    object_type: str
    errors: list[RowError] = field(default_factory=list)
    more: int = 0

    def add(self, row: int, msg: str, column: str | None = None) -> None:
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(RowError(row=row, column=column, msg=msg))
        else:
            self.more += 1

    def add_validation(self, row: int, exc: ValidationError) -> None:
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"]) or None
            msg = err["msg"]
            if err["type"] == "extra_forbidden":
                msg = "unknown field"
            self.add(row, msg, loc)

    def raise_if_any(self) -> None:
        if self.errors:
            self.errors.sort(key=lambda e: e.row)
            raise ImportRejected(ImportReport(object_type=self.object_type, errors=self.errors,
                                              more_errors=self.more))


@dataclass(frozen=True)
class Columns:
    """What a CSV header may hold: the known columns, and groups of which one column must be present."""

    known: frozenset[str]
    required: tuple[tuple[str, ...], ...] = ()


def _header_errors(header: list[str], columns: Columns) -> list[RowError]:
    errors = []
    seen: set[str] = set()
    for name in header:
        if name in seen:
            errors.append(RowError(row=1, column=name, msg=f"column '{name}' appears twice"))
        seen.add(name)
        if name not in columns.known:
            errors.append(RowError(row=1, column=name, msg=f"unknown column '{name}'; known columns: "
                                   + ", ".join(sorted(columns.known))))
    for group in columns.required:
        if not seen.intersection(group):
            errors.append(RowError(row=1, column=group[0], msg="missing column " + " or ".join(f"'{g}'" for g in group)))
    return errors


def unescape_cell(value: str) -> str:
    """Undo the export's formula guard: a leading ' before a formula character (or another ') is dropped."""
    if len(value) > 1 and value[0] == "'" and value[1] in FORMULA_START:
        return value[1:]
    return value


def escape_cell(value: str) -> str:
    """Guard a CSV cell against spreadsheet formulas (numbers such as -5 or +84 stay as they are); a cell that
    already starts with ' before such a character gets one more, so that reading it back is exact."""
    if not value:
        return value
    if value[0] == "'":
        return "'" + value if len(value) > 1 and value[1] in FORMULA_START else value
    if value[0] in FORMULA_START and not _NUMBER.match(value):
        return "'" + value
    return value


def _reject(object_type: str, errors: list[RowError]) -> ImportRejected:
    return ImportRejected(ImportReport(object_type=object_type, errors=errors))


def read_rows(data: bytes | str | Iterable[bytes], fmt: str, *, encoding: str | None = None,
              columns: Columns | None = None, object_type: str = "rows") -> Iterator[tuple[int, dict[str, Any]]]:
    """(row number, row) pairs, streamed; empty CSV cells become None so that defaults apply.

    Header faults and undecodable input raise ImportRejected (line numbers included); row contents are left to the
    caller's validation.
    """
    if fmt == "csv":
        yield from _read_csv(data, encoding, columns, object_type)
    elif fmt == "json":
        yield from _read_json(data, encoding, columns, object_type)
    else:
        raise DomainValidationError(f"unknown format '{fmt}' (csv or json)",
                                    errors=[{"loc": ["format"], "msg": "csv or json"}])


def _lines(data: bytes | str | Iterable[bytes], encoding: str | None) -> Iterator[str]:
    if isinstance(data, str):
        return iter(nfc(data).splitlines(keepends=True))
    return decode_lines(data, encoding)


def _read_csv(data, encoding, columns: Columns | None, object_type: str) -> Iterator[tuple[int, dict[str, Any]]]:
    counter = _Counter(_lines(data, encoding))
    reader = csv.reader(counter)
    try:
        header = next(reader, None)
        if not header or not any(h.strip() for h in header):
            raise _reject(object_type, [RowError(row=1, msg="the CSV file has no header row")])
        names = [nfc(h).strip() for h in header]
        if columns is not None:
            errors = _header_errors(names, columns)
            if errors:
                raise _reject(object_type, errors)
        start = counter.count + 1
        for cells in reader:
            line, start = start, counter.count + 1
            if not cells or all(not c.strip() for c in cells):
                continue  # blank line
            if len(cells) > len(names):
                raise _reject(object_type, [RowError(row=line, msg=f"{len(cells)} cells but the header has "
                                                                   f"{len(names)} columns")])
            row = {}
            for name, cell in zip(names, cells):
                cell = cell.strip(" ")
                row[name] = unescape_cell(cell) if cell else None
            for name in names[len(cells):]:
                row[name] = None
            yield line, row
    except csv.Error as exc:
        line = counter.count
        msg = str(exc)
        if "field larger than field limit" in msg:
            msg = f"a cell is longer than the {FIELD_MAX_CHARS:,}-character limit"
        raise _reject(object_type, [RowError(row=line, msg=f"not valid CSV: {msg}")]) from None
    except InputError as exc:
        raise _reject(object_type, [RowError(row=exc.line or counter.count + 1, msg=exc.msg)]) from None


class _Counter:
    """Counts the physical lines the csv module has consumed."""

    def __init__(self, lines: Iterator[str]):
        self._lines, self.count = lines, 0

    def __iter__(self) -> "_Counter":
        return self

    def __next__(self) -> str:
        line = next(self._lines)
        self.count += 1
        return line


def _read_json(data, encoding, columns: Columns | None, object_type: str) -> Iterator[tuple[int, dict[str, Any]]]:
    if not isinstance(data, (bytes, str)):
        data = b"".join(data)
    if isinstance(data, bytes):
        try:
            data = "".join(decode_lines(data, encoding))
        except InputError as exc:
            raise _reject(object_type, [RowError(row=exc.line or 1, msg=exc.msg)]) from None
    try:
        items = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise DomainValidationError(f"not valid JSON: {exc}", title="Import rejected") from None
    if not isinstance(items, list):
        raise DomainValidationError("a JSON import is an array of objects", title="Import rejected")
    errors = []
    for i, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            errors.append(RowError(row=i, msg="not an object"))
        elif columns is not None:
            errors += [RowError(row=i, column=k, msg=f"unknown field '{k}'") for k in item
                       if k not in columns.known]
    if errors:
        raise _reject(object_type, errors[:MAX_ERRORS])
    for i, item in enumerate(items, start=1):
        yield i, item


def write_rows(rows: Iterable[dict[str, Any]], columns: list[str], fmt: str) -> bytes:
    return b"".join(iter_rows(rows, columns, fmt))


def iter_rows(rows: Iterable[dict[str, Any]], columns: list[str], fmt: str) -> Iterator[bytes]:
    """The export in pieces (a streamed response, or a file written as it goes)."""
    if fmt == "json":
        first = True
        yield b"["
        for r in rows:
            yield (b"" if first else b",") + orjson.dumps({c: r.get(c) for c in columns})
            first = False
        yield b"]"
        return
    if fmt != "csv":
        raise DomainValidationError(f"unknown format '{fmt}' (csv or json)",
                                    errors=[{"loc": ["format"], "msg": "csv or json"}])
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    n = 0
    for r in rows:
        writer.writerow([_csv_cell(r.get(c)) for c in columns])
        n += 1
        if n % 2000 == 0:
            yield out.getvalue().encode()
            out.seek(0)
            out.truncate()
    yield out.getvalue().encode()


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return escape_cell(str(value))


UNITS = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}
BITRATE_MAX = 10**15  # 1 Pbit/s: above any link or port that exists


def parse_bitrate(value: Any) -> Any:
    """'100M', '1G', '2.5 Gbps', 200000000 → whole bit/s; a fraction of a bit, or an absurd size, is refused."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value.strip().lower().replace(" ", "").removesuffix("bps").removesuffix("bit/s").removesuffix("b")
        unit = text[-1:] if text[-1:] in UNITS and text[-1:] else ""
        number = text[:-1] if unit else text
        try:
            amount = Decimal(number) * UNITS[unit]
        except InvalidOperation:
            return value  # not a number: validation says so
    elif isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError("a bit rate must be a finite number")
        amount = Decimal(repr(value))
    elif isinstance(value, int):
        amount = Decimal(value)
    else:
        return value
    if not amount.is_finite():
        raise ValueError("a bit rate must be a finite number")
    if abs(amount) > BITRATE_MAX:
        raise ValueError(f"{value} is more than {BITRATE_MAX:,} bit/s (1 Pbit/s)")
    if amount != amount.to_integral_value():
        raise ValueError(f"{value} is not a whole number of bit/s")
    result = int(amount)
    if result > INT64_MAX:
        raise ValueError(f"{value} is out of range")
    return result
