"""flags: SQL NULL for an event without flags (it was stored as JSON 'null')

The partial index ix_custody_events_flagged (flags IS NOT NULL) was meant to hold the few
flagged events; with JSON 'null' in every row it held all of them, and each insert paid for
it. The column is now JSON(none_as_null=True); this rewrites the old rows' 'null' to NULL.
`flags` is what the server noted about an event, not part of the signed body or its hash.

Revision ID: 0007_flags
Revises: 0006_door
Create Date: 2026-12-02 14:00:00
"""

from alembic import op

revision = "0007_flags"
down_revision = "0006_door"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("UPDATE custody_events SET flags = NULL WHERE flags::text = 'null'")
    else:
        op.execute("UPDATE custody_events SET flags = NULL WHERE flags = 'null'")


def downgrade() -> None:
    pass  # NULL reads back as None, as 'null' did
