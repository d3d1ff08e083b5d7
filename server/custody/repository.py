"""The tables of custody: what one ingest transaction reads and writes.

`IngestWriter` is the one writer of ingest, over an `Executor` (server/db/executor.py):
SQLAlchemy's own connection, or SQLite's raw connection on the writer's thread. Both run
the statements below, built once from the table metadata.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any, TypeVar

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.sql import Select

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
        return fn(IngestWriter(ex), lambda: ex.run_async(wait_async))

    async with db.write() as conn:
        return await conn.run_sync(on_connection)
