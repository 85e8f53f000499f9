"""A national-axis-sized directory: import 111,000 agencies (with parents in the same file), then search and page.

    python benchmarks/bench_directory.py [--postgres URL] [--agencies 111000]

Prints one JSON line, a result per backend, with the bare insert of the same rows and a plain LIKE scan of the
same searches (the way `q` worked before its folded, indexed key) measured in the same run. Searches are 20
remembered parts of names and 10 code fragments (search_*); five common terms that match thousands of rows each
("uy ban nhan dan", "xa" …) are timed apart (common_term_*), as their cost is counting what they match.
"""

import argparse
import json
import statistics
import sys
import tempfile
import time

import orjson
from sqlalchemy import text

from tslcd.core import database
from tslcd.core.database import Base, scratch_database
from tslcd.registry import service
from tslcd.security.actor import SYSTEM
import tslcd.registry.models  # noqa: F401
import tslcd.security.models  # noqa: F401
import tslcd.telemetry.models  # noqa: F401


KINDS = ["Ủy ban nhân dân", "Hội đồng nhân dân", "Đảng ủy", "Ủy ban Mặt trận Tổ quốc", "Công an", "Trạm Y tế",
         "Trường Trung học cơ sở", "Trường Tiểu học", "Văn phòng Đăng ký đất đai", "Bưu điện văn hóa"]


def directory(n: int) -> list[dict]:
    """Ministries (G), provinces (H) and their departments and units, children listed before their parents.

    Names are real places (the 10,040 legacy communes of vietnamadminunits, with district and province) with the
    kinds of bodies a national directory lists, so searches meet the variety of real names."""
    from tslcd.registry.adminunits import _dataset_rows

    places = [(r["ward"], r["district"], r["province"]) for r in _dataset_rows("admin_units_legacy",
                                                                               "ward, district, province") if r["ward"]]
    rows = []
    tops = [f"000.00.00.{'G' if i < 40 else 'H'}{i % 100:02d}" for i in range(100)]
    per_top = (n - len(tops)) // len(tops)
    for t, top in enumerate(tops):
        suffix = top.split(".")[-1]
        for k in range(per_top):
            dept, unit = divmod(k, 100)
            dept += 1
            ward, district, province = places[(t * per_top + k) % len(places)]
            if unit == 0:
                rows.append({"code": f"000.{dept:02d}.00.{suffix}", "name": f"Sở/Vụ {dept} của {suffix}, {province}",
                             "kind": "state", "parent": top})
            else:
                kind = KINDS[(t + k) % len(KINDS)]
                rows.append({"code": f"{unit:03d}.{dept:02d}.00.{suffix}",
                             "name": f"{kind} {ward}, {district}, {province}", "kind": "state",
                             "parent": f"000.{dept:02d}.00.{suffix}"})
    rows.reverse()  # children first: the import must order the writes itself
    rows += [{"code": top, "name": f"Cơ quan {top}", "kind": "state", "parent": None} for top in tops]
    return rows


def queries(rows: list[dict]) -> dict[str, list[str]]:
    """What people type, without diacritics or case: words of a name they remember, a code fragment, and the
    common terms that match thousands of rows (reported on their own)."""
    from tslcd.core.text import fold

    picked = [rows[(i * 7919) % len(rows)] for i in range(1, 31)]
    remembered = []  # the commune's name, as a person remembers it: "xa tan lap", "phuong 3"
    for r in picked[:20]:
        place = fold(r["name"]).split(",")[0].split()
        remembered.append(" ".join(place[-3:]))
    codes = [r["code"].rsplit(".", 2)[0] for r in picked[20:]]
    common = ["uy ban nhan dan", "truong", "ha noi", "xa", "cong an"]
    return {"names": remembered, "codes": codes, "common": common}


def run(url: str, rows: list[dict]) -> dict:
    engine = database.configure(url)
    Base.metadata.create_all(engine)
    payload = orjson.dumps(rows)
    t0 = time.perf_counter()
    with database.session_scope() as session:
        report = service.import_objects(session=session, actor=SYSTEM, res=service.resource("agencies"),
                                        data=payload, fmt="json")
    took = time.perf_counter() - t0
    if engine.dialect.name == "postgresql":  # what autovacuum does within a minute of a bulk load
        with engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM ANALYZE agencies")
    res = service.resource("agencies")
    timings: dict[str, list[float]] = {"search": [], "page": [], "ilike": [], "common": []}
    per_query: list[tuple[str, int, float]] = []
    with database.session_scope(write=False) as session:
        for kind, batch in queries(rows).items():
            for i, q in enumerate(batch):
                t = time.perf_counter()
                count, _ = service.list_objects(session=session, actor=SYSTEM, res=res, q=q, limit=100)
                took_ms = (time.perf_counter() - t) * 1000
                timings["common" if kind == "common" else "search"].append(took_ms)
                per_query.append((q, count, round(took_ms, 1)))
                if kind == "common":
                    continue
                t = time.perf_counter()
                service.list_objects(session=session, actor=SYSTEM, res=res, limit=100, offset=i * 2000)
                timings["page"].append((time.perf_counter() - t) * 1000)
                # The old way, measured in the same run: LIKE over the columns (needing the exact diacritics)
                t = time.perf_counter()
                session.execute(text("SELECT count(*) FROM agencies WHERE name LIKE :p OR code LIKE :p"),
                                {"p": f"%{q}%"}).scalar()
                session.execute(text("SELECT id FROM agencies WHERE name LIKE :p OR code LIKE :p ORDER BY id "
                                     "LIMIT 100"), {"p": f"%{q}%"}).all()
                timings["ilike"].append((time.perf_counter() - t) * 1000)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE bare_agencies (code varchar(40) primary key, name varchar(300),"
                          " kind varchar(24), parent varchar(40))"))
        t = time.perf_counter()
        conn.execute(text("INSERT INTO bare_agencies (code, name, kind, parent) VALUES (:code, :name, :kind, "
                          ":parent)"), rows)
        bare = time.perf_counter() - t
        conn.execute(text("DROP TABLE bare_agencies"))
    return {"backend": engine.dialect.name, "agencies": report.created, "import_s": round(took, 2),
            "agencies_per_s": round(report.created / took),
            "search_median_ms": round(statistics.median(timings["search"]), 1),
            "search_p90_ms": round(statistics.quantiles(timings["search"], n=10)[-1], 1),
            "search_max_ms": round(max(timings["search"]), 1),
            "ilike_scan_median_ms": round(statistics.median(timings["ilike"]), 1),
            "common_term_median_ms": round(statistics.median(timings["common"]), 1),
            "page_median_ms": round(statistics.median(timings["page"]), 1),
            "search_by_query": per_query if DETAIL else None,
            "bare_insert_s": round(bare, 2), "ratio_to_bare_insert": round(took / bare, 1)}


DETAIL = "--detail" in sys.argv


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--postgres", help="server URL; a throwaway database is created on it")
    ap.add_argument("--agencies", type=int, default=111_000)
    ap.add_argument("--detail", action="store_true", help="print each search's matches and time")
    args = ap.parse_args()
    rows = directory(args.agencies)
    results = [run(f"sqlite:///{tempfile.mkdtemp(prefix='tslcd-dir-')}/dir.db", rows)]
    if args.postgres:
        with scratch_database(args.postgres) as url:
            results.append(run(url, rows))
            database.get_engine().dispose()
    print(json.dumps({"benchmark": "agency_directory", "results": results}))


if __name__ == "__main__":
    sys.exit(main())
