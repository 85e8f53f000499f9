"""Where measurements are written and summarised: batched inserts, partitions, roll-ups and retention.

Rates arrive at poller speed (about 10,000 a second nationally), so they bypass the ORM: one executemany on SQLite,
one binary COPY on PostgreSQL. On PostgreSQL `telemetry_rates` is range-partitioned by UTC day and
`telemetry_rollups` by period and then by UTC month; partitions are created just before a write needs them, and
retention drops whole partitions, which costs nothing however many rows they hold. SQLite deletes the same rows,
so both backends keep exactly the same data: retention cuts on partition boundaries on both.

Times: SQLite stores DateTime as text ("2025-07-01 10:05:00.000000", UTC) and compares it as text; every value
written here uses that exact shape, and the SQL below rebuilds it for roll-up buckets.
"""

import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from psycopg.errors import UniqueViolation
from sqlalchemy import text
from sqlalchemy.orm import Session

from tslcd.core.config import get_settings
from tslcd.core.database import is_postgres, utcnow
from tslcd.telemetry.models import RollupMark, RollupPeriod

UTC = timezone.utc
DAY = timedelta(days=1)
PERIOD_SECONDS = {RollupPeriod.five_minutes: 300, RollupPeriod.hour: 3600, RollupPeriod.day: 86400}
# Rates whose interval ended longer ago than this are late: the roll-up job may already have passed them.
SETTLE = timedelta(minutes=2)
_LOCK_KEY = 0x7453_524C  # "tSRL": one roll-up job at a time on PostgreSQL
_PARTITION_LOCK_KEY = 0x7453_5054  # "tSPT": one partition creator at a time
RATE_COLUMNS = "interface_id, ts, interval_s, in_bps, out_bps, oper_up"
ROLLUP_COLUMNS = "period, interface_id, ts, samples, in_avg, out_avg, in_max, out_max"
_RATE_TYPES = ["int4", "timestamptz", "float8", "float8", "float8", "bool"]
_ROLLUP_TYPES = ["text", "int4", "timestamptz", "int4", "float8", "float8", "float8", "float8"]

RateRow = tuple[int, datetime, float, float | None, float | None, bool | None]
RollupRow = tuple[int, datetime, int, float | None, float | None, float | None, float | None]


def as_utc(ts: datetime) -> datetime:
    """An aware UTC datetime; naive values (SQLite hands them back) are UTC already."""
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def sqlite_text(ts: datetime) -> str:
    """The text SQLAlchemy stores for a DateTime on SQLite, so raw and ORM writes compare alike."""
    return as_utc(ts).replace(tzinfo=None).isoformat(" ", "microseconds")


def floor_time(ts: datetime, seconds: int) -> datetime:
    epoch = int(as_utc(ts).timestamp())
    return datetime.fromtimestamp(epoch - epoch % seconds, UTC)


def bucket_of(ts: datetime, seconds: int = 300) -> datetime:
    """The bucket a rate belongs to: the one in which its interval ends, (start, start + period]."""
    return floor_time(as_utc(ts) - timedelta(microseconds=1), seconds)


def month_start(ts: datetime) -> datetime:
    ts = as_utc(ts)
    return datetime(ts.year, ts.month, 1, tzinfo=UTC)


def next_month(ts: datetime) -> datetime:
    return datetime(ts.year + ts.month // 12, ts.month % 12 + 1, 1, tzinfo=UTC)


# SQL pieces per dialect: bucket starts as epoch seconds, and back to a stored timestamp.
def epoch_sql(postgres: bool) -> str:
    return "CAST(extract(epoch FROM ts) AS BIGINT)" if postgres else "CAST(strftime('%s', ts) AS INTEGER)"


def _end_bucket_sql(postgres: bool, seconds: int) -> str:
    """Epoch of the bucket (start, start + seconds] holding `ts`, exact to the microsecond."""
    if postgres:
        return f"CAST(floor((extract(epoch FROM ts) * 1000000 - 1) / {seconds * 1_000_000}) * {seconds} AS BIGINT)"
    return (f"((CAST(strftime('%s', ts) AS INTEGER) * 1000000 + CAST(substr(ts, 21, 6) AS INTEGER) - 1)"
            f" / {seconds * 1_000_000}) * {seconds}")


def _start_bucket_sql(postgres: bool, seconds: int) -> str:
    return f"({epoch_sql(postgres)} / {seconds}) * {seconds}"


def _timestamp_sql(postgres: bool, epoch_sql: str) -> str:
    if postgres:
        return f"to_timestamp({epoch_sql})"
    return f"strftime('%Y-%m-%d %H:%M:%S', {epoch_sql}, 'unixepoch') || '.000000'"


def rate_buckets_select(postgres: bool, seconds: int, where: str) -> str:
    """Rates summarised per interface and bucket: what a roll-up stores, also read on the fly for recent data."""
    bucket = _end_bucket_sql(postgres, seconds)
    return (f"SELECT interface_id, {bucket} AS bucket,"
            " sum(CASE WHEN in_bps IS NOT NULL OR out_bps IS NOT NULL THEN 1 ELSE 0 END) AS samples,"
            " avg(in_bps) AS in_avg, avg(out_bps) AS out_avg, max(in_bps) AS in_max, max(out_bps) AS out_max"
            f" FROM telemetry_rates WHERE {where}"
            f" GROUP BY interface_id, {bucket} HAVING count(in_bps) + count(out_bps) > 0")


def _rollup_buckets_select(postgres: bool, source: RollupPeriod, seconds: int) -> str:
    """Finer roll-ups summarised into coarser buckets; averages weighted by their sample counts."""
    bucket = _start_bucket_sql(postgres, seconds)
    weighted = ("sum({c} * samples) / sum(CASE WHEN {c} IS NOT NULL THEN samples END)")
    return (f"SELECT interface_id, {bucket} AS bucket, sum(samples) AS samples,"
            f" {weighted.format(c='in_avg')} AS in_avg, {weighted.format(c='out_avg')} AS out_avg,"
            " max(in_max) AS in_max, max(out_max) AS out_max"
            f" FROM telemetry_rollups WHERE period = '{source.value}' AND ts >= :start AND ts < :end"
            f" GROUP BY interface_id, {bucket}")


def _upsert_rollups_sql(postgres: bool, period: RollupPeriod, select_sql: str) -> str:
    ts = _timestamp_sql(postgres, "bucket")
    return (f"INSERT INTO telemetry_rollups ({ROLLUP_COLUMNS})"
            f" SELECT '{period.value}', interface_id, {ts}, samples, in_avg, out_avg, in_max, out_max"
            f" FROM ({select_sql}) AS buckets WHERE true"
            " ON CONFLICT (period, interface_id, ts) DO UPDATE SET samples = excluded.samples,"
            " in_avg = excluded.in_avg, out_avg = excluded.out_avg, in_max = excluded.in_max,"
            " out_max = excluded.out_max")


# Partitions (PostgreSQL)
_known_partitions: set[tuple[str, str]] = set()  # (database URL, partition name) known to exist
_partitions_lock = threading.Lock()


def _url(session: Session) -> str:
    return session.get_bind().engine.url.render_as_string(hide_password=True)


def _rate_partition(day: datetime) -> tuple[str, str, datetime, datetime]:
    return f"telemetry_rates_p{day:%Y%m%d}", "telemetry_rates", day, day + DAY


def _rollup_partition(period: RollupPeriod, month: datetime) -> tuple[str, str, datetime, datetime]:
    return f"telemetry_rollups_{period.value}_p{month:%Y%m}", f"telemetry_rollups_{period.value}", month, \
        next_month(month)


def _ensure(session: Session, wanted: list[tuple[str, str, datetime, datetime]],
            parents: Sequence[tuple[str, str, str]] = ()) -> None:
    """Create missing partitions on their own committed connection, so they outlive a rolled-back write.

    CREATE TABLE + ATTACH PARTITION locks the parent only in SHARE UPDATE EXCLUSIVE mode, which does not wait
    for writers, so a caller's open transaction that already wrote to the parent cannot block it.
    `parents` are intermediate partitioned tables (name, parent, list value) to create first.
    """
    url = _url(session)
    missing = [w for w in wanted if (url, w[0]) not in _known_partitions]
    if not missing:
        return
    with _partitions_lock, session.get_bind().engine.connect() as conn:
        conn.exec_driver_sql("SET LOCAL lock_timeout = '10s'")
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PARTITION_LOCK_KEY})
        for name, parent, value in parents:
            if conn.scalar(text("SELECT to_regclass(:n)"), {"n": name}) is None:
                conn.exec_driver_sql(f"CREATE TABLE {name} (LIKE {parent} INCLUDING DEFAULTS) "
                                     "PARTITION BY RANGE (ts)")
                conn.exec_driver_sql(f"ALTER TABLE {parent} ATTACH PARTITION {name} FOR VALUES IN ('{value}')")
        for name, parent, start, end in missing:
            if conn.scalar(text("SELECT to_regclass(:n)"), {"n": name}) is None:
                conn.exec_driver_sql(f"CREATE TABLE {name} (LIKE {parent} INCLUDING DEFAULTS)")
                conn.exec_driver_sql(f"ALTER TABLE {parent} ATTACH PARTITION {name} FOR VALUES "
                                     f"FROM ('{start.isoformat()}') TO ('{end.isoformat()}')")
        conn.commit()
        _known_partitions.update((url, w[0]) for w in missing)


def ensure_rate_partitions(session: Session, first: datetime, last: datetime) -> None:
    if not is_postgres(session):
        return
    day, wanted = floor_time(first, 86400), []
    while day <= last:
        wanted.append(_rate_partition(day))
        day += DAY
    _ensure(session, wanted)


def ensure_rollup_partitions(session: Session, period: RollupPeriod, first: datetime, last: datetime) -> None:
    if not is_postgres(session):
        return
    month, wanted = month_start(first), []
    while month <= last:
        wanted.append(_rollup_partition(period, month))
        month = next_month(month)
    _ensure(session, wanted, parents=[(f"telemetry_rollups_{period.value}", "telemetry_rollups", period.value)])


# Writes
def _raw_connection(session: Session):
    return session.connection().connection.driver_connection


def write_rates(session: Session, rows: Sequence[RateRow], first: datetime, last: datetime) -> int:
    """Insert rates in one batch; a rate already stored (same interface and time) is kept. Returns rows added."""
    if not rows:
        return 0
    if not is_postgres(session):
        texts: dict[datetime, str] = {}
        prepared = []
        for iid, ts, interval, inb, outb, up in rows:
            stamp = texts.get(ts)
            if stamp is None:
                stamp = texts[ts] = sqlite_text(ts)
            prepared.append((iid, stamp, interval, inb, outb, up))
        cursor = _raw_connection(session).executemany(
            f"INSERT OR IGNORE INTO telemetry_rates ({RATE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)", prepared)
        return cursor.rowcount
    ensure_rate_partitions(session, first, last)
    savepoint = session.begin_nested()
    try:
        _copy(session, "telemetry_rates", RATE_COLUMNS, _RATE_TYPES, rows)
        savepoint.commit()
        return len(rows)
    except UniqueViolation:
        savepoint.rollback()
    # Some rates were stored before (a re-sent batch): stage them and keep the first copy of each.
    conn = _raw_connection(session)
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS telemetry_rates_staging (LIKE telemetry_rates) ON COMMIT DELETE ROWS")
    _copy(session, "telemetry_rates_staging", RATE_COLUMNS, _RATE_TYPES, rows)
    added = conn.execute(f"INSERT INTO telemetry_rates ({RATE_COLUMNS}) SELECT {RATE_COLUMNS} FROM "
                         "telemetry_rates_staging ON CONFLICT DO NOTHING").rowcount
    conn.execute("TRUNCATE telemetry_rates_staging")
    return added


def _copy(session: Session, table: str, columns: str, types: list[str], rows: Iterable[tuple]) -> None:
    with _raw_connection(session).cursor() as cursor:
        with cursor.copy(f"COPY {table} ({columns}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(types)
            for row in rows:
                copy.write_row(row)


def write_rollups(session: Session, period: RollupPeriod, rows: Sequence[RollupRow]) -> None:
    """Bulk-load roll-ups (backfills, benchmarks, tests); the job computes them with `rollup` instead."""
    if not rows:
        return
    if not is_postgres(session):
        _raw_connection(session).executemany(
            f"INSERT INTO telemetry_rollups ({ROLLUP_COLUMNS}) VALUES ('{period.value}', ?, ?, ?, ?, ?, ?, ?)",
            [(r[0], sqlite_text(r[1]), *r[2:]) for r in rows])
        return
    stamps = [r[1] for r in rows]
    ensure_rollup_partitions(session, period, min(stamps), max(stamps))
    _copy(session, "telemetry_rollups", ROLLUP_COLUMNS, _ROLLUP_TYPES, ((period.value, *r) for r in rows))


# Roll-ups
@dataclass
class RollupResult:
    skipped: bool = False  # another job holds the lock
    ranges: dict[str, tuple[datetime, datetime]] = field(default_factory=dict)  # period -> [start, end)


def mark_late(session: Session, earliest: datetime, now: datetime) -> None:
    """Rates older than the settling time may have been passed by the job: move its mark back over them."""
    if as_utc(earliest) >= now - SETTLE:
        return
    bucket = bucket_of(earliest)
    session.execute(text("UPDATE telemetry_rollup_marks SET done_until = :b WHERE period = '5m' AND done_until > :b"),
                    {"b": db_time(session, bucket)})


def db_time(session: Session, ts: datetime) -> datetime | str:
    """A time as a raw SQL parameter: aware on PostgreSQL, SQLAlchemy's stored text on SQLite."""
    return as_utc(ts) if is_postgres(session) else sqlite_text(ts)


def rollup(session: Session, *, until: datetime | None = None, since: datetime | None = None) -> RollupResult:
    """Summarise complete 5-minute buckets of rates, then the hours and days they complete.

    Starts where the last run stopped (or `since`, for a backfill); every bucket is recomputed as a whole and
    upserted, so a run may overlap another's range harmlessly.
    """
    postgres = is_postgres(session)
    if postgres and not session.scalar(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": _LOCK_KEY}):
        return RollupResult(skipped=True)
    end = floor_time((until or utcnow()) - SETTLE, 300)
    mark = session.get(RollupMark, RollupPeriod.five_minutes.value)
    seen = as_utc(mark.done_until) if mark is not None else None
    if since is not None:
        start = floor_time(since, 300)
    elif seen is not None:
        start = seen
    else:
        first = session.scalar(text("SELECT min(ts) FROM telemetry_rates"))
        if first is None:
            return RollupResult()
        start = bucket_of(first if isinstance(first, datetime) else datetime.fromisoformat(first))
    result = RollupResult()
    if start >= end:
        return result
    ranges = [(RollupPeriod.five_minutes, start, end)]
    for period in (RollupPeriod.hour, RollupPeriod.day):
        seconds = PERIOD_SECONDS[period]
        ranges.append((period, floor_time(start, seconds), floor_time(end, seconds)))
    for (period, lo, hi), source in zip(ranges, (None, RollupPeriod.five_minutes, RollupPeriod.hour)):
        if lo >= hi:
            continue
        ensure_rollup_partitions(session, period, lo, hi - timedelta(microseconds=1))
        seconds = PERIOD_SECONDS[period]
        if source is None:
            select_sql = rate_buckets_select(postgres, seconds, "ts > :start AND ts <= :end")
        else:
            select_sql = _rollup_buckets_select(postgres, source, seconds)
        session.execute(text(_upsert_rollups_sql(postgres, period, select_sql)),
                        {"start": db_time(session, lo), "end": db_time(session, hi)})
        result.ranges[period.value] = (lo, hi)
    if mark is None:
        session.add(RollupMark(period=RollupPeriod.five_minutes.value, done_until=end))
    else:
        # Compare-and-set: an ingest of late rates may have moved the mark back meanwhile; keep its move.
        session.execute(text("UPDATE telemetry_rollup_marks SET done_until = :end WHERE period = '5m' AND "
                             "done_until = :seen"), {"end": db_time(session, end), "seen": db_time(session, seen)})
        session.expire(mark)
    session.flush()
    return result


# Retention
@dataclass
class PruneResult:
    cutoffs: dict[str, datetime]  # table or roll-up period -> data before this time is gone
    partitions_dropped: list[str] = field(default_factory=list)  # PostgreSQL
    rows_deleted: int = 0  # SQLite, and poller cycles on both


def retention_cutoffs(now: datetime) -> dict[str, datetime]:
    """Rates go by whole UTC days, roll-ups by whole UTC months: the partitions PostgreSQL drops."""
    s = get_settings()
    cutoffs = {"rates": floor_time(now - timedelta(days=s.rates_retention_days), 86400)}
    for period, days in ((RollupPeriod.five_minutes, s.rollup_5m_retention_days),
                         (RollupPeriod.hour, s.rollup_1h_retention_days),
                         (RollupPeriod.day, s.rollup_1d_retention_days)):
        cutoffs[period.value] = month_start(now - timedelta(days=days))
    return cutoffs


_PARTITION_NAME = re.compile(r"^telemetry_(?:rates_p(\d{8})|rollups_(5m|1h|1d)_p(\d{6}))$")


def prune(session: Session, *, now: datetime | None = None) -> PruneResult:
    """Remove measurements older than their retention: drop partitions on PostgreSQL, delete rows on SQLite."""
    now = as_utc(now or utcnow())
    result = PruneResult(cutoffs=retention_cutoffs(now))
    cutoffs = result.cutoffs
    if is_postgres(session):
        # Dropping a partition waits for every transaction using the parent; give up rather than queue writers.
        session.execute(text("SET LOCAL lock_timeout = '5s'"))
        url = _url(session)
        names = session.scalars(text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent IN (SELECT oid FROM pg_class WHERE relname IN "
            "('telemetry_rates', 'telemetry_rollups_5m', 'telemetry_rollups_1h', 'telemetry_rollups_1d'))")).all()
        for name in sorted(names):
            match = _PARTITION_NAME.match(name)
            if match is None:
                continue
            if match.group(1):
                end = datetime.strptime(match.group(1), "%Y%m%d").replace(tzinfo=UTC) + DAY
                cutoff = cutoffs["rates"]
            else:
                end = next_month(datetime.strptime(match.group(3), "%Y%m").replace(tzinfo=UTC))
                cutoff = cutoffs[match.group(2)]
            if end <= cutoff:
                session.execute(text(f"DROP TABLE {name}"))
                _known_partitions.discard((url, name))
                result.partitions_dropped.append(name)
    else:
        deleted = session.execute(text("DELETE FROM telemetry_rates WHERE ts < :c"),
                                  {"c": db_time(session, cutoffs["rates"])}).rowcount
        for period in RollupPeriod:
            deleted += session.execute(text("DELETE FROM telemetry_rollups WHERE period = :p AND ts < :c"),
                                       {"p": period.value, "c": db_time(session, cutoffs[period.value])}).rowcount
        result.rows_deleted = deleted
    result.rows_deleted += session.execute(text("DELETE FROM poller_cycles WHERE started_at < :c"),
                                           {"c": db_time(session, cutoffs["rates"])}).rowcount
    return result
