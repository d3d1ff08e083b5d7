"""outbox: messages out (SMS, Zalo ZNS, webhooks) written with their cause, units' webhook
subscriptions and notification settings (issue 17)

Revision ID: 0012_outbox
Revises: 0011_counter
Create Date: 2026-12-02 16:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0012_outbox"
down_revision = "0011_counter"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "outbox_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("shipment_id", sa.Integer(), nullable=True),
        sa.Column("unit_id", sa.Integer(), nullable=True),
        sa.Column("channel", sa.String(length=10), nullable=False),
        sa.Column("topic", sa.String(length=40), nullable=False),
        sa.Column("subscription_id", sa.Integer(), nullable=True),
        sa.Column("destination", sa.String(length=300), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=True),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_at", TS, nullable=False),
        sa.Column("claimed_until", TS, nullable=True),
        sa.Column("claimed_by", sa.String(length=64), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("segments", sa.Integer(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("sent_at", TS, nullable=True),
        sa.ForeignKeyConstraint(
            ["shipment_id"], ["shipments.id"], name=op.f("fk_outbox_messages_shipment_id_shipments")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_messages")),
    )
    op.create_index(
        "ix_outbox_messages_due",
        "outbox_messages",
        ["next_at"],
        postgresql_where=sa.text("state = 'pending'"),
        sqlite_where=sa.text("state = 'pending'"),
    )
    op.create_index("ix_outbox_messages_shipment", "outbox_messages", ["shipment_id"])
    op.create_index(
        "ix_outbox_messages_dead",
        "outbox_messages",
        ["id"],
        postgresql_where=sa.text("state = 'dead'"),
        sqlite_where=sa.text("state = 'dead'"),
    )
    op.create_table(
        "webhook_subscriptions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("url", sa.String(length=500), nullable=False),
        sa.Column("event_types", sa.JSON(), nullable=False),
        sa.Column("secret", sa.String(length=100), nullable=False),
        sa.Column("previous_secret", sa.String(length=100), nullable=True),
        sa.Column("previous_until", TS, nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["unit_id"], ["units.id"], name=op.f("fk_webhook_subscriptions_unit_id_units")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_subscriptions")),
    )
    op.create_index("ix_webhook_subscriptions_unit", "webhook_subscriptions", ["unit_id"])
    op.create_table(
        "unit_notify",
        sa.Column("unit_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("channel", sa.String(length=10), nullable=False),
        sa.Column("zns_templates", sa.JSON(), nullable=False),
        sa.Column("sms_sender", sa.String(length=11), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["unit_id"], ["units.id"], name=op.f("fk_unit_notify_unit_id_units")),
        sa.PrimaryKeyConstraint("unit_id", name=op.f("pk_unit_notify")),
    )


def downgrade() -> None:
    op.drop_table("unit_notify")
    op.drop_index("ix_webhook_subscriptions_unit", table_name="webhook_subscriptions")
    op.drop_table("webhook_subscriptions")
    op.drop_index("ix_outbox_messages_dead", table_name="outbox_messages")
    op.drop_index("ix_outbox_messages_shipment", table_name="outbox_messages")
    op.drop_index("ix_outbox_messages_due", table_name="outbox_messages")
    op.drop_table("outbox_messages")
