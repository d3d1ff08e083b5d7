"""The SQLite connections are set up as README and ARCHITECTURE.md promise."""

from __future__ import annotations

from server.db.engine import Database


async def _pragmas(conn, names):
    return {n: (await conn.exec_driver_sql(f"PRAGMA {n}")).scalar() for n in names}


async def test_writer_and_readers_are_durable_wal_connections(tmp_path):
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'hoso.db'}")
    try:
        names = ("journal_mode", "synchronous", "foreign_keys", "temp_store", "wal_autocheckpoint")
        async with db.write() as conn:
            writer = await _pragmas(conn, names)
        async with db.read() as conn:
            reader = await _pragmas(conn, names)
        # ingest's own sqlite3 writer connection (Database.run_sqlite_write)
        fast = await db.run_sqlite_write(
            lambda raw: {n: raw.execute(f"PRAGMA {n}").fetchone()[0] for n in names}
        )
    finally:
        await db.dispose()
    # synchronous 2 = FULL (custody evidence survives a power cut); temp_store 2 = MEMORY
    assert writer == {
        "journal_mode": "wal",
        "synchronous": 2,
        "foreign_keys": 1,
        "temp_store": 2,
        "wal_autocheckpoint": 5000,
    }
    assert fast == writer
    assert reader == {
        "journal_mode": "wal",
        "synchronous": 2,
        "foreign_keys": 1,
        "temp_store": 0,
        "wal_autocheckpoint": 1000,
    }
