"""telemetry: per-direction utilization alarms, counter alarms

Utilization alarms are now one per link and direction (dedup key `kind:links:<id>:a_to_b` or `…:b_to_a`). An
active alarm under the old key (`kind:links:<id>`, the busier direction) would never be repeated nor cleared
again, so it is cleared here: the next poll raises it again under the key of its direction, if it still holds.
The new kind `counter_too_narrow` needs no DDL (the kind column is a plain string).

Revision ID: 0005
Revises: 0004
"""
from datetime import datetime, timezone

from alembic import op
import sqlalchemy as sa

from tslcd.core.types import UTCDateTime


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

UTILIZATION = ("utilization_warning", "utilization_critical")
# The key of an alarm of the old form: exactly kind:object_type:object_id
OLD_KEY = "dedup_key = kind || ':' || object_type || ':' || CAST(object_id AS VARCHAR(20))"


def _now() -> sa.BindParameter:
    return sa.bindparam("now", datetime.now(timezone.utc), type_=UTCDateTime())


def upgrade() -> None:
    op.get_bind().execute(sa.text(
        "UPDATE alarms SET cleared_at = :now WHERE cleared_at IS NULL AND kind IN :kinds AND " + OLD_KEY
    ).bindparams(_now(), sa.bindparam("kinds", UTILIZATION, expanding=True)))


def downgrade() -> None:
    bind = op.get_bind()
    # The old code knows neither per-direction keys nor the new kind.
    bind.execute(sa.text(
        "UPDATE alarms SET cleared_at = :now WHERE cleared_at IS NULL AND kind IN :kinds AND NOT (" + OLD_KEY + ")"
    ).bindparams(_now(), sa.bindparam("kinds", UTILIZATION, expanding=True)))
    bind.execute(sa.text("DELETE FROM alarms WHERE kind = 'counter_too_narrow'"))
