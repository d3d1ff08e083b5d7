"""counter: how a shipment's dossier came in, `shipments.channel` ("post" or "counter"),
for dossiers handed in at a post-office counter or the one-stop shop's desk (issue 18)

Revision ID: 0011_counter
Revises: 0010_intake
Create Date: 2026-12-02 16:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0011_counter"
down_revision = "0010_intake"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("shipments") as batch:
        batch.add_column(sa.Column("channel", sa.String(length=10), server_default="post", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("shipments") as batch:
        batch.drop_column("channel")
