"""Two ways to run the same Core statements inside one write transaction, synchronously.

Repositories on the hot write path (ingest, the Merkle log) build SQLAlchemy Core
statements from the table metadata and run them through an `Executor`:

- `CoreExecutor`: a SQLAlchemy `Connection` (on PostgreSQL, and on SQLite when
  `HOSO_SQLITE_WRITER=core`), under `AsyncConnection.run_sync`. On PostgreSQL its
  `native` runs a statement written in the driver's own text (`$1`, arrays as lists) on
  the same connection's DBAPI cursor, in the same transaction: ingest's few statements
  per batch (custody/repository.py `PgIngestWriter`), with no compile-cache lookup and no
  per-value processing in SQLAlchemy.
- `SqliteExecutor`: a raw `sqlite3` connection, the whole transaction on one thread
  (`Database.run_sqlite_write`). Each statement is compiled once by SQLAlchemy's SQLite
  dialect, and each value passes through its column type's own bind and result
  processors, so it stores exactly the text SQLAlchemy would; what it saves is the
  thread hop and the compile-cache lookup per statement.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol, TypeVar

from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import AdaptedConnection, Connection
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.sql import ClauseElement, Executable, Select
from sqlalchemy.sql.compiler import SQLCompiler

_SQLITE = sqlite.dialect(paramstyle="named")
T = TypeVar("T")
# what a statement that breaks a constraint raises, on either executor
IntegrityErrors = (IntegrityError, sqlite3.IntegrityError)


class Savepoint(Protocol):
    def keep(self) -> None: ...
    def undo(self) -> None: ...


class Executor(Protocol):
    dialect: str  # "sqlite" | "postgresql"

    def rows(self, query: Select[Any], params: dict[str, Any] | None = None) -> Sequence[Sequence[Any]]:
        """The rows of a select, each value as its column type reads it."""
        ...

    def many(self, stmt: Executable, params: list[dict[str, Any]], keys: Sequence[str]) -> None:
        """Run an insert or update once per params dict (which it may change); `keys`: the
        columns it sets."""
        ...

    def savepoint(self) -> Savepoint: ...


class _CoreSavepoint:
    def __init__(self, conn: Connection) -> None:
        self._nested = conn.begin_nested()

    def keep(self) -> None:
        self._nested.commit()

    def undo(self) -> None:
        self._nested.rollback()


class CoreExecutor:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.dialect = conn.dialect.name

    def rows(self, query: Select[Any], params: dict[str, Any] | None = None) -> Sequence[Sequence[Any]]:
        return self.conn.execute(query, params or {}).all()

    def many(self, stmt: Executable, params: list[dict[str, Any]], keys: Sequence[str]) -> None:
        self.conn.execute(stmt, params)

    def savepoint(self) -> Savepoint:
        return _CoreSavepoint(self.conn)

    def native(self, sql: str, params: Sequence[Any] = ()) -> list[Sequence[Any]]:
        """PostgreSQL: run `sql` (asyncpg's text: `$1`, `$2` …) with `params` as asyncpg
        encodes them, on this connection's DBAPI cursor: inside the transaction (the
        driver adapter's cursor starts it, as SQLAlchemy's own statements do), one round
        trip. Its rows; a constraint it breaks raises SQLAlchemy's IntegrityError, as
        `rows` and `many` do."""
        dbapi = self.conn.dialect.loaded_dbapi
        cursor = self.conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(sql, params)
            rows: list[Sequence[Any]] = list(cursor.fetchall()) if cursor.description else []
            return rows
        except dbapi.Error as exc:
            raise DBAPIError.instance(sql, params, exc, dbapi.Error, hide_parameters=True) from exc
        finally:
            cursor.close()

    def run_async(self, fn: Callable[[], Awaitable[T]]) -> T:
        """Await fn() from inside `AsyncConnection.run_sync` (SQLAlchemy's documented
        AdaptedConnection.run_async), letting the event loop run meanwhile."""
        driver = self.conn.connection.dbapi_connection
        assert isinstance(driver, AdaptedConnection), "run_async needs an asyncio driver's connection"
        return driver.run_async(lambda _driver: fn())


class _Compiled:
    """A statement as SQLite text with named parameters, and the processors of its values."""

    __slots__ = ("binds", "fixed", "results", "sql")

    def __init__(self, stmt: Executable, keys: Sequence[str] | None) -> None:
        # every statement a repository builds is a ClauseElement, compiled by the SQLCompiler
        assert isinstance(stmt, ClauseElement)
        compiled = stmt.compile(dialect=_SQLITE, column_keys=list(keys) if keys is not None else None)
        assert isinstance(compiled, SQLCompiler)
        self.sql = compiled.string
        self.binds: list[tuple[str, Callable[[Any], Any]]] = []
        # the values the statement itself holds (level == 0), as SQLAlchemy would bind them
        self.fixed = {
            name: bind.effective_value for name, bind in compiled.binds.items() if not bind.required
        }
        for name, bind in compiled.binds.items():
            proc = bind.type.dialect_impl(_SQLITE).bind_processor(_SQLITE)
            if proc is not None:
                self.binds.append((name, proc))
        self.results: list[Callable[[Any], Any] | None] = []
        if isinstance(stmt, Select):
            for col in stmt.selected_columns:
                self.results.append(col.type.dialect_impl(_SQLITE).result_processor(_SQLITE, None))

    def bind(self, params: dict[str, Any]) -> dict[str, Any]:
        params = {**self.fixed, **params}
        return {**params, **{name: proc(params[name]) for name, proc in self.binds}}


class _SqliteSavepoint:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        conn.execute("SAVEPOINT speculative")

    def keep(self) -> None:
        self.conn.execute("RELEASE speculative")

    def undo(self) -> None:
        self.conn.execute("ROLLBACK TO speculative")
        self.conn.execute("RELEASE speculative")


class SqliteExecutor:
    dialect = "sqlite"
    # compiled statements, by statement (repositories build each shape once)
    _cache: dict[tuple[int, tuple[str, ...] | None], tuple[Executable, _Compiled]] = {}

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    @classmethod
    def _compiled(cls, stmt: Executable, keys: Sequence[str] | None) -> _Compiled:
        key = (id(stmt), tuple(keys) if keys is not None else None)
        hit = cls._cache.get(key)
        if hit is None or hit[0] is not stmt:  # the statement itself is kept, so its id stays its own
            hit = cls._cache[key] = (stmt, _Compiled(stmt, keys))
        return hit[1]

    def rows(self, query: Select[Any], params: dict[str, Any] | None = None) -> Sequence[Sequence[Any]]:
        c = self._compiled(query, None)
        rows = self.conn.execute(c.sql, c.bind(params or {})).fetchall()
        if not any(c.results):
            return rows
        procs = c.results
        return [tuple(v if p is None else p(v) for p, v in zip(procs, row, strict=True)) for row in rows]

    def many(self, stmt: Executable, params: list[dict[str, Any]], keys: Sequence[str]) -> None:
        c = self._compiled(stmt, keys)
        if c.fixed:
            params = [{**c.fixed, **row} for row in params]
        if c.binds:
            params = _bind_rows(c.binds, params)
        self.conn.executemany(c.sql, params)

    def savepoint(self) -> Savepoint:
        return _SqliteSavepoint(self.conn)


def _bind_rows(
    binds: list[tuple[str, Callable[[Any], Any]]], rows: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The rows, in place, with their values as their types store them (a row handed to
    `many` is written, not read again). Values that repeat from row to row (the batch's
    one server time, a null) are converted once."""
    for name, proc in binds:
        last_in: Any = _NOTHING
        last_out: Any = None
        for row in rows:
            v = row[name]
            if v is not last_in:
                last_in, last_out = v, proc(v)
            row[name] = last_out
    return rows


_NOTHING = object()
