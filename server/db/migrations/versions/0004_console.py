"""console: handovers signed on screen; indexes for the board and the reports

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 10:55:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "handovers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("clerk_id", sa.Integer(), nullable=False),
        sa.Column("courier_id", sa.Integer(), nullable=False),
        sa.Column("codes", sa.JSON(), nullable=False),
        sa.Column("signature", sa.String(length=64), nullable=False),
        sa.Column("strokes", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["clerk_id"], ["users.id"], name=op.f("fk_handovers_clerk_id_users")),
        sa.ForeignKeyConstraint(["courier_id"], ["users.id"], name=op.f("fk_handovers_courier_id_users")),
        sa.ForeignKeyConstraint(["unit_id"], ["units.id"], name=op.f("fk_handovers_unit_id_units")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_handovers")),
    )
    with op.batch_alter_table("handovers", schema=None) as batch_op:
        batch_op.create_index("ix_handovers_courier", ["courier_id", "id"], unique=False)
    with op.batch_alter_table("custody_events", schema=None) as batch_op:
        batch_op.create_index("ix_custody_events_actor_time", ["actor", "received_at"], unique=False)
        legs = sa.text("type IN ('picked_up', 'delivered')")
        batch_op.create_index(
            "ix_custody_events_legs",
            ["shipment_id", "type", "occurred_at"],
            unique=False,
            postgresql_where=legs,
            sqlite_where=legs,
        )
        outcomes = sa.text("type IN ('delivery_failed', 'confirmed')")
        batch_op.create_index(
            "ix_custody_events_outcomes",
            ["shipment_id"],
            unique=False,
            postgresql_where=outcomes,
            sqlite_where=outcomes,
        )
    with op.batch_alter_table("shipments", schema=None) as batch_op:
        open_states = sa.text("state IN ('registered', 'in_custody')")
        batch_op.create_index(
            "ix_shipments_open_due",
            ["due_at", "id"],
            unique=False,
            postgresql_where=open_states,
            sqlite_where=open_states,
        )
        batch_op.create_index("ix_shipments_created", ["created_at", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("shipments", schema=None) as batch_op:
        batch_op.drop_index("ix_shipments_created")
        batch_op.drop_index("ix_shipments_open_due")
    with op.batch_alter_table("custody_events", schema=None) as batch_op:
        batch_op.drop_index("ix_custody_events_outcomes")
        batch_op.drop_index("ix_custody_events_legs")
        batch_op.drop_index("ix_custody_events_actor_time")
    with op.batch_alter_table("handovers", schema=None) as batch_op:
        batch_op.drop_index("ix_handovers_courier")
    op.drop_table("handovers")
