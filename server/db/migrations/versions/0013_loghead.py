"""log_head: the Merkle log's size and right edge in one row, locked by appends instead of
an advisory lock and read with the write's other rows (issue 16); backfilled from the log

Revision ID: 0013_loghead
Revises: 0012_outbox
Create Date: 2026-12-03 13:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0013_loghead"
down_revision = "0012_outbox"
branch_labels = None
depends_on = None


def _right_edge(size: int) -> list[tuple[int, int]]:
    # shared/merkle.py right_edge, as it is today (a migration does not import the app)
    out, start = [], 0
    for level in range(size.bit_length() - 1, -1, -1):
        if size >> level & 1:
            out.append((level, start >> level))
            start += 1 << level
    return out


def upgrade() -> None:
    log_head = op.create_table(
        "log_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("edge", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_log_head")),
    )
    conn = op.get_bind()
    last = conn.execute(sa.text("SELECT max(idx) FROM log_nodes WHERE level = 0")).scalar()
    size = 0 if last is None else int(last) + 1
    edge = b""
    for level, idx in _right_edge(size):
        node = conn.execute(
            sa.text("SELECT hash FROM log_nodes WHERE level = :lv AND idx = :i"), {"lv": level, "i": idx}
        ).scalar()
        if node is None:
            raise RuntimeError(f"Merkle log node ({level}, {idx}) missing: the log cannot be backfilled")
        edge += bytes(node)
    op.bulk_insert(log_head, [{"id": 1, "size": size, "edge": edge}])


def downgrade() -> None:
    op.drop_table("log_head")
