"""device enrolment records: server-signed, one Merkle log leaf each

Revision ID: 0005_enrolment
Revises: 0004
Create Date: 2026-12-02 04:45:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_enrolment"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "device_enrolments",
        sa.Column("device_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("public_key", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("log_index", sa.BigInteger(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_id"], ["devices.id"], name=op.f("fk_device_enrolments_device_id_devices")
        ),
        sa.PrimaryKeyConstraint("device_id", name=op.f("pk_device_enrolments")),
        sa.UniqueConstraint("hash", name=op.f("uq_device_enrolments_hash")),
        sa.UniqueConstraint("log_index", name=op.f("uq_device_enrolments_log_index")),
        sa.UniqueConstraint("public_key", name=op.f("uq_device_enrolments_public_key")),
    )


def downgrade() -> None:
    op.drop_table("device_enrolments")
