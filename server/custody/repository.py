"""The tables of custody: what one ingest transaction reads and writes.

`IngestWriter` is the one writer of ingest, over an `Executor` (server/db/executor.py):
SQLAlchemy's own connection, or SQLite's raw connection on the writer's thread. Both run
the statements below, built once from the table metadata.

`PgIngestWriter` is ingest's writer on PostgreSQL: the same reads, but the shipments are
locked with one statement for any number of codes, which also reads the log's head
(log_head, unlocked: a guess) and the active webhook subscriptions; and the batch is
written at the end of the transaction as one statement (`INSERT … SELECT FROM unnest(…)`
per table, the outbox's rows too, the shipments' `UPDATE … FROM unnest(…)`, the log's
nodes, as data-modifying CTEs) that first moves log_head on from the size guessed and
writes nothing if another append came first. On such a miss the head is locked (`SELECT …
FOR UPDATE`) and the batch written again, and the next LOCK_FIRST_AFTER_MISS batches of
the process lock it first. Per batch: BEGIN, the shipments' lock, the write, COMMIT (one
more, the head's lock, after a miss); before log_head there were eight: BEGIN, the
shipments, the log's advisory lock, its size and edge, the write, the subscriptions, the
outbox's insert, COMMIT. Its savepoint is a mark in what it is still holding back.

A big batch's signatures are checked in helper processes while ingest plans it as if
they verify (custody/service.py). `write_while_checking` then splits the write in two:
first what needs no place in the log (the shipments' update, the citizen's messages),
sent at once so that PostgreSQL writes it while the checks finish; then, once they are
in, the rest (the log's head and nodes, the accepted events, the webhooks, which name an
event's log index, and the rejected events: see _pg_write) with the head's check as
above. The log's head is taken by that second statement only, so the section every
process waits for (from taking log_head's row lock to COMMIT) holds the events' and
nodes' rows, not the whole batch, and never waits for the checks. Nothing commits before
the checks are in: if they find a problem, the savepoint cannot take back what was sent,
so it raises `Redo`, and the transaction is rolled back and run again with the checks
known (a forged or broken event: rare). Five round trips, the third hidden behind the
checks; a batch whose checks are done before it is planned (a small one, checked in the
server) is still one write.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Awaitable, Callable, Iterator
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
# a batch's checks: each event's first problem, blocking or awaited (custody/service.py)
Wait = Callable[[], list[str | None]]
AsyncWait = Callable[[], Awaitable[list[str | None]]]
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

    def write_while_checking(self, wait: Wait) -> list[str | None]:
        """The checks' answer. A writer that holds its writes back may send them meanwhile
        (PgIngestWriter); this one has made them already."""
        return wait()

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

# the shipments' row lock, and with it (no lock) the log's head as a guess and the active
# webhook subscriptions: what the write statement needs besides the plan
_PG_LOCK_SHIPMENTS = (
    f"WITH h AS (SELECT size, edge FROM log_head WHERE id = 1), "
    f"subs AS ({outbox_repository.PG_ACTIVE_SUBS}) "
    f"SELECT {', '.join(f's.{c}' for c in _STATE_NAMES)}, h.size, h.edge, subs.subs "
    f"FROM shipments AS s LEFT JOIN h ON true CROSS JOIN subs "
    f"WHERE s.code = ANY($1::text[]) ORDER BY s.id FOR UPDATE OF s"
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


def _unnest(columns: tuple[tuple[str, str], ...], numbers: Iterator[int]) -> str:
    arrays = ", ".join(f"${next(numbers)}::{kind}[]" for _, kind in columns)
    return f"unnest({arrays}) AS t({', '.join(c for c, _ in columns)})"


@lru_cache(maxsize=8)  # one per (log, free, checked) used
def _pg_write(*, log: bool, free: bool, checked: bool) -> str:
    """A batch's write as one statement, each table's rows one `INSERT … SELECT FROM
    unnest(…)` (the shipments one `UPDATE … FROM unnest(…)`), as data-modifying CTEs.

    `log`: the accepted and the rejected events, with the log's nodes when `checked`
    (written only if the log's head is still the one guessed: log_repository.PG_SET_HEAD,
    $1 guessed size, $2 new size, $3 new edge; the statement's one value is then 1, else 0
    and nothing is written). `free`: the shipments' update, which needs no place in the log
    and can go before the head is taken. Both: the batch in one statement. The outbox's
    rows go with either (its parameters: the rows the caller gives).

    The rejected events go with the log's part although they have no place in it: their
    unique (event_id, hash) makes a transaction that inserts the same one wait for the
    first, and that wait must come while holding the head, as it does in the one
    statement, never before taking it (two transactions would each wait for the other)."""
    numbers = itertools.count(1)
    ctes: list[str] = []
    only = ""
    if log and checked:
        for _ in range(3):
            next(numbers)
        levels, idxs, hashes = next(numbers), next(numbers), next(numbers)
        insert_nodes = log_repository.PG_INSERT_NODES.format(levels, idxs, hashes)
        only = " WHERE EXISTS (SELECT FROM h)"
        ctes += [f"h AS ({log_repository.PG_SET_HEAD})", f"nodes AS ({insert_nodes}{only})"]
    if log:  # the rejected too: their unique (id, hash) can make a rival wait (above)
        names = [c for c, _ in _PG_EVENT_COLUMNS]
        selected = ", ".join("t.flags::json" if c == "flags" else f"t.{c}" for c in names)
        rejected = [c for c, _ in _PG_REJECTED_COLUMNS]
        ctes.append(
            f"accepted AS (INSERT INTO custody_events ({', '.join(names)}) "
            f"SELECT {selected} FROM {_unnest(_PG_EVENT_COLUMNS, numbers)}{only})"
        )
        ctes.append(
            f"rejected AS (INSERT INTO rejected_events ({', '.join(rejected)}) "
            f"SELECT {', '.join(f't.{c}' for c in rejected)} FROM {_unnest(_PG_REJECTED_COLUMNS, numbers)}"
            f"{only} ON CONFLICT DO NOTHING)"
        )
    outbox = [c for c, _ in outbox_repository.PG_COLUMNS]
    outbox_selected = ", ".join("t.payload::json" if c == "payload" else f"t.{c}" for c in outbox)
    ctes.append(
        f"outbox AS (INSERT INTO outbox_messages ({', '.join(outbox)}) "
        f"SELECT {outbox_selected} FROM {_unnest(outbox_repository.PG_COLUMNS, numbers)}{only})"
    )
    if free:
        sets = ", ".join(f"{c} = t.{c}" for c, _ in _PG_SHIPMENT_COLUMNS if c != "id")
        gate = only.replace(" WHERE ", " AND ")
        ctes.append(
            f"moved AS (UPDATE shipments AS s SET {sets} FROM {_unnest(_PG_SHIPMENT_COLUMNS, numbers)} "
            f"WHERE s.id = t.id{gate})"
        )
    result = "SELECT count(*) FROM h" if only else "SELECT 1"
    return f"WITH {', '.join(ctes)} {result}"


LOCK_FIRST_AFTER_MISS = 8  # batches that lock the log's head first after a wrong guess


def _columns(rows: list[dict[str, Any]], columns: tuple[tuple[str, str], ...]) -> list[list[Any]]:
    return [[row[c] for row in rows] for c, _ in columns]


class Redo(Exception):
    """A savepoint was undone over what was already sent: roll back and run again."""


class _HeldBack:
    """PgIngestWriter's savepoint: what was written after it is dropped on undo; `Redo`
    if some of it was sent already."""

    def __init__(self, writer: PgIngestWriter) -> None:
        self.writer, self.mark = writer, writer.sent + len(writer.held)

    def keep(self) -> None:
        pass

    def undo(self) -> None:
        writer = self.writer
        if writer.sent + writer.free_sent > self.mark:
            raise Redo
        del writer.held[self.mark - writer.sent :]


@dataclass(slots=True)
class HeadGuesses:
    """One process's record of its guesses at the log's head (Database.cache): after a
    wrong one, the next LOCK_FIRST_AFTER_MISS batches lock the head before writing."""

    lock_first: int = 0
    hits: int = 0
    misses: int = 0
    locked: int = 0


class PgIngestWriter(IngestWriter):
    """Ingest's writer on PostgreSQL (see the module's docstring). Reads run at once;
    `write_batch` holds the batch back until `flush`, which the transaction runs last."""

    ex: CoreExecutor

    def __init__(
        self, ex: CoreExecutor, guesses: HeadGuesses | None = None, checks: AsyncWait | None = None
    ) -> None:
        super().__init__(ex)
        self.held: list[tuple[Batch, datetime, bool, bool]] = []
        self.sent = 0  # batches flushed so far
        self.free_sent = 0  # of those held, how many (the first) had their free part sent
        self.checks = checks  # the batch's checks, to await while writing
        self.guesses = guesses or HeadGuesses()
        self.head: tuple[int, bytes] | None = None  # the log's head as read with the shipments
        self.subs: outbox_repository.Subscriptions | None = None
        self.head_locked = False

    def savepoint(self) -> Savepoint:
        return _HeldBack(self)

    def lock_shipments(self, codes: list[str]) -> dict[str, dict[str, Any]]:
        """Read shipments for update, in id order (no deadlocks), with one statement; and
        the log's head (a guess, not locked) and the webhook subscriptions with them."""
        if not codes:
            return {}
        out = {}
        n = len(_STATE_NAMES)
        for row in self.ex.native(_PG_LOCK_SHIPMENTS, [codes]):
            ship = dict(zip(_STATE_NAMES, row[:n], strict=True))
            if isinstance(ship["recipient"], str):  # json arrives as its text
                ship["recipient"] = json.loads(ship["recipient"])
            if ship["closed_at"] is not None:
                ship["closed_at"] = as_utc(ship["closed_at"])
            out[ship["code"]] = ship
            size, edge, subs = row[n:]
            if not self.head_locked and size is not None:
                self.head = (int(size), bytes(edge))
            self.subs = outbox_repository.Subscriptions(json.loads(subs))
        return out

    def write_batch(
        self, batch: Batch, now: datetime, *, merkle_log: bool = True, outbox: bool = True
    ) -> None:
        self.held.append((batch, now, merkle_log, outbox))

    def write_while_checking(self, wait: Wait) -> list[str | None]:
        """Send the part of what is held back that needs no place in the log, and let the
        checks finish while PostgreSQL writes it; their answer. The rest, which takes the
        log's head, is sent by `flush` (see the module's docstring)."""
        checks = self.checks
        if checks is None or not self.held:
            return wait()
        pending = self.ex.run_async(lambda: _started(checks))
        for batch, now, _, outbox in self.held[self.free_sent :]:
            self._prepare(batch)
            self._write(batch, now, outbox, None, log=False)
        self.free_sent = len(self.held)
        return self.ex.run_async(lambda: pending)

    def flush(self) -> None:
        """Write what is held back: each batch as one statement, its outbox rows in it (or,
        its free part sent already, the rest). With accepted events, the statement checks
        the log's head guessed; on a miss, the head is locked and the batch written again
        (the plan stands: its shipments are locked)."""
        held, self.held = self.held, []
        free_sent, self.free_sent = self.free_sent, 0
        self.sent += len(held)
        for k, (batch, now, merkle_log, outbox) in enumerate(held):
            free = k >= free_sent  # its free part is still to write
            if free:
                self._prepare(batch)
            if not (batch.accepted and merkle_log):
                self._write(batch, now, outbox, None, free=free)
                continue
            guesses = self.guesses
            leaves = [bytes.fromhex(row["hash"]) for row in batch.accepted]
            if self.head is not None and (self.head_locked or guesses.lock_first == 0):
                guessed = not self.head_locked
                if self._write(batch, now, outbox, log_repository.appended(*self.head, leaves), free=free):
                    guesses.hits += guessed
                    continue
                guesses.misses += 1
                guesses.lock_first = LOCK_FIRST_AFTER_MISS
            else:
                guesses.lock_first = max(0, guesses.lock_first - 1)
            size, edge = self.ex.native(log_repository.PG_LOCK_HEAD)[0]
            self.head, self.head_locked = (int(size), bytes(edge)), True
            guesses.locked += 1
            written = self._write(batch, now, outbox, log_repository.appended(*self.head, leaves), free=free)
            assert written, "the log's head moved while this transaction held its lock"

    def _prepare(self, batch: Batch) -> None:
        for row in batch.accepted:
            row["occurred_at"] = _stored_time(row["occurred_at"])
            if row["fix_at"] is not None:
                row["fix_at"] = _stored_time(row["fix_at"])
            if row["flags"] is not None:
                row["flags"] = json.dumps(row["flags"])  # as SQLAlchemy's JSON type writes it

    def _write(
        self,
        batch: Batch,
        now: datetime,
        outbox: bool,
        done: log_repository.Appended | None,
        *,
        log: bool = True,
        free: bool = True,
    ) -> bool:
        """One statement of `log` (the accepted events, in the log at `done`, and the
        rejected) and `free` (the shipments), each with its outbox rows; False if `done`
        was computed from a head that is no longer the log's. `done` only with `log`."""
        accepted = batch.accepted if log else []
        params: list[Any] = []
        if done is not None:  # an event is in the log exactly when it is in a chain
            for offset, row in enumerate(accepted):
                row["log_index"] = done.start + offset
            params += [done.start, done.size, done.edge, *log_repository.pg_node_arrays(done)]
        messages: list[dict[str, Any]] = []
        if outbox and (batch.accepted or batch.outbox):  # the messages they cause, same transaction
            # a webhook names its event's place in the log: it goes with the log's part
            webhooks = None if log and free else log
            messages = outbox_repository.batch_rows(
                batch.accepted, batch.touched, now, batch.outbox, self._subs, webhooks=webhooks
            )
            messages = [{**m, "payload": json.dumps(m["payload"])} for m in messages]
        rejected = batch.rejected if log else []
        touched = batch.touched.items() if free else ()
        ships = [{**ship, "id": sid, "updated_at": now} for sid, ship in touched]
        if done is None and not (accepted or rejected or ships or messages):
            return True
        if log:
            params += _columns(accepted, _PG_EVENT_COLUMNS)
            params += _columns(rejected, _PG_REJECTED_COLUMNS)
        params += _columns(messages, outbox_repository.PG_COLUMNS)
        if free:
            params += _columns(ships, _PG_SHIPMENT_COLUMNS)
        (count,) = self.ex.native(_pg_write(log=log, free=free, checked=done is not None), params)[0]
        if done is None:
            return True
        if count:
            self.head = (done.size, done.edge)  # this transaction holds the head's lock now
            self.head_locked = True
        return bool(count)

    def _subs(self) -> outbox_repository.Subscriptions:
        if self.subs is None:  # no shipment was locked (not an ingest batch): read them now
            (text,) = self.ex.native(outbox_repository.PG_ACTIVE_SUBS)[0]
            self.subs = outbox_repository.Subscriptions(json.loads(text))
        return self.subs


T = TypeVar("T")
__all__ = ["IntegrityErrors"]


async def _started(checks: AsyncWait) -> asyncio.Task[list[str | None]]:
    """The checks as a task: it runs whenever the event loop waits, the write's reply too."""
    return asyncio.ensure_future(checks())


async def in_write_transaction(
    db: Database,
    fn: Callable[[IngestWriter, Wait], T],
    wait_blocking: Wait,
    wait_async: AsyncWait,
) -> T:
    """fn(writer, wait) as one write transaction, on the writer this database uses for
    ingest; `wait()` blocks fn until the batch's checks are in (the waiter of each). If fn
    undoes a savepoint over a write already sent (`Redo`), it runs again in a new
    transaction, once: the checks are in by then."""
    if db.sqlite_fast:
        return await db.run_sqlite_write(lambda raw: fn(IngestWriter(SqliteExecutor(raw)), wait_blocking))

    def on_connection(conn: Any) -> T:
        ex = CoreExecutor(conn)
        if not db.pg_fast:
            return fn(IngestWriter(ex), lambda: ex.run_async(wait_async))
        writer = PgIngestWriter(ex, db.cache.setdefault("log_head_guesses", HeadGuesses()), wait_async)
        result = fn(writer, lambda: ex.run_async(wait_async))
        writer.flush()
        return result

    try:
        async with db.write() as conn:
            return await conn.run_sync(on_connection)
    except Redo:
        pass
    async with db.write() as conn:
        return await conn.run_sync(on_connection)
