"""Bulk import and export machinery: rows in (CSV or JSON), a report of every bad row, all-or-nothing."""

import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from pydantic import BaseModel, ValidationError

from tslcd.core.errors import DomainValidationError


class RowError(BaseModel):
    row: int  # line number in the CSV file (header is line 1), or 1-based index in a JSON array
    column: str | None = None
    msg: str


class ImportReport(BaseModel):
    object_type: str
    created: int = 0
    updated: int = 0
    errors: list[RowError] = []

    @property
    def ok(self) -> bool:
        return not self.errors


class ImportRejected(DomainValidationError):
    """An import with bad rows; nothing of it was written."""

    def __init__(self, report: ImportReport):
        n = len(report.errors)
        super().__init__(f"{n} bad row{'s' if n != 1 else ''} in the {report.object_type} import; nothing was imported",
                         errors=[e.model_dump() for e in report.errors], title="Import rejected")
        self.report = report


@dataclass
class Rows:
    """Collects row errors while an importer converts rows."""

    object_type: str
    errors: list[RowError] = field(default_factory=list)

    def add(self, row: int, msg: str, column: str | None = None) -> None:
        self.errors.append(RowError(row=row, column=column, msg=msg))

    def add_validation(self, row: int, exc: ValidationError) -> None:
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"]) or None
            self.add(row, err["msg"], loc)

    def raise_if_any(self) -> None:
        if self.errors:
            self.errors.sort(key=lambda e: e.row)
            raise ImportRejected(ImportReport(object_type=self.object_type, errors=self.errors))


def read_rows(data: bytes | str, fmt: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """(row number, row) pairs; empty CSV cells become None so that defaults apply."""
    if isinstance(data, bytes):
        data = data.decode("utf-8-sig")
    if fmt == "csv":
        reader = csv.DictReader(io.StringIO(data))
        if not reader.fieldnames:
            raise DomainValidationError("the CSV file has no header row")
        for row in reader:
            if None in row:
                raise DomainValidationError(f"line {reader.line_num}: more cells than header columns")
            yield reader.line_num, {k.strip(): (v.strip() if v is not None and v.strip() != "" else None)
                                    for k, v in row.items()}
    elif fmt == "json":
        try:
            items = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise DomainValidationError(f"not valid JSON: {exc}") from None
        if not isinstance(items, list):
            raise DomainValidationError("a JSON import is an array of objects")
        for i, item in enumerate(items, start=1):
            if not isinstance(item, dict):
                raise DomainValidationError(f"item {i} is not an object")
            yield i, item
    else:
        raise DomainValidationError(f"unknown format '{fmt}' (csv or json)")


def write_rows(rows: Iterable[dict[str, Any]], columns: list[str], fmt: str) -> bytes:
    if fmt == "json":
        return orjson.dumps([{c: r.get(c) for c in columns} for r in rows])
    if fmt != "csv":
        raise DomainValidationError(f"unknown format '{fmt}' (csv or json)")
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({c: ("" if r.get(c) is None else r.get(c)) for c in columns})
    return out.getvalue().encode()


UNITS = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}


def parse_bitrate(value: Any) -> Any:
    """'100M', '1G', '2.5 Gbps', 200000000 → bit/s; other values pass to validation unchanged."""
    if isinstance(value, str):
        text = value.strip().lower().replace(" ", "").removesuffix("bps").removesuffix("bit/s").removesuffix("b")
        unit = text[-1:] if text[-1:] in UNITS and text[-1:] else ""
        number = text[:-1] if unit else text
        try:
            return int(float(number) * UNITS[unit])
        except ValueError:
            return value
    return value
