"""limits: attempt counters (PIN and password tries, counted before the check) replace pin_failures

Revision ID: 0006_limits
Revises: 0005_enrolment
Create Date: 2026-12-02 04:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_limits"
down_revision = "0005_enrolment"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "attempt_counters",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_attempt_counters")),
    )
    with op.batch_alter_table("attempt_counters", schema=None) as batch_op:
        batch_op.create_index("ix_attempt_counters_window", ["window_start"], unique=False)
    # its failures were counted after the check; the counters start afresh (at most an hour lost)
    with op.batch_alter_table("pin_failures", schema=None) as batch_op:
        batch_op.drop_index("ix_pin_failures_code_time")
        batch_op.drop_index("ix_pin_failures_client_time")
    op.drop_table("pin_failures")


def downgrade() -> None:
    op.create_table(
        "pin_failures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("shipment_code", sa.String(length=13), nullable=False),
        sa.Column("client", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pin_failures")),
    )
    with op.batch_alter_table("pin_failures", schema=None) as batch_op:
        batch_op.create_index("ix_pin_failures_client_time", ["client", "created_at"], unique=False)
        batch_op.create_index("ix_pin_failures_code_time", ["shipment_code", "created_at"], unique=False)
    with op.batch_alter_table("attempt_counters", schema=None) as batch_op:
        batch_op.drop_index("ix_attempt_counters_window")
    op.drop_table("attempt_counters")
