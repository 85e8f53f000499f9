"""Input decoding and bounds, written once in core: encodings, NFC, control characters, numbers, CSV quirks."""

import unicodedata

import pytest
from pydantic import ValidationError

from tslcd.core.bulk import (FIELD_MAX_CHARS, Columns, ImportRejected, escape_cell, iter_rows, parse_bitrate,
                             read_rows, unescape_cell)
from tslcd.core.inputs import InputError, InputModel, Multiline, clean_text, decode_lines

NFD = unicodedata.normalize("NFD", "Ủy ban nhân dân tỉnh Quảng Ninh")
NFC = unicodedata.normalize("NFC", NFD)


def test_nfd_text_is_stored_as_nfc():
    assert len(NFD.encode()) == 41 and len(NFC.encode()) == 39
    assert clean_text(NFD) == NFC


@pytest.mark.parametrize("text,name", [("a\tb", "TAB"), ("a\x00b", "NUL"), ("a\rb", "CR"), ("a\nb", "LF"),
                                       ("\t=1+1", "TAB")])
def test_single_line_text_refuses_control_characters(text, name):
    with pytest.raises(ValueError, match=name):
        clean_text(text)


def test_multiline_text_keeps_line_breaks_but_not_nul():
    assert clean_text("một\r\nhai\tba  ", multiline=True) == "một\nhai\tba"
    with pytest.raises(ValueError, match="NUL"):
        clean_text("a\x00", multiline=True)


def test_lone_surrogates_are_refused():
    with pytest.raises(ValueError, match="surrogate"):
        clean_text("a\ud800b")


class _Row(InputModel):
    name: str
    note: Multiline = ""
    count: int = 0
    share: float = 0.0


def test_input_model_bounds_every_field():
    assert _Row(name=f"  {NFD} ").name == NFC
    with pytest.raises(ValidationError) as caught:
        _Row(name="x", count=2**63)
    assert caught.value.errors()[0]["loc"] == ("count",)
    with pytest.raises(ValidationError):
        _Row(name="x", share="1e999")
    with pytest.raises(ValidationError) as caught:
        _Row(name="x", colour="red")
    assert caught.value.errors()[0]["type"] == "extra_forbidden"
    assert _Row(name="x", note="a\nb").note == "a\nb"


@pytest.mark.parametrize("value,expected", [("100M", 100_000_000), ("2.5G", 2_500_000_000), ("1 Gbps", 10**9),
                                            (200_000_000, 200_000_000), (1e9, 10**9), ("1e9", 10**9)])
def test_bit_rates_in_whole_bits(value, expected):
    assert parse_bitrate(value) == expected


@pytest.mark.parametrize("value,reason", [("1.5", "whole number"), (1.5, "whole number"), ("1e999", "more than"),
                                          (float("inf"), "finite"), ("nan", "finite"),
                                          (str(2**63), "more than"), ("1.0000001k", "whole number")])
def test_bit_rates_refuse_fractions_and_absurd_sizes(value, reason):
    with pytest.raises(ValueError, match=reason):
        parse_bitrate(value)


def test_utf8_is_required_and_the_line_is_named():
    data = "slug,name\nx,Hà Nội\n".encode() + unicodedata.normalize("NFD", "y,Đà Lạt\n").encode("cp1258")
    with pytest.raises(InputError) as caught:
        list(decode_lines(data))
    assert caught.value.line == 3 and "not valid UTF-8" in caught.value.msg and "cp1258" in caught.value.msg


def test_cp1258_is_accepted_when_named_and_stored_nfc():
    data = unicodedata.normalize("NFD", "name\nTỉnh Quảng Ninh\n").encode("cp1258")  # as Windows writes it
    lines = list(decode_lines(data, "cp1258"))
    assert lines[1].strip() == unicodedata.normalize("NFC", "Tỉnh Quảng Ninh")


def test_latin1_gets_a_hint_too():
    with pytest.raises(InputError, match="UTF-8"):
        list(decode_lines("name\ncafé\n".encode("latin-1")))


def test_utf16_is_refused_clearly():
    with pytest.raises(InputError, match="UTF-16"):
        list(decode_lines("name\nx\n".encode("utf-16")))


def _rows(text: str | bytes, columns: Columns | None = None):
    return list(read_rows(text if isinstance(text, bytes) else text.encode(), "csv", columns=columns))


def test_bom_and_crlf():
    rows = _rows(b"\xef\xbb\xbfslug,name\r\na,A\r\nb,B\r\n")
    assert rows == [(2, {"slug": "a", "name": "A"}), (3, {"slug": "b", "name": "B"})]


def test_rows_are_numbered_by_the_physical_line_they_start_on():
    rows = _rows('slug,name\na,"two\nlines"\nb,"three\nmore\nlines"\nc,C\n')
    assert [line for line, _ in rows] == [2, 4, 7]
    assert rows[1][1]["name"] == "three\nmore\nlines"


def test_header_faults_are_on_line_1_naming_the_column():
    columns = Columns(known=frozenset({"slug", "name", "kind"}), required=(("slug",), ("kind",)))
    with pytest.raises(ImportRejected) as caught:
        _rows("slug,name,colour\nx,y,z\n", columns)
    errors = [(e.row, e.column, e.msg) for e in caught.value.report.errors]
    assert (1, "colour", errors[0][2]) in errors and "unknown column 'colour'" in errors[0][2]
    assert any(e[:2] == (1, "kind") and "missing column 'kind'" in e[2] for e in errors)


def test_a_huge_cell_is_a_row_error_not_a_crash():
    text = "slug,name\na,A\nb," + "x" * (128 * 1024 + 1) + "\n"
    with pytest.raises(ImportRejected) as caught:
        _rows(text)
    error = caught.value.report.errors[0]
    assert error.row == 3 and f"{FIELD_MAX_CHARS:,}-character limit" in error.msg


def test_more_cells_than_columns_names_the_line():
    with pytest.raises(ImportRejected) as caught:
        _rows("slug,name\na,A\nb,B,extra\n")
    assert caught.value.report.errors[0].row == 3


@pytest.mark.parametrize("cell", ["=1+1", "+cmd", "-2+3", "@SUM(A1)", "\t=1+1", "\r=1", "'=already", "''x"])
def test_formula_cells_are_escaped_in_csv_and_read_back_unchanged(cell):
    assert escape_cell(cell) == "'" + cell
    assert unescape_cell(escape_cell(cell)) == cell


@pytest.mark.parametrize("cell", ["-5", "+84", "-0.25", "1e9", "'s-Hertogenbosch", "Hà Nội"])
def test_numbers_and_plain_text_are_not_escaped(cell):
    assert escape_cell(cell) == cell
    assert unescape_cell(cell) == cell


def test_csv_export_guards_formulas_and_json_keeps_text():
    rows = [{"name": "=HYPERLINK(\"x\")", "n": -5}]
    csv_out = b"".join(iter_rows(rows, ["name", "n"], "csv")).decode()
    assert csv_out.splitlines()[1] == "\"'=HYPERLINK(\"\"x\"\")\",-5"
    json_out = b"".join(iter_rows(rows, ["name", "n"], "json"))
    assert b'"=HYPERLINK(\\"x\\")"' in json_out
