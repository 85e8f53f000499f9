"""The bad-input corpus (tests/registry/corpus/): every file is refused naming its line, column and reason, or
stored as it should be; nothing of a refused file is written. Through the service on both backends, and the
REST API and the CLI where their own handling matters."""

import os
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests.factories import build_tiny
from tslcd.core.bulk import ImportRejected
from tslcd.registry import service
from tslcd.registry.models import Agency, Site
from tslcd.security.models import AuditRecord, Role

CORPUS = Path(__file__).parent / "corpus"
PROBLEM = "application/problem+json"


@pytest.fixture
def tiny(session, admin):
    return build_tiny(session, admin)


def _count(session, model) -> int:
    return session.scalar(select(func.count()).select_from(model))


def _import(session, admin, name: str, data: bytes, fmt: str = "csv", **kw):
    return service.import_objects(session=session, actor=admin, res=service.resource(name), data=data, fmt=fmt, **kw)


def _refused(session, admin, object_type: str, data: bytes, **kw) -> list[tuple[int, str | None, str]]:
    before = (_count(session, AuditRecord), _count(session, service.resource(object_type).model))
    with pytest.raises(ImportRejected) as caught:
        _import(session, admin, object_type, data, **kw)
    assert (_count(session, AuditRecord), _count(session, service.resource(object_type).model)) == before
    return [(e.row, e.column, e.msg) for e in caught.value.report.errors]


def _has(errors, row, column, text):
    assert any(r == row and c == column and text in m for r, c, m in errors), (row, column, text, errors)


CASES = [  # file, object type, [(line, column, part of the message)]
    ("sites_cp1258.csv", "sites", [(2, None, "not valid UTF-8")]),
    ("sites_latin1.csv", "sites", [(2, None, "not valid UTF-8")]),
    ("sites_utf8_then_cp1258.csv", "sites", [(3, None, "Windows-1258")]),
    ("links_numbers.csv", "links", [(2, "capacity", "more than"), (3, "capacity", "more than"),
                                    (4, "capacity", "not a whole number"), (5, "capacity", "greater than 0"),
                                    (6, "capacity", "valid integer")]),
    ("agencies_codes.csv", "agencies", [(2, "code", "group 3 '0X' (level 2) must be two digits"),
                                        (3, "code", "group 1 '0000' (level 4) must be three digits"),
                                        (4, "code", "'G2' (level 1, the top-level organisation) must be three"),
                                        (5, "code", "the last group 'def'"), (6, "code", "the last group '03'")]),
    ("sites_missing_column.csv", "sites", [(1, "kind", "missing column 'kind'")]),
    ("sites_unknown_column.csv", "sites", [(1, "colour", "unknown column 'colour'")]),
    ("sites_quoted_newlines.csv", "sites", [(2, "name", "LF"), (5, "name", "LF"), (5, "kind", "Input should be"),
                                            (8, "kind", "Input should be")]),
    ("sites_duplicates.csv", "sites", [(4, "slug", "same slug as row 2")]),
    ("sites_formulas.csv", "sites", [(3, "name", "TAB")]),
    ("devices_addresses.csv", "devices", [(2, "mgmt_address", "the port 99999 is outside 1-65535"),
                                          (3, "mgmt_address", "the port 'abc' is not a number"),
                                          (4, "mgmt_address", "not a valid IPv4 address")]),
    ("sites_nul.csv", "sites", [(2, "name", "NUL")]),
]


@pytest.mark.parametrize("file,object_type,expected", CASES, ids=[c[0] for c in CASES])
def test_corpus_file_is_refused_naming_line_and_reason(session, admin, tiny, file, object_type, expected):
    errors = _refused(session, admin, object_type, (CORPUS / file).read_bytes())
    for row, column, text in expected:
        _has(errors, row, column, text)
    assert len(errors) == len(expected), errors


def test_a_named_encoding_is_accepted_and_stored_nfc(session, admin, tiny):
    for file, encoding in (("sites_cp1258.csv", "cp1258"), ("sites_latin1.csv", "latin-1")):
        report = _import(session, admin, "sites", (CORPUS / file).read_bytes(), encoding=encoding)
        assert report.created == 1
    name = session.scalar(select(Site.name).where(Site.slug == "gw-01-9"))
    assert name == unicodedata.normalize("NFC", "Cổng kết nối Hà Nội")


def test_bom_and_crlf_import(session, admin, tiny):
    assert _import(session, admin, "sites", (CORPUS / "sites_bom_crlf.csv").read_bytes()).created == 2
    assert session.scalar(select(Site.name).where(Site.slug == "gw-01-6")) == "Cổng sáu"


def test_nfd_names_are_stored_nfc_and_found_without_diacritics(client, session, admin, tiny, make_token):
    assert _import(session, admin, "agencies", (CORPUS / "agencies_nfd.csv").read_bytes()).created == 1
    stored = session.scalar(select(Agency.name).where(Agency.code == "000.00.00.H22"))
    assert len(stored.encode()) == 39 and stored == unicodedata.normalize("NFC", stored)
    h = make_token(Role.noc)
    for q in ("quang ninh", "Quảng Ninh", unicodedata.normalize("NFD", "QUẢNG NINH"), "tinh quang"):
        codes = [a["code"] for a in client.get("/api/v1/agencies", params={"q": q}, headers=h).json()["results"]]
        assert codes == ["000.00.00.H22"], q


def test_formula_cells_are_guarded_in_csv_and_come_back_unchanged(session, admin, tiny):
    data = (CORPUS / "sites_formulas.csv").read_bytes().replace(b'gw-01-4,"\t=1+1",gateway,01\n', b"")
    assert _import(session, admin, "sites", data).created == 2
    res = service.resource("sites")
    exported = service.export_objects(session=session, actor=admin, res=res, fmt="csv")
    assert b",'=1+1," in exported and b",'@SUM(A1)," in exported
    assert b'"=1+1"' in service.export_objects(session=session, actor=admin, res=res, fmt="json")
    report = _import(session, admin, "sites", exported)
    assert (report.created, report.updated) == (0, 0)
    assert session.scalar(select(Site.name).where(Site.slug == "gw-01-5")) == "=1+1"
    assert service.export_objects(session=session, actor=admin, res=res, fmt="csv") == exported


def test_a_cell_over_128_kib_is_a_line_error(session, admin, tiny):
    data = f"slug,name,kind,unit\ngw-01-5,ok,gateway,01\ngw-01-4,{'x' * (128 * 1024 + 10)},gateway,01\n".encode()
    errors = _refused(session, admin, "sites", data)
    assert errors[0][0] == 3 and "character limit" in errors[0][2]


def test_50000_rows_whose_last_is_bad_store_nothing(session, admin, tiny):
    lines = ["code,name,kind,unit"] + [f"{i // 100:03d}.{i % 100:02d}.77.H01,Cơ quan {i},state,01"
                                        for i in range(50_000 - 1)]
    lines.append("999.99.77.H01,Cơ quan cuối,castle,01")
    errors = _refused(session, admin, "agencies", ("\n".join(lines) + "\n").encode())
    assert errors == [(50_001, "kind", errors[0][2])]


def test_rest_import_reports_the_line_and_takes_an_encoding(client, tiny, make_token):
    h = {**make_token(Role.noc), "content-type": "text/csv"}
    data = (CORPUS / "sites_cp1258.csv").read_bytes()
    r = client.post("/api/v1/sites/import", content=data, headers=h)
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM
    assert r.json()["errors"][0]["row"] == 2 and "cp1258" in r.json()["errors"][0]["msg"]
    r = client.post("/api/v1/sites/import", content=data, headers={**h, "content-type": "text/csv; charset=windows-1258"})
    assert r.status_code == 200 and r.json()["created"] == 1


def test_rest_import_refuses_an_unknown_encoding(client, tiny, make_token):
    r = client.post("/api/v1/sites/import", params={"encoding": "ebcdic"}, content=b"slug\n",
                    headers={**make_token(Role.noc), "content-type": "text/csv"})
    assert r.status_code == 422 and "unknown encoding" in r.json()["errors"][0]["msg"]


@pytest.mark.parametrize("path", ["/api/v1/agencies/99999999999999999999", "/api/v1/agencies/-1",
                                  "/api/v1/links/9223372036854775808"])
def test_oversized_path_ids_are_422(client, make_token, path):
    h = make_token(Role.noc)
    for method in ("GET", "PATCH", "DELETE"):
        r = client.request(method, path, json={} if method == "PATCH" else None, headers=h)
        assert r.status_code == 422 and r.headers["content-type"] == PROBLEM, (method, r.status_code, r.text)


@pytest.mark.parametrize("body,field", [({"capacity": 1e308 * 10}, "capacity"), ({"capacity": 2**63}, "capacity"),
                                        ({"capacity": 1.5}, "capacity"), ({"capacity": "1e999"}, "capacity")])
def test_rest_numbers_are_range_checked(client, session, tiny, make_token, body, field):
    from tslcd.registry.models import Link

    link_id = session.scalar(select(Link.id).where(Link.slug == "pe1-sw1"))
    r = client.patch(f"/api/v1/links/{link_id}", content=__import__("json").dumps(body).replace("Infinity", "1e999"),
                     headers={**make_token(Role.noc), "content-type": "application/json"})
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM, r.text


def _cli(tmp_path: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = {"TSLCD_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}", "TSLCD_VAR_DIR": str(tmp_path / "var"),
           "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path)}
    return subprocess.run([sys.executable, "-m", "tslcd", *args], env=env, capture_output=True, text=True,
                          timeout=300, cwd=tmp_path, input=stdin)


def test_cli_gives_one_line_errors_and_round_trips_units(tmp_path):
    """The whole path a user takes: `tslcd import admin-units` and `tslcd export admin-units` crashed."""
    assert _cli(tmp_path, "db", "upgrade").returncode == 0
    units = tmp_path / "units.csv"
    units.write_text("code,kind,name,valid_from,parent\nVN,central,Trung ương,,\n01,province,Thành phố Hà Nội,"
                     "2025-07-01,VN\n00004,commune,Phường Ba Đình,2025-07-01,01\n", encoding="utf-8")
    done = _cli(tmp_path, "import", "admin-units", str(units))
    assert done.returncode == 0, done.stderr
    assert "3 created" in done.stdout
    for fmt in ("csv", "json"):
        out = tmp_path / f"units.{fmt}"
        exported = _cli(tmp_path, "export", "admin-units", "--format", fmt, "-o", str(out))
        assert exported.returncode == 0 and "Traceback" not in exported.stderr, exported.stderr
    again = _cli(tmp_path, "import", "admin-units", str(tmp_path / "units.csv"))
    assert again.returncode == 0 and "3 unchanged" in again.stdout, again.stderr
    bad = _cli(tmp_path, "import", "sites", str(CORPUS / "sites_cp1258.csv"))
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert bad.stderr.splitlines()[0].startswith("line 2: byte 0x") and "cp1258" in bad.stderr
