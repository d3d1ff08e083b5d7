"""money: remittances of fees collected on behalf (thu hộ), append-only, one per shipment fee

Revision ID: 0008_money
Revises: 0007_flags
Create Date: 2026-12-02 14:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_money"
down_revision = "0007_flags"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "remittances",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("record_id", sa.String(length=36), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("cashier_id", sa.Integer(), nullable=False),
        sa.Column("courier_id", sa.Integer(), nullable=False),
        sa.Column("expected_vnd", sa.BigInteger(), nullable=False),
        sa.Column("amount_vnd", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("signature", sa.String(length=64), nullable=False),
        sa.Column("strokes", sa.String(length=64), nullable=True),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["unit_id"], ["units.id"], name=op.f("fk_remittances_unit_id_units")),
        sa.ForeignKeyConstraint(["cashier_id"], ["users.id"], name=op.f("fk_remittances_cashier_id_users")),
        sa.ForeignKeyConstraint(["courier_id"], ["users.id"], name=op.f("fk_remittances_courier_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_remittances")),
        sa.UniqueConstraint("record_id", name=op.f("uq_remittances_record_id")),
        sa.UniqueConstraint("hash", name=op.f("uq_remittances_hash")),
    )
    op.create_index("ix_remittances_courier_time", "remittances", ["courier_id", "created_at"])
    op.create_table(
        "remittance_items",
        sa.Column("shipment_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("remittance_id", sa.Integer(), nullable=False),
        sa.Column("fee_vnd", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["shipment_id"], ["shipments.id"], name=op.f("fk_remittance_items_shipment_id_shipments")
        ),
        sa.ForeignKeyConstraint(
            ["remittance_id"], ["remittances.id"], name=op.f("fk_remittance_items_remittance_id_remittances")
        ),
        sa.PrimaryKeyConstraint("shipment_id", name=op.f("pk_remittance_items")),
    )
    op.create_index("ix_remittance_items_remittance_id", "remittance_items", ["remittance_id"])


def downgrade() -> None:
    op.drop_index("ix_remittance_items_remittance_id", table_name="remittance_items")
    op.drop_table("remittance_items")
    op.drop_index("ix_remittances_courier_time", table_name="remittances")
    op.drop_table("remittances")
