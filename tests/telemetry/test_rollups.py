from datetime import timedelta

from sqlalchemy import select, text

from tests.telemetry.conftest import M, feed, link, sample
from tslcd.core.database import is_postgres
from tslcd.security.actor import SYSTEM
from tslcd.telemetry import service, storage, utilization
from tslcd.telemetry.models import Rate, Rollup, RollupPeriod
from tslcd.telemetry.storage import as_utc


def _rollups(session, period, interface_id):
    return [(as_utc(r.ts), r.samples, r.in_avg, r.in_max, r.out_avg, r.out_max) for r in session.scalars(
        select(Rollup).where(Rollup.period == period, Rollup.interface_id == interface_id).order_by(Rollup.ts))]


def test_rollups_of_known_minutes(session, tiny, day):
    """One-minute rates k = 1..60 Mb/s from 10:01 to 11:00, the 10:07 one a gap."""
    iid = link(session, "pe1-sw1").a_interface_id
    ten = day + timedelta(hours=10)
    feed(session, *[sample(iid, ten + timedelta(minutes=k), None if k == 7 else k * M,
                           None if k == 7 else 2 * k * M, interval=60) for k in range(1, 61)])
    result = service.rollup(session=session, until=day + timedelta(days=1, minutes=5))
    assert result.ranges["5m"] == (ten, day + timedelta(days=1))
    five = _rollups(session, "5m", iid)
    assert len(five) == 12
    assert five[0] == (ten, 5, 3e6, 5e6, 6e6, 10e6)  # 10:01..10:05 belong to the bucket starting 10:00
    assert five[1] == (ten + timedelta(minutes=5), 4, 8.25e6, 10e6, 16.5e6, 20e6)  # 6, 8, 9, 10: the gap is left out
    hour = _rollups(session, "1h", iid)
    assert len(hour) == 1 and hour[0][:2] == (ten, 59)
    assert hour[0][2] == (1830 - 7) * 1e6 / 59 and hour[0][3] == 60e6
    assert _rollups(session, "1d", iid) == [(day, *hour[0][1:])]


def test_peak_and_95th_percentile(session, tiny, day):
    """100 five-minute rates of 1..100 Mb/s in, twice that out, on a 200 Mb/s link."""
    pe1_sw1 = link(session, "pe1-sw1")
    feed(session, *[sample(pe1_sw1.a_interface_id, day + timedelta(minutes=5 * j), j * M, 2 * j * M)
                    for j in range(1, 101)])
    service.rollup(session=session, until=day + timedelta(days=1, minutes=5))
    start, end = day, day + timedelta(days=1)
    for resolution in ("raw", "5m"):
        figures = utilization.links_utilization(session=session, actor=SYSTEM, start=start, end=end,
                                                resolution=resolution, link_ids=[pe1_sw1.id]).links[0]
        assert (figures.p95_in_pct, figures.p95_out_pct, figures.p95_pct) == (47.5, 95.0, 95.0), resolution
        assert (figures.peak_in_pct, figures.peak_out_pct, figures.avg_in_pct) == (50.0, 100.0, 25.25), resolution
    hourly = utilization.links_utilization(session=session, actor=SYSTEM, start=start, end=end, resolution="1h",
                                           link_ids=[pe1_sw1.id]).links[0]
    assert hourly.peak_out_pct == 100.0  # peaks survive every roll-up


def test_link_read_from_the_b_end_swaps_directions(session, tiny, day):
    pe1_sw1 = link(session, "pe1-sw1")
    feed(session, sample(pe1_sw1.b_interface_id, day + timedelta(minutes=5), 10 * M, 30 * M))
    series = utilization.link_series(session=session, actor=SYSTEM, link_id=pe1_sw1.id, start=day,
                                     end=day + timedelta(hours=1))
    assert series.side == "b" and series.resolution == "raw"
    point = series.points[0]
    assert (point.in_bps, point.out_bps, point.in_pct, point.out_pct) == (30e6, 10e6, 15.0, 5.0)


def test_late_rates_are_rolled_up_again(session, tiny, day):
    iid = link(session, "pe1-sw1").a_interface_id
    feed(session, sample(iid, day + timedelta(minutes=5), 10 * M))
    service.rollup(session=session, until=day + timedelta(hours=1))
    feed(session, sample(iid, day + timedelta(minutes=4), 30 * M, interval=60))  # arrives after the job passed
    service.rollup(session=session, until=day + timedelta(hours=1))
    assert _rollups(session, "5m", iid)[0][:4] == (day, 2, 20e6, 30e6)


def test_retention_removes_old_data(session, tiny, day):
    iid = link(session, "pe1-sw1").a_interface_id
    old, recent = day - timedelta(days=10), day
    feed(session, sample(iid, old + timedelta(minutes=5), M), sample(iid, recent + timedelta(minutes=5), M))
    storage.write_rollups(session, RollupPeriod.five_minutes, [(iid, old - timedelta(days=200), 1, M, M, M, M),
                                                               (iid, recent, 1, M, M, M, M)])
    storage.write_rollups(session, RollupPeriod.hour, [(iid, old - timedelta(days=200), 1, M, M, M, M)])
    result = service.prune(session=session, now=day + timedelta(days=1))
    assert result.cutoffs["rates"] == day - timedelta(days=6)
    assert [as_utc(t) for t in session.scalars(select(Rate.ts).where(Rate.interface_id == iid))] == \
        [recent + timedelta(minutes=5)]
    assert _rollups(session, "5m", iid) == [(recent, 1, M, M, M, M)]
    assert len(_rollups(session, "1h", iid)) == 1  # hourly roll-ups are kept two years
    if is_postgres(session):
        gone = f"telemetry_rates_p{old:%Y%m%d}"
        assert gone in result.partitions_dropped
        assert session.scalar(text(f"SELECT to_regclass('{gone}')")) is None
        assert session.scalar(text(f"SELECT to_regclass('telemetry_rates_p{recent:%Y%m%d}')")) is not None



def test_coarse_reads_include_rates_not_yet_rolled_up(session, tiny, day):
    """A month's report right after polling starts must see the first rates, before any roll-up run."""
    pe1_sw1 = link(session, "pe1-sw1")
    feed(session, *[sample(pe1_sw1.a_interface_id, day + timedelta(minutes=5 * j), 20 * M, 40 * M)
                    for j in range(1, 13)])  # the first hour: 10 % in, 20 % out
    service.rollup(session=session, until=day + timedelta(minutes=32))  # the job has done half an hour
    feed(session, sample(pe1_sw1.a_interface_id, day + timedelta(hours=2, minutes=5), 100 * M, 180 * M))
    for resolution in ("5m", "1h", "1d"):
        figures = utilization.links_utilization(session=session, actor=SYSTEM, start=day - timedelta(days=20),
                                                end=day + timedelta(days=1), resolution=resolution,
                                                link_ids=[pe1_sw1.id]).links[0]
        assert figures.peak_out_pct == 90.0, resolution  # the latest rate, after the mark
        assert figures.peak_in_pct == 50.0, resolution


def test_before_the_first_roll_up_every_rate_counts(session, tiny, day):
    pe1_sw1 = link(session, "pe1-sw1")
    feed(session, sample(pe1_sw1.a_interface_id, day + timedelta(minutes=5), 20 * M, 160 * M))
    figures = utilization.links_utilization(session=session, actor=SYSTEM, start=day - timedelta(days=20),
                                            end=day + timedelta(days=1), resolution="1h",
                                            link_ids=[pe1_sw1.id]).links[0]
    assert figures.peak_out_pct == 80.0
