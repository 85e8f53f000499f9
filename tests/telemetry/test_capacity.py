"""The capacity report over a crafted network: three provinces, each hanging from the northern centre."""

from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
import statsmodels.api as sm
from sqlalchemy import select

from tests.factories import csv
from tslcd.core.errors import DomainValidationError
from tslcd.registry import schemas as rs
from tslcd.registry import service as registry
from tslcd.registry.models import Link, UnitKind
from tslcd.security.actor import SYSTEM
from tslcd.telemetry import capacity, storage
from tslcd.telemetry.models import RollupPeriod

G = 10**9
DAYS = 30


@pytest.fixture
def uplinks(session, admin) -> dict[str, Link]:
    """up-01a and up-01b (10G each) for Hà Nội, up-48 for Đà Nẵng, up-79 for TP. Hồ Chí Minh."""
    units = registry.resource("admin-units")
    central = registry.create_object(session=session, actor=admin, res=units, obj_in=rs.AdminUnitCreate(
        code="VN", kind=UnitKind.central, name="Trung ương"))
    for code, name in (("01", "Thành phố Hà Nội"), ("48", "Thành phố Đà Nẵng"), ("79", "Thành phố Hồ Chí Minh")):
        registry.create_object(session=session, actor=admin, res=units, obj_in=rs.AdminUnitCreate(
            code=code, kind=UnitKind.province, name=name, parent_id=central.id))

    def load(name: str, text: str) -> None:
        registry.import_objects(session=session, actor=admin, res=registry.resource(name), data=csv(text), fmt="csv")

    load("operators", "slug,name\ncbdtw,Cục Bưu điện Trung ương")
    load("agreements", "operator,tier,valid_from\ncbdtw,access_1,2016-01-01")
    load("sites", """slug,name,kind,unit
        rc-north,Trung tâm miền Bắc,regional_centre,01
        pc-01,Trung tâm tỉnh Hà Nội,provincial_centre,01
        pc-48,Trung tâm tỉnh Đà Nẵng,provincial_centre,48
        pc-79,Trung tâm tỉnh TP. Hồ Chí Minh,provincial_centre,79""")
    load("devices", """name,site,role,tier
        rc-1,rc-north,core_router,backbone
        pe-01,pc-01,pe_router,access_1
        pe-48,pc-48,pe_router,access_1
        pe-79,pc-79,pe_router,access_1""")
    load("interfaces", "device,name\n" + "\n".join(
        [f"rc-1,xe-0/0/{i}" for i in range(4)] + ["pe-01,Te0/0/0", "pe-01,Te0/0/1", "pe-48,Te0/0/0", "pe-79,Te0/0/0"]))
    load("links", """slug,a_device,a_interface,b_device,b_interface,capacity,tier
        up-01a,rc-1,xe-0/0/0,pe-01,Te0/0/0,10G,access_1
        up-01b,rc-1,xe-0/0/1,pe-01,Te0/0/1,10G,access_1
        up-48,rc-1,xe-0/0/2,pe-48,Te0/0/0,10G,access_1
        up-79,rc-1,xe-0/0/3,pe-79,Te0/0/0,10G,access_1""")
    return {link.slug: link for link in session.scalars(select(Link))}


@pytest.fixture
def first_day() -> datetime:
    return datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=DAYS)


def hourly(interface_id: int, first_day: datetime, avg_bps, max_bps, days: int = DAYS) -> list[tuple]:
    """Hourly roll-ups; avg_bps and max_bps are functions of the day."""
    return [(interface_id, first_day + timedelta(days=d, hours=h), 12, 0.5 * avg_bps(d), avg_bps(d),
             0.5 * max_bps(d), max_bps(d)) for d in range(days) for h in range(24)]


@pytest.fixture
def measured(session, uplinks, first_day):
    """Hà Nội 8 of 20 Gb/s (40 %), Đà Nẵng 3 of 10 (30 %) with daily peaks rising 1 point a day from 40 %,
    TP. HCM 9 of 10 (90 %); up-01b has 10 days of data only."""
    rows = (hourly(uplinks["up-01a"].a_interface_id, first_day, lambda d: 6 * G, lambda d: 6.2 * G)
            + hourly(uplinks["up-01b"].a_interface_id, first_day + timedelta(days=20), lambda d: 2 * G,
                     lambda d: 2.1 * G, days=10)
            + hourly(uplinks["up-48"].a_interface_id, first_day, lambda d: 3 * G, lambda d: (0.40 + 0.01 * d) * 10 * G)
            + hourly(uplinks["up-79"].a_interface_id, first_day, lambda d: 9 * G, lambda d: 9.5 * G))
    storage.write_rollups(session, RollupPeriod.hour, rows)


def _report(session, first_day, **kwargs):
    return capacity.capacity_report(session=session, actor=SYSTEM, start=first_day,
                                    end=first_day + timedelta(days=DAYS), **kwargs)


def test_capacity_sentence_and_the_lists_behind_it(session, measured, first_day):
    report = _report(session, first_day)
    assert (report.resolution, report.basis, report.percentile_of) == ("1h", "p95", "hourly averages")
    assert report.summary == "2 of 3 provinces under 60 %, 1 over 80 %"
    assert report.summary_vi == "2/3 tỉnh dưới 60 %, 1 tỉnh trên 80 %"
    assert [p.province.code for p in report.provinces.under] == ["01", "48"]
    assert [p.province.code for p in report.provinces.over] == ["79"]
    hanoi = report.provinces.under[0]
    assert (hanoi.uplinks, hanoi.measured_uplinks, hanoi.capacity, hanoi.p95_pct) == (2, 2, 20 * G, 40.0)
    assert [f.link.slug for f in report.top_links] == ["up-79", "up-01a", "up-48", "up-01b"]


def test_peak_basis_classes_by_peaks(session, measured, first_day):
    report = _report(session, first_day, basis="peak")
    assert report.summary == "1 of 3 provinces under 60 %, 1 over 80 %"
    assert [(p.province.code, p.peak_pct) for p in report.provinces.between] == [("48", 69.0)]


def test_forecasts(session, measured, uplinks, first_day):
    report = _report(session, first_day)
    forecasts = {f.link.slug: f.forecast for f in report.links.results}
    assert (report.crossing_count, [f.link.slug for f in report.crossing]) == (1, ["up-48"])
    rising = forecasts["up-48"]
    assert (rising.status, rising.crossing_date, rising.slope_pct_per_day) == \
        ("crosses", (first_day + timedelta(days=40)).date(), 1.0)
    assert rising.text_vi == f"dự kiến vượt 80 % vào khoảng {first_day + timedelta(days=40):%d/%m/%Y}"
    assert (forecasts["up-01b"].status, forecasts["up-01b"].text) == \
        ("not_enough_data", "not enough data (10 of 14 days needed)")
    assert forecasts["up-01b"].text_vi == "chưa đủ dữ liệu (10/14 ngày)"
    assert forecasts["up-79"].status == "already_over"
    assert forecasts["up-01a"].status == "not_rising"


def test_report_as_csv(session, measured, first_day):
    lines = capacity.report_csv(_report(session, first_day)).decode().splitlines()
    assert lines[0].startswith("province_code,province_name,class,uplinks")
    assert lines[1].startswith("79,Thành phố Hồ Chí Minh,over,1,1,10000000000,")
    links = capacity.report_csv(_report(session, first_day), "links").decode().splitlines()
    assert links[1].startswith("up-79,access_1,") and ",already_over,," in links[1]


def test_links_without_data_are_counted_not_listed(session, uplinks, first_day):
    """Issue 11 item 22: with no data the report listed every link (4.8 MB for 15,683 links)."""
    report = _report(session, first_day)
    assert (report.links.count, report.links.without_data, report.links.results) == (0, 4, [])
    assert (report.top_links, report.crossing, report.crossing_count) == ([], [], 0)
    assert capacity.report_csv(report, "links").decode().splitlines() == [",".join(capacity.LINK_COLUMNS)]


def test_the_link_table_is_paginated_busiest_first(session, measured, first_day):
    pages = [_report(session, first_day, limit=3, offset=offset).links for offset in (0, 3)]
    assert [(p.count, p.limit, p.offset, p.without_data) for p in pages] == [(4, 3, 0, 0), (4, 3, 3, 0)]
    assert [[f.link.slug for f in p.results] for p in pages] == [["up-79", "up-01a", "up-48"], ["up-01b"]]
    lines = capacity.report_csv(_report(session, first_day, limit=2, offset=1), "links").decode().splitlines()
    assert [line.split(",")[0] for line in lines[1:]] == ["up-01a", "up-48"]
    with pytest.raises(DomainValidationError):
        _report(session, first_day, limit=0)


def test_robust_trends_match_statsmodels_rlm():
    rng = np.random.default_rng(7)
    peaks = 30 + 0.7 * np.arange(30) + rng.normal(0, 3, (12, 30))
    peaks[:, 5] += 40  # an outlier day
    peaks[::3, 10:14] = np.nan  # days without data
    intercepts, slopes = capacity.robust_trends(peaks)
    for row, intercept, slope in zip(peaks, intercepts, slopes):
        days = np.flatnonzero(~np.isnan(row))
        fit = sm.RLM(row[days], sm.add_constant(days.astype(float)), M=sm.robust.norms.HuberT()).fit()
        np.testing.assert_allclose([intercept, slope], fit.params, rtol=1e-6)
