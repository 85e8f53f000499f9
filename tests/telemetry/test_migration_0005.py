"""Migration 0005: active utilization alarms under the old per-link keys are cleared, to be raised again per
direction; other alarms are left alone. On both backends."""

from datetime import datetime, timezone

import pytest
from sqlalchemy import insert, select

from tslcd.core.database import make_engine
from tslcd.core.migrate import upgrade
from tslcd.telemetry.models import Alarm, AlarmKind, Severity


def _alarm(key: str, kind: AlarmKind, object_type: str = "links", object_id: int = 7,
           cleared: datetime | None = None) -> dict:
    seen = datetime(2026, 1, 5, 9, tzinfo=timezone.utc)
    return {"dedup_key": key, "kind": kind, "severity": Severity.warning, "source": "poll",
            "object_type": object_type, "object_id": object_id, "message": "m", "first_seen": seen,
            "last_seen": seen, "occurrences": 3, "cleared_at": cleared}


def test_0005_clears_active_utilization_alarms_under_the_old_keys(fresh_url):
    engine = make_engine(fresh_url)
    with engine.connect() as conn:
        upgrade("0004", connection=conn)
        conn.commit()
    old_cleared = datetime(2026, 1, 4, tzinfo=timezone.utc)
    rows = [_alarm("utilization_warning:links:7", AlarmKind.utilization_warning),
            _alarm("utilization_critical:links:8", AlarmKind.utilization_critical, object_id=8),
            _alarm("utilization_critical:links:9", AlarmKind.utilization_critical, object_id=9, cleared=old_cleared),
            _alarm("utilization_warning:links:7:a_to_b", AlarmKind.utilization_warning),
            _alarm("link_down:links:7", AlarmKind.link_down),
            _alarm("speed_mismatch:interfaces:12", AlarmKind.speed_mismatch, "interfaces", 12)]
    with engine.begin() as conn:
        # The columns as 0004 left them: the ORM's model is the target schema, and 0005 adds no column.
        conn.execute(insert(Alarm), rows)
    before = datetime.now(timezone.utc)
    with engine.connect() as conn:
        upgrade("head", connection=conn)
        conn.commit()
    with engine.connect() as conn:
        state = {key: cleared for key, cleared in conn.execute(select(Alarm.dedup_key, Alarm.cleared_at))}
    engine.dispose()
    assert state["utilization_warning:links:7"] >= before
    assert state["utilization_critical:links:8"] >= before
    assert state["utilization_critical:links:9"] == old_cleared  # already cleared: untouched
    assert {k: state[k] for k in ("utilization_warning:links:7:a_to_b", "link_down:links:7",
                                  "speed_mismatch:interfaces:12")} == dict.fromkeys(
        ("utilization_warning:links:7:a_to_b", "link_down:links:7", "speed_mismatch:interfaces:12"))
