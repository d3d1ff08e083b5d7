"""shop: a unit's procedure catalogue, its imported dossier registers, provinces' scoring rules,
and indexes matching shipments to the register by dossier code (issue 15)

Revision ID: 0009_shop
Revises: 0008_money
Create Date: 2026-12-02 14:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_shop"
down_revision = "0008_money"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "procedures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=500), nullable=False),
        sa.Column("field", sa.String(length=200), nullable=False),
        sa.Column("by_post", sa.Boolean(), nullable=False),
        sa.Column("components", sa.JSON(), nullable=False),
        sa.Column("fee_vnd", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["unit_id"], ["units.id"], name=op.f("fk_procedures_unit_id_units")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_procedures")),
        sa.UniqueConstraint("unit_id", "code", name="uq_procedures_unit_code"),
    )
    op.create_table(
        "register_imports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("filename", sa.String(length=200), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("imported_by", sa.Integer(), nullable=True),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["unit_id"], ["units.id"], name=op.f("fk_register_imports_unit_id_units")),
        sa.ForeignKeyConstraint(
            ["imported_by"], ["users.id"], name=op.f("fk_register_imports_imported_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_register_imports")),
        sa.UniqueConstraint("unit_id", "period_start", "period_end", name="uq_register_imports_period"),
    )
    op.create_table(
        "register_rows",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("import_id", sa.Integer(), nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("dossier_code", sa.String(length=100), nullable=False),
        sa.Column("procedure_code", sa.String(length=100), nullable=False),
        sa.Column("field", sa.String(length=200), nullable=False),
        sa.Column("received_on", sa.Date(), nullable=False),
        sa.Column("received_channel", sa.String(length=10), nullable=False),
        sa.Column("returned_on", sa.Date(), nullable=True),
        sa.Column("returned_channel", sa.String(length=10), nullable=True),
        sa.ForeignKeyConstraint(
            ["import_id"], ["register_imports.id"], name=op.f("fk_register_rows_import_id_register_imports")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_register_rows")),
    )
    op.create_index("ix_register_rows_import", "register_rows", ["import_id", "dossier_code"])
    op.create_table(
        "unit_provinces",
        sa.Column("unit_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("province", sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(["unit_id"], ["units.id"], name=op.f("fk_unit_provinces_unit_id_units")),
        sa.PrimaryKeyConstraint("unit_id", name=op.f("pk_unit_provinces")),
    )
    op.create_table(
        "scoring_rules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("province", sa.String(length=100), nullable=False),
        sa.Column("effective_from", sa.Date(), nullable=False),
        sa.Column("criterion", sa.String(length=1), nullable=False),
        sa.Column("threshold_bp", sa.Integer(), nullable=False),
        sa.Column("points_x100", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["created_by"], ["users.id"], name=op.f("fk_scoring_rules_created_by_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scoring_rules")),
    )
    op.create_index("ix_scoring_rules_province", "scoring_rules", ["province", "effective_from"])
    op.create_index("ix_shipments_unit_dossier", "shipments", ["unit_id", "dossier_ref"])
    op.create_index("ix_shipments_dest_dossier", "shipments", ["dest_unit_id", "dossier_ref"])


def downgrade() -> None:
    op.drop_index("ix_shipments_dest_dossier", table_name="shipments")
    op.drop_index("ix_shipments_unit_dossier", table_name="shipments")
    op.drop_index("ix_scoring_rules_province", table_name="scoring_rules")
    op.drop_table("scoring_rules")
    op.drop_table("unit_provinces")
    op.drop_index("ix_register_rows_import", table_name="register_rows")
    op.drop_table("register_rows")
    op.drop_table("register_imports")
    op.drop_table("procedures")
