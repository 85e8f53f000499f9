"""telemetry: rates, roll-ups, alarms, thresholds, poller cycles

On PostgreSQL `telemetry_rates` is partitioned by range of time and `telemetry_rollups` by list of period (each
period then by range of time); the partitions themselves are created on demand by tslcd.telemetry.storage before
a write needs them, so a fresh database holds the parents only. On SQLite both are WITHOUT ROWID tables.

Revision ID: 0002
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('poller_cycles',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('shard', sa.String(length=16), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('duration_s', sa.Float(), nullable=False),
    sa.Column('devices', sa.Integer(), nullable=False),
    sa.Column('interfaces', sa.Integer(), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_poller_cycles'))
    )
    with op.batch_alter_table('poller_cycles', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_poller_cycles_shard'), ['shard'], unique=False)
        batch_op.create_index(batch_op.f('ix_poller_cycles_started_at'), ['started_at'], unique=False)

    op.create_table('telemetry_rates',
    sa.Column('interface_id', sa.Integer(), nullable=False),
    sa.Column('ts', sa.DateTime(timezone=True), nullable=False),
    sa.Column('interval_s', sa.Float(), nullable=False),
    sa.Column('in_bps', sa.Float(), nullable=True),
    sa.Column('out_bps', sa.Float(), nullable=True),
    sa.Column('oper_up', sa.Boolean(), nullable=True),
    sa.PrimaryKeyConstraint('interface_id', 'ts', name=op.f('pk_telemetry_rates')),
    postgresql_partition_by='RANGE (ts)',
    sqlite_with_rowid=False
    )
    with op.batch_alter_table('telemetry_rates', schema=None) as batch_op:
        batch_op.create_index('ix_telemetry_rates_ts', ['ts'], unique=False, postgresql_using='brin')

    op.create_table('telemetry_rollup_marks',
    sa.Column('period', sa.String(length=2), nullable=False),
    sa.Column('done_until', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('period', name=op.f('pk_telemetry_rollup_marks'))
    )
    op.create_table('telemetry_rollups',
    sa.Column('period', sa.String(length=2), nullable=False),
    sa.Column('interface_id', sa.Integer(), nullable=False),
    sa.Column('ts', sa.DateTime(timezone=True), nullable=False),
    sa.Column('samples', sa.Integer(), nullable=False),
    sa.Column('in_avg', sa.Float(), nullable=True),
    sa.Column('out_avg', sa.Float(), nullable=True),
    sa.Column('in_max', sa.Float(), nullable=True),
    sa.Column('out_max', sa.Float(), nullable=True),
    sa.PrimaryKeyConstraint('period', 'interface_id', 'ts', name=op.f('pk_telemetry_rollups')),
    postgresql_partition_by='LIST (period)',
    sqlite_with_rowid=False
    )
    with op.batch_alter_table('telemetry_rollups', schema=None) as batch_op:
        batch_op.create_index('ix_telemetry_rollups_period_ts', ['period', 'ts'], unique=False)

    op.create_table('alarms',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('dedup_key', sa.String(length=120), nullable=False),
    sa.Column('kind', sa.Enum('utilization_warning', 'utilization_critical', 'link_down', 'speed_mismatch', 'device_unreachable', name='alarmkind', native_enum=False, length=32), nullable=False),
    sa.Column('severity', sa.Enum('info', 'warning', 'major', 'critical', name='severity', native_enum=False, length=16), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('object_type', sa.String(length=24), nullable=False),
    sa.Column('object_id', sa.Integer(), nullable=False),
    sa.Column('device_id', sa.Integer(), nullable=True),
    sa.Column('link_id', sa.Integer(), nullable=True),
    sa.Column('operator_id', sa.Integer(), nullable=True),
    sa.Column('province_id', sa.Integer(), nullable=True),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('value', sa.Float(), nullable=True),
    sa.Column('first_seen', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_seen', sa.DateTime(timezone=True), nullable=False),
    sa.Column('occurrences', sa.Integer(), nullable=False),
    sa.Column('cleared_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['device_id'], ['devices.id'], name=op.f('fk_alarms_device_id_devices'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['link_id'], ['links.id'], name=op.f('fk_alarms_link_id_links'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['operator_id'], ['operators.id'], name=op.f('fk_alarms_operator_id_operators'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['province_id'], ['admin_units.id'], name=op.f('fk_alarms_province_id_admin_units'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_alarms'))
    )
    with op.batch_alter_table('alarms', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_alarms_device_id'), ['device_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_alarms_link_id'), ['link_id'], unique=False)
        batch_op.create_index('ix_alarms_open', ['cleared_at', 'severity'], unique=False)
        batch_op.create_index(batch_op.f('ix_alarms_operator_id'), ['operator_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_alarms_province_id'), ['province_id'], unique=False)
        batch_op.create_index('uq_alarms_active_key', ['dedup_key'], unique=True, sqlite_where=sa.text('cleared_at IS NULL'), postgresql_where=sa.text('cleared_at IS NULL'))

    op.create_table('thresholds',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tier', sa.Enum('backbone', 'access_1', 'access_2', 'metro', 'premises', name='tier', native_enum=False, length=24), nullable=True),
    sa.Column('link_id', sa.Integer(), nullable=True),
    sa.Column('warning_pct', sa.Float(), nullable=False),
    sa.Column('critical_pct', sa.Float(), nullable=False),
    sa.CheckConstraint('(tier IS NULL) <> (link_id IS NULL)', name=op.f('ck_thresholds_tier_or_link')),
    sa.CheckConstraint('warning_pct > 0 AND warning_pct < critical_pct', name=op.f('ck_thresholds_ordered')),
    sa.ForeignKeyConstraint(['link_id'], ['links.id'], name=op.f('fk_thresholds_link_id_links'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_thresholds')),
    sa.UniqueConstraint('link_id', name=op.f('uq_thresholds_link_id')),
    sa.UniqueConstraint('tier', name=op.f('uq_thresholds_tier'))
    )


def downgrade() -> None:
    op.drop_table('thresholds')
    with op.batch_alter_table('alarms', schema=None) as batch_op:
        batch_op.drop_index('uq_alarms_active_key', sqlite_where=sa.text('cleared_at IS NULL'), postgresql_where=sa.text('cleared_at IS NULL'))
        batch_op.drop_index(batch_op.f('ix_alarms_province_id'))
        batch_op.drop_index(batch_op.f('ix_alarms_operator_id'))
        batch_op.drop_index('ix_alarms_open')
        batch_op.drop_index(batch_op.f('ix_alarms_link_id'))
        batch_op.drop_index(batch_op.f('ix_alarms_device_id'))

    op.drop_table('alarms')
    with op.batch_alter_table('telemetry_rollups', schema=None) as batch_op:
        batch_op.drop_index('ix_telemetry_rollups_period_ts')

    op.drop_table('telemetry_rollups')
    op.drop_table('telemetry_rollup_marks')
    with op.batch_alter_table('telemetry_rates', schema=None) as batch_op:
        batch_op.drop_index('ix_telemetry_rates_ts', postgresql_using='brin')

    op.drop_table('telemetry_rates')
    with op.batch_alter_table('poller_cycles', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_poller_cycles_started_at'))
        batch_op.drop_index(batch_op.f('ix_poller_cycles_shard'))

    op.drop_table('poller_cycles')
