"""door: an index of flagged custody events (the board lists recent flagged handovers)

Revision ID: 0006_door
Revises: 0006_limits
Create Date: 2026-12-02 05:45:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_door"
down_revision = "0006_limits"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_custody_events_flagged",
        "custody_events",
        ["received_at"],
        postgresql_where=sa.text("flags IS NOT NULL"),
        sqlite_where=sa.text("flags IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_custody_events_flagged", table_name="custody_events")
