"""Engines and transactions.

SQLite: WAL, synchronous=FULL (this is custody evidence), one writer at a time behind
an asyncio lock, each transaction opened with BEGIN IMMEDIATE, readers alongside. The
writer is SQLAlchemy's connection (`write()`), or, for ingest's hot path, a plain sqlite3
connection on a thread of its own (`run_sqlite_write`), under the same lock.
PostgreSQL: one pool; chain appends lock the shipment rows (SELECT … FOR UPDATE).
Ingest writes through custody/repository.py's `PgIngestWriter` (a few statements in the
driver's own text per batch), or with `pg_writer="core"` through the same SQLAlchemy
Core statements as SQLite's core writer (the tests compare what the two store).
Hot reads on PostgreSQL (the log's routes, the citizen page's version check) go through
`pg_fetch`: a small asyncpg pool of its own, statements in the driver's text ($1 …),
prepared once per connection, without the async ORM's per-query overhead.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import asyncpg
from sqlalchemy import event
from sqlalchemy.engine import make_url
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


def _connect_writer(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)  # we issue BEGIN ourselves
    for pragma in SQLITE_PRAGMAS + WRITER_PRAGMAS:
        conn.execute(pragma)
    return conn


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


SQLITE_WRITERS = ("fast", "core")
PG_WRITERS = ("fast", "core")


class Database:
    def __init__(
        self,
        url: str,
        *,
        merkle_log: bool = True,
        sqlite_writer: str = "fast",
        pg_writer: str = "fast",
        outbox: bool = True,
    ) -> None:
        if sqlite_writer not in SQLITE_WRITERS:
            raise ValueError(
                f"sqlite_writer must be one of {', '.join(SQLITE_WRITERS)}, got {sqlite_writer!r}"
            )
        if pg_writer not in PG_WRITERS:
            raise ValueError(f"pg_writer must be one of {', '.join(PG_WRITERS)}, got {pg_writer!r}")
        self.url = url
        self.merkle_log = merkle_log  # off only to measure what the log costs (bench/log.py)
        self.outbox = outbox  # ingest's outbox rows; off only to measure their cost (bench/outbox.py)
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
        # ingest on SQLite: the plain sqlite3 writer (fast) or SQLAlchemy's (core, to compare)
        self.sqlite_fast = self.is_sqlite and sqlite_writer == "fast"
        # ingest on PostgreSQL: PgIngestWriter (fast) or SQLAlchemy Core's statements (core)
        self.pg_fast = not self.is_sqlite and pg_writer == "fast"
        self._raw_path = make_url(url).database if self.is_sqlite else None
        self._raw_thread: ThreadPoolExecutor | None = None
        self._raw_conn: sqlite3.Connection | None = None
        self._pg_pool: asyncpg.Pool | None = None
        self._pg_pool_lock = asyncio.Lock()

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

    async def pg_fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        """PostgreSQL only: the rows of one read-only statement in asyncpg's text ($1, $2 …),
        on a pool of its own (opened on first use). For hot read routes: no SQLAlchemy
        between the route and the driver."""
        assert not self.is_sqlite, "pg_fetch is for PostgreSQL"
        pool = self._pg_pool or await self._open_pg_pool()
        async with pool.acquire() as conn:
            rows: list[asyncpg.Record] = await conn.fetch(sql, *args)
            return rows

    async def _open_pg_pool(self) -> asyncpg.Pool:
        async with self._pg_pool_lock:
            if self._pg_pool is None:
                u = make_url(self.url)
                self._pg_pool = await asyncpg.create_pool(
                    host=u.host,
                    port=u.port,
                    user=u.username,
                    password=u.password,
                    database=u.database,
                    min_size=1,
                    max_size=10,
                )
            return self._pg_pool

    def changed(self, what: str, codes: list[str]) -> None:
        """Call after a commit; a failing listener is logged, never undoes or fails the change."""
        for listener in self.listeners:
            try:
                listener(what, codes)
            except Exception:
                logging.getLogger(__name__).exception("change listener failed")

    async def run_sqlite_write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """SQLite only: fn(sqlite3 connection) as one write transaction (BEGIN IMMEDIATE …
        COMMIT, ROLLBACK on any error), run whole on a thread of its own.

        `write()` crosses to aiosqlite's thread and back once per statement; a hot path
        with several statements (ingest) saves those hops. The connection is this
        thread's own, set up as the writer's; the asyncio lock that serializes `write()`
        serializes it too, so there is still one writer at a time.
        """
        assert self._lock is not None and self._raw_path, "run_sqlite_write is for an SQLite file"
        async with self._lock:
            if self._raw_thread is None:
                self._raw_thread = ThreadPoolExecutor(1, thread_name_prefix="hoso-sqlite-writer")
            return await asyncio.get_running_loop().run_in_executor(self._raw_thread, self._raw_write, fn)

    def _raw_write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._raw_conn is None:
            self._raw_conn = _connect_writer(str(self._raw_path))
        return _in_immediate_transaction(self._raw_conn, fn)

    def _raw_close(self) -> None:
        if self._raw_conn is not None:
            self._raw_conn.close()
            self._raw_conn = None

    async def dispose(self) -> None:
        if self._raw_thread is not None:
            await asyncio.get_running_loop().run_in_executor(self._raw_thread, self._raw_close)
            self._raw_thread.shutdown()
            self._raw_thread = None
        if self._pg_pool is not None:
            await self._pg_pool.close()
            self._pg_pool = None
        await self.reader.dispose()
        if self.writer is not self.reader:
            await self.writer.dispose()
