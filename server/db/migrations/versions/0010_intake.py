"""intake: API keys of a unit's software and the idempotency records of dossiers registered
by API or from a file (issue 17)

Revision ID: 0010_intake
Revises: 0009_shop
Create Date: 2026-12-02 16:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_intake"
down_revision = "0009_shop"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["unit_id"], ["units.id"], name=op.f("fk_api_keys_unit_id_units")),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_api_keys_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("prefix", name=op.f("uq_api_keys_prefix")),
    )
    op.create_table(
        "intake_records",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("dossier_code", sa.String(length=100), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("shipment_id", sa.Integer(), nullable=True),
        sa.Column("source", sa.String(length=10), nullable=False),
        sa.Column("api_key_id", sa.Integer(), nullable=True),
        sa.Column("pin_sealed", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["unit_id"], ["units.id"], name=op.f("fk_intake_records_unit_id_units")),
        sa.ForeignKeyConstraint(
            ["shipment_id"], ["shipments.id"], name=op.f("fk_intake_records_shipment_id_shipments")
        ),
        sa.ForeignKeyConstraint(
            ["api_key_id"], ["api_keys.id"], name=op.f("fk_intake_records_api_key_id_api_keys")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_intake_records")),
        sa.UniqueConstraint("unit_id", "kind", "dossier_code", name="uq_intake_records_dossier"),
    )
    op.create_index(
        "ix_intake_records_sealed",
        "intake_records",
        ["created_at"],
        postgresql_where=sa.text("pin_sealed IS NOT NULL"),
        sqlite_where=sa.text("pin_sealed IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_intake_records_sealed", table_name="intake_records")
    op.drop_table("intake_records")
    op.drop_table("api_keys")
