"""Migration 0013_loghead: log_head is backfilled from the log as it stands (size and right
edge), an append after it continues the same tree, and the downgrade drops it."""

from __future__ import annotations

import asyncio
import contextlib
import random
import sqlite3

import pytest
from alembic import command

from server.db.migrate import alembic_config, upgrade
from shared import merkle
from tests.conftest import PG_URL, _pg_admin, _pg_url_for


@contextlib.contextmanager
def _database(backend: str, tmp_path):
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"
        return
    if not PG_URL:
        pytest.skip("PostgreSQL run needs HOSO_TEST_POSTGRES_URL")
    name = "hoso_h_pgingest_migration"
    with _pg_admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _pg_url_for(name)
    finally:
        with _pg_admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _sql(url: str, sql: str, rows: list[tuple] | None = None) -> list[tuple]:
    if url.startswith("sqlite"):
        with contextlib.closing(sqlite3.connect(url.removeprefix("sqlite+aiosqlite:///"))) as conn:
            if rows is not None:
                conn.executemany(sql, rows)
                conn.commit()
                return []
            return conn.execute(sql).fetchall()
    import psycopg

    with psycopg.connect(url.replace("postgresql+asyncpg://", "postgresql://")) as conn:
        if rows is not None:
            conn.cursor().executemany(sql.replace("?", "%s"), rows)
            return []
        return conn.execute(sql).fetchall()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
@pytest.mark.parametrize("size", [0, 1, 13, 64])
def test_log_head_backfilled_and_dropped(backend, size, tmp_path):
    from server.db.engine import Database
    from server.log import service as log_service

    with _database(backend, tmp_path) as url:
        upgrade(url, "0012_outbox")
        rng = random.Random(size)
        leaves = [rng.randbytes(32) for _ in range(size)]
        nodes = merkle.append_nodes(0, [merkle.leaf_hash(x) for x in leaves], lambda lv, i: b"")
        _sql(
            url,
            "INSERT INTO log_nodes (level, idx, hash) VALUES (?, ?, ?)",
            [(*k, h) for k, h in nodes.items()],
        )
        upgrade(url)
        [(one, stored, edge)] = _sql(url, "SELECT id, size, edge FROM log_head")
        assert (one, stored) == (1, size)
        assert bytes(edge) == b"".join(nodes[key] for key in merkle.right_edge(size))

        more = [rng.randbytes(32) for _ in range(5)]

        async def append() -> int:
            db = Database(url)
            try:
                async with db.write() as conn:
                    return await log_service.append(conn, more)
            finally:
                await db.dispose()

        assert asyncio.run(append()) == size  # continues where the log was
        hashes = [merkle.leaf_hash(x) for x in leaves + more]
        after = merkle.append_nodes(0, hashes, lambda lv, i: b"")
        [(stored, edge)] = _sql(url, "SELECT size, edge FROM log_head")
        assert stored == size + 5
        assert bytes(edge) == b"".join(after[key] for key in merkle.right_edge(size + 5))
        stored_nodes = {(lv, i): bytes(h) for lv, i, h in _sql(url, "SELECT level, idx, hash FROM log_nodes")}
        assert stored_nodes == after

        command.downgrade(alembic_config(url), "0012_outbox")
        tables = (
            "SELECT name FROM sqlite_master WHERE type = 'table'"
            if backend == "sqlite"
            else "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        )
        names = {name for (name,) in _sql(url, tables)}
        assert "log_head" not in names and "log_nodes" in names
        upgrade(url)  # and up again: backfilled from the log as it is now
        assert _sql(url, "SELECT size FROM log_head") == [(size + 5,)]
