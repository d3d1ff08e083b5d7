"""The tables of custody: what one ingest transaction reads and writes.

`IngestWriter` is the one writer of ingest, over an `Executor` (server/db/executor.py):
SQLAlchemy's own connection, or SQLite's raw connection on the writer's thread. Both run
the statements below, built once from the table metadata.

`PgIngestWriter` is ingest's writer on PostgreSQL: the same reads, but the shipments are
locked with one statement for any number of codes, and the batch is written at the end
of the transaction as one statement (`INSERT … SELECT FROM unnest(…)` per table, the
shipments' `UPDATE … FROM unnest(…)`, the log's nodes, as data-modifying CTEs), after
the log's lock and its right edge (server/log/repository.py): per batch BEGIN, the lock
of the shipments, the log's lock, its size and edge, the write, COMMIT; before, each
table's rows were their own statement per row (executemany) and a savepoint cost two
more. Its savepoint is a mark in what it is still holding back.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any, TypeVar

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.sql import Select

from shared.timeutil import as_utc

from ..db.engine import Database
from ..db.executor import CoreExecutor, Executor, IntegrityErrors, Savepoint, SqliteExecutor
from ..db.models import custody_events, rejected_events, shipments, users
from ..log import repository as log_repository
from ..outbox import repository as outbox_repository

SHIPMENT_STATE_COLUMNS = (
    shipments.c.id,
    shipments.c.code,
    shipments.c.kind,
    shipments.c.state,
    shipments.c.head,
    shipments.c.seq,
    shipments.c.attempts,
    shipments.c.assigned_courier_id,
    shipments.c.custodian_role,
    shipments.c.custodian_name,
    shipments.c.custodian_user_id,
    shipments.c.recipient,
    shipments.c.closed_at,
    # what the outbox's rows name (server/outbox/repository.py)
    shipments.c.unit_id,
    shipments.c.dest_unit_id,
    shipments.c.dossier_ref,
)
_STATE_NAMES = tuple(c.name for c in SHIPMENT_STATE_COLUMNS)
# what an accepted event changes on its shipment
SHIPMENT_UPDATE_COLUMNS = (
    "state",
    "head",
    "seq",
    "attempts",
    "assigned_courier_id",
    "custodian_role",
    "custodian_name",
    "custodian_user_id",
    "closed_at",
)
_UPDATE_KEYS = (*SHIPMENT_UPDATE_COLUMNS, "updated_at")
_UPDATE = update(shipments).where(shipments.c.id == bindparam("b_id"))
_EVENT_KEYS = tuple(c.name for c in custody_events.columns)
_INSERT_EVENTS = insert(custody_events)
_REJECTED_KEYS = tuple(c.name for c in rejected_events.columns if c.name != "id")
_INSERT_REJECTED = {
    "sqlite": sqlite_insert(rejected_events).on_conflict_do_nothing(),
    "postgresql": pg_insert(rejected_events).on_conflict_do_nothing(),
}


@dataclass(slots=True)
class Batch:
    """What one transaction will write."""

    accepted: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)
    touched: dict[int, dict[str, Any]] = field(default_factory=dict)
    # outbox rows the caller made itself (registration's sealed PIN); the events' own are added
    outbox: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Party:
    """A user account named as an event's counterparty."""

    id: int
    role: str
    unit_id: int | None
    active: bool


def _in(column: Any, n: int, prefix: str) -> Any:
    return column.in_([bindparam(f"{prefix}{k}") for k in range(n)])


@lru_cache(maxsize=512)
def _shipments_by_code(n: int, for_update: bool) -> Select[Any]:
    query = select(*SHIPMENT_STATE_COLUMNS).where(_in(shipments.c.code, n, "c")).order_by(shipments.c.id)
    return query.with_for_update() if for_update else query


@lru_cache(maxsize=512)
def _events_by_id(n: int) -> Select[Any]:
    return select(custody_events.c.id, custody_events.c.hash).where(_in(custody_events.c.id, n, "e"))


@lru_cache(maxsize=64)
def _users_by_id(n: int) -> Select[Any]:
    return select(users.c.id, users.c.role, users.c.unit_id, users.c.active).where(_in(users.c.id, n, "u"))


_REJECTED_SINCE = select(func.count()).where(
    rejected_events.c.submitted_by == bindparam("user_id"),
    rejected_events.c.received_at >= bindparam("since", type_=rejected_events.c.received_at.type),
)


def _params(prefix: str, values: list[Any]) -> dict[str, Any]:
    return {f"{prefix}{k}": v for k, v in enumerate(values)}


def _stored_time(text: str) -> datetime:
    # a wire time (2026-11-22T03:04:05.123Z: the decoder checked the pattern, the sync
    # route that the time exists) as the aware datetime its column type stores
    return datetime.fromisoformat(text)


class IngestWriter:
    def __init__(self, ex: Executor) -> None:
        self.ex = ex

    def savepoint(self) -> Savepoint:
        return self.ex.savepoint()

    def lock_shipments(self, codes: list[str]) -> dict[str, dict[str, Any]]:
        """Read shipments for update. PostgreSQL row locks in id order (no deadlocks); on
        SQLite the whole write transaction is already exclusive (BEGIN IMMEDIATE)."""
        if not codes:
            return {}
        query = _shipments_by_code(len(codes), self.ex.dialect == "postgresql")
        rows = self.ex.rows(query, _params("c", codes))
        return {row[1]: dict(zip(_STATE_NAMES, row, strict=True)) for row in rows}

    def known(self, ids: list[str]) -> dict[str, str]:
        """The stored hash of each of these event ids that was accepted before."""
        if not ids:
            return {}
        return {r[0]: r[1] for r in self.ex.rows(_events_by_id(len(ids)), _params("e", ids))}

    def parties(self, ids: list[int]) -> dict[int, Party]:
        if not ids:
            return {}
        rows = self.ex.rows(_users_by_id(len(ids)), _params("u", ids))
        return {r[0]: Party(r[0], r[1], r[2], bool(r[3])) for r in rows}

    def rejected_since(self, user_id: int, since: datetime) -> int:
        """How many rejected events this user's syncs have had kept since then."""
        return int(self.ex.rows(_REJECTED_SINCE, {"user_id": user_id, "since": since})[0][0])

    def write_batch(
        self, batch: Batch, now: datetime, *, merkle_log: bool = True, outbox: bool = True
    ) -> None:
        """Insert the accepted and rejected events and update the shipments they moved, and
        the outbox rows they cause (`outbox=False` only for bench/outbox.py's comparison).
        The accepted rows' occurred_at and fix_at arrive as wire text (event_row)."""
        ex = self.ex
        if batch.accepted:
            if merkle_log:  # same transaction: an event is in the log exactly when it is in a chain
                start = log_repository.append(ex, [bytes.fromhex(row["hash"]) for row in batch.accepted])
                for offset, row in enumerate(batch.accepted):
                    row["log_index"] = start + offset
            for row in batch.accepted:
                row["occurred_at"] = _stored_time(row["occurred_at"])
                if row["fix_at"] is not None:
                    row["fix_at"] = _stored_time(row["fix_at"])
            ex.many(_INSERT_EVENTS, batch.accepted, _EVENT_KEYS)
        if batch.rejected:
            ex.many(_INSERT_REJECTED[ex.dialect], batch.rejected, _REJECTED_KEYS)
        if batch.touched:
            params = [
                {**{c: ship[c] for c in SHIPMENT_UPDATE_COLUMNS}, "updated_at": now, "b_id": sid}
                for sid, ship in batch.touched.items()
            ]
            ex.many(_UPDATE, params, _UPDATE_KEYS)
        if outbox and (batch.accepted or batch.outbox):
            outbox_repository.rows_for_batch(ex, batch.accepted, batch.touched, now, batch.outbox)


# --- PostgreSQL (PgIngestWriter) ---

_PG_LOCK_SHIPMENTS = (
    f"SELECT {', '.join(_STATE_NAMES)} FROM shipments WHERE code = ANY($1::text[]) ORDER BY id FOR UPDATE"
)
# (column, array type) of each part of the write, in the order of its parameters
_PG_EVENT_COLUMNS = (
    ("id", "text"),
    ("shipment_id", "int"),
    ("seq", "int"),
    ("type", "text"),
    ("hash", "text"),
    ("prev", "text"),
    ("actor", "text"),
    ("device_id", "int"),
    ("occurred_at", "timestamptz"),
    ("fix_at", "timestamptz"),
    ("received_at", "timestamptz"),
    ("lat", "float8"),
    ("lon", "float8"),
    ("body", "text"),
    ("flags", "text"),  # JSON text, cast below; SQL NULL when there are none
    ("log_index", "bigint"),
)
_PG_REJECTED_COLUMNS = (
    ("event_id", "text"),
    ("hash", "text"),
    ("shipment_code", "text"),
    ("shipment_id", "int"),
    ("type", "text"),
    ("actor", "text"),
    ("submitted_by", "int"),
    ("reason", "text"),
    ("body", "text"),
    ("received_at", "timestamptz"),
)
_PG_SHIPMENT_COLUMNS = (
    ("id", "int"),
    ("state", "text"),
    ("head", "text"),
    ("seq", "int"),
    ("attempts", "int"),
    ("assigned_courier_id", "int"),
    ("custodian_role", "text"),
    ("custodian_name", "text"),
    ("custodian_user_id", "int"),
    ("closed_at", "timestamptz"),
    ("updated_at", "timestamptz"),
)
assert {c for c, _ in _PG_EVENT_COLUMNS} == set(_EVENT_KEYS)
assert {c for c, _ in _PG_REJECTED_COLUMNS} == set(_REJECTED_KEYS)
assert {c for c, _ in _PG_SHIPMENT_COLUMNS} == {"id", *_UPDATE_KEYS}


def _unnest(columns: tuple[tuple[str, str], ...], first: int) -> str:
    arrays = ", ".join(f"${first + k}::{kind}[]" for k, (_, kind) in enumerate(columns))
    return f"unnest({arrays}) AS t({', '.join(c for c, _ in columns)})"


def _pg_write() -> str:
    names = [c for c, _ in _PG_EVENT_COLUMNS]
    events_from = _unnest(_PG_EVENT_COLUMNS, 4)
    rejected = [c for c, _ in _PG_REJECTED_COLUMNS]
    rejected_from = _unnest(_PG_REJECTED_COLUMNS, 4 + len(_PG_EVENT_COLUMNS))
    ship_from = _unnest(_PG_SHIPMENT_COLUMNS, 4 + len(_PG_EVENT_COLUMNS) + len(_PG_REJECTED_COLUMNS))
    sets = ", ".join(f"{c} = t.{c}" for c, _ in _PG_SHIPMENT_COLUMNS if c != "id")
    selected = ", ".join("t.flags::json" if c == "flags" else f"t.{c}" for c in names)
    return (
        f"WITH nodes AS ({log_repository.PG_INSERT_NODES}), "
        f"accepted AS (INSERT INTO custody_events ({', '.join(names)}) "
        f"SELECT {selected} FROM {events_from}), "
        f"rejected AS (INSERT INTO rejected_events ({', '.join(rejected)}) "
        f"SELECT {', '.join(f't.{c}' for c in rejected)} FROM {rejected_from} ON CONFLICT DO NOTHING) "
        f"UPDATE shipments AS s SET {sets} FROM {ship_from} WHERE s.id = t.id"
    )


_PG_WRITE = _pg_write()
_NO_NODES: list[list[Any]] = [[], [], []]


def _columns(rows: list[dict[str, Any]], columns: tuple[tuple[str, str], ...]) -> list[list[Any]]:
    return [[row[c] for row in rows] for c, _ in columns]


class _HeldBack:
    """PgIngestWriter's savepoint: what was written after it is dropped on undo."""

    def __init__(self, writer: PgIngestWriter) -> None:
        self.writer, self.mark = writer, len(writer.held)

    def keep(self) -> None:
        pass

    def undo(self) -> None:
        del self.writer.held[self.mark :]


class PgIngestWriter(IngestWriter):
    """Ingest's writer on PostgreSQL (see the module's docstring). Reads run at once;
    `write_batch` holds the batch back until `flush`, which the transaction runs last."""

    ex: CoreExecutor

    def __init__(self, ex: CoreExecutor) -> None:
        super().__init__(ex)
        self.held: list[tuple[Batch, datetime, bool, bool]] = []

    def savepoint(self) -> Savepoint:
        return _HeldBack(self)

    def lock_shipments(self, codes: list[str]) -> dict[str, dict[str, Any]]:
        """Read shipments for update, in id order (no deadlocks), with one statement."""
        if not codes:
            return {}
        out = {}
        for row in self.ex.native(_PG_LOCK_SHIPMENTS, [codes]):
            ship = dict(zip(_STATE_NAMES, row, strict=True))
            if isinstance(ship["recipient"], str):  # json arrives as its text
                ship["recipient"] = json.loads(ship["recipient"])
            if ship["closed_at"] is not None:
                ship["closed_at"] = as_utc(ship["closed_at"])
            out[ship["code"]] = ship
        return out

    def write_batch(
        self, batch: Batch, now: datetime, *, merkle_log: bool = True, outbox: bool = True
    ) -> None:
        self.held.append((batch, now, merkle_log, outbox))

    def flush(self) -> None:
        """Write what is held back: each batch as one statement (and, with accepted
        events, the log's lock and edge before it)."""
        held, self.held = self.held, []
        for batch, now, merkle_log, outbox in held:
            self._write(batch, now, merkle_log)
            if outbox and (batch.accepted or batch.outbox):  # the messages they cause, same transaction
                outbox_repository.rows_for_batch(self.ex, batch.accepted, batch.touched, now, batch.outbox)

    def _write(self, batch: Batch, now: datetime, merkle_log: bool) -> None:
        accepted = batch.accepted
        nodes = _NO_NODES
        if accepted and merkle_log:  # an event is in the log exactly when it is in a chain
            start, nodes = log_repository.pg_nodes(self.ex, [bytes.fromhex(row["hash"]) for row in accepted])
            for offset, row in enumerate(accepted):
                row["log_index"] = start + offset
        for row in accepted:
            row["occurred_at"] = _stored_time(row["occurred_at"])
            if row["fix_at"] is not None:
                row["fix_at"] = _stored_time(row["fix_at"])
            if row["flags"] is not None:
                row["flags"] = json.dumps(row["flags"])  # as SQLAlchemy's JSON type writes it
        ships = [{**ship, "id": sid, "updated_at": now} for sid, ship in batch.touched.items()]
        if not (accepted or batch.rejected or ships):
            return
        self.ex.native(
            _PG_WRITE,
            [
                *nodes,
                *_columns(accepted, _PG_EVENT_COLUMNS),
                *_columns(batch.rejected, _PG_REJECTED_COLUMNS),
                *_columns(ships, _PG_SHIPMENT_COLUMNS),
            ],
        )


T = TypeVar("T")
Wait = Callable[[], list[str | None]]
__all__ = ["IntegrityErrors"]


async def in_write_transaction(
    db: Database,
    fn: Callable[[IngestWriter, Wait], T],
    wait_blocking: Wait,
    wait_async: Callable[[], Awaitable[list[str | None]]],
) -> T:
    """fn(writer, wait) as one write transaction, on the writer this database uses for
    ingest; `wait()` blocks fn until the batch's checks are in (the waiter of each)."""
    if db.sqlite_fast:
        return await db.run_sqlite_write(lambda raw: fn(IngestWriter(SqliteExecutor(raw)), wait_blocking))

    def on_connection(conn: Any) -> T:
        ex = CoreExecutor(conn)
        if not db.pg_fast:
            return fn(IngestWriter(ex), lambda: ex.run_async(wait_async))
        writer = PgIngestWriter(ex)
        result = fn(writer, lambda: ex.run_async(wait_async))
        writer.flush()
        return result

    async with db.write() as conn:
        return await conn.run_sync(on_connection)
