"""Engines and transactions.

SQLite: WAL, synchronous=FULL (this is custody evidence), one writer connection
that opens with BEGIN IMMEDIATE behind an asyncio lock, readers alongside.
PostgreSQL: one pool; chain appends lock the shipment rows (SELECT … FOR UPDATE).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=FULL",
    "PRAGMA busy_timeout=10000",
    "PRAGMA foreign_keys=ON",
)
# The writer's statement journals (ingest applies a batch under a SAVEPOINT while its
# signatures are checked) in memory: in a temporary file, they cost each batch ~2 ms of
# writes (bench/ingest.py). Only the writer: a reader's big sorts may still spill to disk.
# Checkpoints at 5,000 WAL pages (~20 MB) instead of 1,000: a batch of 100 events writes
# ~140 pages, many of them the same index pages again, and a checkpoint copies each page
# once however often it was written; two servers synced turn about, 40,000 events each,
# were 5-7 % faster with it (README, "Benchmarks").
WRITER_PRAGMAS = ("PRAGMA temp_store=MEMORY", "PRAGMA wal_autocheckpoint=5000")


def _sqlite_engine(url: str, *, writer: bool) -> AsyncEngine:
    # Readers run each statement in autocommit, so a pooled connection holds no snapshot
    # and needs no ROLLBACK round trip to the driver's thread when it is returned.
    kwargs: dict[str, Any] = {"pool_size": 1, "max_overflow": 0} if writer else {"pool_reset_on_return": None}
    engine = create_async_engine(url, **kwargs)

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        for pragma in SQLITE_PRAGMAS + (WRITER_PRAGMAS if writer else ()):
            cur.execute(pragma)
        cur.close()

    if writer:

        @event.listens_for(engine.sync_engine, "begin")
        def _on_begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


T = TypeVar("T")


def _in_immediate_transaction(conn: sqlite3.Connection, fn: Callable[[sqlite3.Connection], T]) -> T:
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = fn(conn)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return result


class Database:
    def __init__(self, url: str, *, merkle_log: bool = True) -> None:
        self.url = url
        self.merkle_log = merkle_log  # off only to measure what the log costs (bench/log.py)
        self.cache: dict[str, Any] = {}  # process-local caches (device keys), filled on demand
        # told about committed changes (what, shipment codes): the console's live updates
        self.listeners: list[Callable[[str, list[str]], None]] = []
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            self.reader = _sqlite_engine(url, writer=False)
            self.writer = _sqlite_engine(url, writer=True)
            self._lock: asyncio.Lock | None = asyncio.Lock()
        else:
            self.reader = self.writer = create_async_engine(url, pool_size=10, max_overflow=10)
            self._lock = None

    @property
    def dialect(self) -> str:
        return self.writer.dialect.name

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self.reader.connect() as conn:
            yield conn

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """One transaction that commits on success and rolls back on any error."""
        if self._lock is None:
            async with self.writer.begin() as conn:
                yield conn
            return
        async with self._lock, self.writer.begin() as conn:
            yield conn

    def changed(self, what: str, codes: list[str]) -> None:
        """Call after a commit; a failing listener is logged, never undoes or fails the change."""
        for listener in self.listeners:
            try:
                listener(what, codes)
            except Exception:
                logging.getLogger(__name__).exception("change listener failed")

    async def run_sqlite_write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """SQLite only: fn(raw sqlite3 connection) as one write transaction (BEGIN IMMEDIATE …
        COMMIT, ROLLBACK on any error), run whole on the writer connection's own thread.

        `write()` crosses to that thread and back once per statement; a hot path with
        several statements (ingest) saves those hops and SQLAlchemy's per-statement work.
        The same asyncio lock and the same single connection serialize it with `write()`.
        """
        assert self._lock is not None, "run_sqlite_write is for SQLite"
        async with self._lock, self.writer.connect() as conn:
            driver = (await conn.get_raw_connection()).driver_connection  # an aiosqlite.Connection
            # aiosqlite's queue to its thread (what SQLAlchemy's adapter itself uses)
            return await driver._execute(_in_immediate_transaction, driver._conn, fn)

    async def dispose(self) -> None:
        await self.reader.dispose()
        if self.writer is not self.reader:
            await self.writer.dispose()
