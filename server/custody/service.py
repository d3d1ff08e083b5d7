"""Appending to a shipment's chain of custody.

Ingest hands a batch's signatures to the helper processes (verifier.py) and, in one
transaction meanwhile: locks the shipments, compares `prev` with each head, checks the
lifecycle, bulk-inserts accepted and rejected events and updates the shipments, under a
savepoint kept only if every hash and signature checks out; nothing commits before.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from shared import lifecycle
from shared.api import EventResult as EventResult
from shared.crypto import SigningKey, b64url_decode
from shared.events import (
    CustodyEvent,
    EventIntegrityError,
    compute_hash,
    new_event_id,
    sign_event,
    verify_event,
)
from shared.lifecycle import EventType, IllegalTransition, State
from shared.rules import content_problem
from shared.timeutil import from_wire, to_wire

from ..auth.service import CurrentUser
from ..db.engine import Database
from ..db.models import custody_events, devices, rejected_events, shipments
from ..log import service as log_service
from .verifier import RECORD, SignaturePool, record

_encode = msgspec.json.Encoder().encode
CLOCK_SKEW = timedelta(minutes=10)

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
)


@dataclass(slots=True)
class _Pending:
    index: int
    event: CustodyEvent
    problem: str | None  # found before the lock (hash, signature, actor, device)
    device_id: int | None


@dataclass(slots=True)
class Batch:
    """What one transaction will write."""

    accepted: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)
    touched: dict[int, dict[str, Any]] = field(default_factory=dict)


def apply_effects(ship: dict[str, Any], event: CustodyEvent, new_state: State, now: datetime) -> None:
    """Move a shipment (a dict of SHIPMENT_STATE_COLUMNS) past an accepted event."""
    ship["state"] = new_state.value
    ship["head"] = event.hash
    ship["seq"] += 1
    cp = event.counterparty
    kind = event.type
    if kind is EventType.REGISTERED:
        ship["custodian_role"], ship["custodian_name"], ship["custodian_user_id"] = (
            "sender",
            None,
            None,
        )
    elif kind is EventType.PICKED_UP:
        role, _, uid = event.actor.partition(":")
        ship["custodian_role"], ship["custodian_name"], ship["custodian_user_id"] = (
            role,
            None,
            int(uid),
        )
    elif kind in (EventType.TRANSFERRED, EventType.DELIVERED, EventType.RETURNED) and cp is not None:
        uid = cp.user_id if isinstance(cp.user_id, int) else None
        ship["custodian_role"], ship["custodian_name"], ship["custodian_user_id"] = (
            cp.role,
            cp.name,
            uid,
        )
        if kind is EventType.TRANSFERRED:
            # a transfer to a named courier hands the assignment on; to a hub it waits for dispatch
            ship["assigned_courier_id"] = uid if cp.role == "courier" else None
    elif kind is EventType.DELIVERY_FAILED:
        ship["attempts"] += 1
    if new_state in lifecycle.FINAL_STATES and ship.get("closed_at") is None:
        ship["closed_at"] = now


def _flags(event: CustodyEvent, ship: dict[str, Any], latest: str) -> list[str]:
    """`latest`: to_wire(now + CLOCK_SKEW); wire times of one fixed width compare as text."""
    flags: list[str] = []
    if event.occurred_at > latest:
        flags.append("device_clock_ahead")
    if event.type is EventType.DELIVERED and event.data.get("identity", {}).get("method") == "id_last4":
        expected = (ship.get("recipient") or {}).get("id_last4")
        got = event.counterparty.id_last4 if event.counterparty else None
        if expected and got != expected:
            flags.append("identity_mismatch")
    return flags


def event_row(
    event: CustodyEvent,
    ship_id: int,
    seq: int,
    device_id: int | None,
    now: datetime,
    flags: list[str] | None,
) -> dict[str, Any]:
    """The custody_events row; occurred_at and fix_at stay wire text until the writer stores them."""
    loc = event.location
    return {
        "id": event.id,
        "shipment_id": ship_id,
        "seq": seq,
        "type": event.type.value,
        "hash": event.hash,
        "prev": event.prev,
        "actor": event.actor,
        "device_id": device_id,
        "occurred_at": event.occurred_at,
        "fix_at": loc.fix_at if loc else None,
        "received_at": now,
        "lat": loc.lat if loc else None,
        "lon": loc.lon if loc else None,
        "body": _encode(event).decode(),
        "flags": flags or None,
        "log_index": None,
    }


def rejected_row(
    event: CustodyEvent, ship_id: int | None, reason: str, user: CurrentUser | None, now: datetime
) -> dict[str, Any]:
    return {
        "event_id": event.id,
        "hash": event.hash,
        "shipment_code": event.shipment,
        "shipment_id": ship_id,
        "type": event.type.value,
        "actor": event.actor,
        "submitted_by": user.id if user else None,
        "reason": reason,
        "body": _encode(event).decode(),
        "received_at": now,
    }


async def lock_shipments(conn: AsyncConnection, codes: list[str]) -> dict[str, dict[str, Any]]:
    """Read shipments for update. PostgreSQL row locks in id order (no deadlocks);
    on SQLite the whole write transaction is already exclusive (BEGIN IMMEDIATE)."""
    if not codes:
        return {}
    query = select(*SHIPMENT_STATE_COLUMNS).where(shipments.c.code.in_(codes)).order_by(shipments.c.id)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    rows = (await conn.execute(query)).all()
    return {r.code: dict(r._mapping) for r in rows}


_EVENT_COLUMNS = [c.name for c in custody_events.columns]
_SQLITE_EVENT_INSERT = (
    f"INSERT INTO custody_events ({', '.join(_EVENT_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(_EVENT_COLUMNS))})"
)


def _sqlite_datetime(v: datetime) -> str:
    # SQLAlchemy's SQLite DATETIME text, "%(year)04d-%(month)02d-%(day)02d %(hour)02d:%(minute)02d:
    # %(second)02d.%(microsecond)06d" of the UTC time; isoformat is the fast way to write it
    if v.tzinfo is not UTC:
        v = v.astimezone(UTC)
    return v.isoformat(" ", "microseconds")[:26]


def _sqlite_value(v: Any) -> Any:
    # the same text SQLAlchemy's SQLite DATETIME and JSON types write, without their per-value overhead
    if isinstance(v, datetime):
        return _sqlite_datetime(v)
    if isinstance(v, list):
        return json.dumps(v)
    return v


_SHIPMENT_UPDATE_COLUMNS = (
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
_UPDATE_ORDER = (*_SHIPMENT_UPDATE_COLUMNS, "updated_at", "b_id")
_SQLITE_SHIPMENT_UPDATE = (
    f"UPDATE shipments SET {', '.join(f'{c} = ?' for c in _UPDATE_ORDER[:-1])} WHERE id = ?"
)


def _wire_to_sqlite(text: str) -> str:
    # 2026-11-22T03:04:05.123Z -> 2026-11-22 03:04:05.123000, the text SQLAlchemy's SQLite
    # DATETIME writes for that UTC time (the decoder checked the wire pattern, the sync route
    # that the time exists)
    return f"{text[:10]} {text[11:23]}000"


async def _insert_events(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    """The hot insert of ingest: plain executemany on SQLite, Core executemany elsewhere."""
    for row in rows:
        row["occurred_at"] = from_wire(row["occurred_at"])
        if row["fix_at"] is not None:
            row["fix_at"] = from_wire(row["fix_at"])
    if conn.dialect.name == "sqlite":
        params = [tuple(_sqlite_value(r[c]) for c in _EVENT_COLUMNS) for r in rows]
        await conn.exec_driver_sql(_SQLITE_EVENT_INSERT, params)
    else:
        await conn.execute(insert(custody_events), rows)


async def write_batch(conn: AsyncConnection, batch: Batch, now: datetime, *, merkle_log: bool = True) -> None:
    if batch.accepted:
        if merkle_log:  # same transaction: an event is in the log exactly when it is in a chain
            start = await log_service.append(conn, [bytes.fromhex(row["hash"]) for row in batch.accepted])
            for offset, row in enumerate(batch.accepted):
                row["log_index"] = start + offset
        await _insert_events(conn, batch.accepted)
    if batch.rejected:
        ins = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
        await conn.execute(ins(rejected_events).on_conflict_do_nothing(), batch.rejected)
    if batch.touched:
        params = [
            {**{c: ship[c] for c in _SHIPMENT_UPDATE_COLUMNS}, "updated_at": now, "b_id": sid}
            for sid, ship in batch.touched.items()
        ]
        if conn.dialect.name == "sqlite":
            await conn.exec_driver_sql(
                _SQLITE_SHIPMENT_UPDATE, [tuple(_sqlite_value(p[c]) for c in _UPDATE_ORDER) for p in params]
            )
        else:
            stmt = (
                update(shipments)
                .where(shipments.c.id == bindparam("b_id"))
                .values({c: bindparam(c) for c in (*_SHIPMENT_UPDATE_COLUMNS, "updated_at")})
            )
            await conn.execute(stmt, params)


_SHIPMENT_STATE_SQL = (
    f"SELECT {', '.join(c.name for c in SHIPMENT_STATE_COLUMNS)} FROM shipments "
    "WHERE code IN ({}) ORDER BY id"
)
_REJECTED_COLUMNS = [c.name for c in rejected_events.columns if c.name != "id"]
# named parameters: sqlite3 reads them straight from each row's dict
_SQLITE_EVENT_INSERT_NAMED = (
    f"INSERT INTO custody_events ({', '.join(_EVENT_COLUMNS)}) "
    f"VALUES ({', '.join(':' + c for c in _EVENT_COLUMNS)})"
)
_SQLITE_REJECTED_INSERT = (
    f"INSERT INTO rejected_events ({', '.join(_REJECTED_COLUMNS)}) "
    f"VALUES ({', '.join(':' + c for c in _REJECTED_COLUMNS)}) ON CONFLICT DO NOTHING"
)
_SQLITE_SHIPMENT_UPDATE_NAMED = (
    f"UPDATE shipments SET {', '.join(f'{c} = :{c}' for c in _UPDATE_ORDER[:-1])} WHERE id = :b_id"
)


class _SqliteWriter:
    """Ingest's reads and writes on the raw sqlite3 writer connection, inside the transaction
    `Database.run_sqlite_write` opened: the same statements and stored values as the
    SQLAlchemy path, without a thread hop or SQL compilation per statement."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def lock_shipments(self, codes: list[str]) -> dict[str, dict[str, Any]]:
        if not codes:
            return {}
        cur = self.conn.execute(_SHIPMENT_STATE_SQL.format(", ".join("?" * len(codes))), codes)
        names = [d[0] for d in cur.description]
        out = {}
        for row in cur:
            ship = dict(zip(names, row, strict=True))
            if ship["recipient"] is not None:  # a JSON column
                ship["recipient"] = json.loads(ship["recipient"])
            out[ship["code"]] = ship
        return out

    def known(self, ids: list[str]) -> dict[str, str]:
        if not ids:
            return {}
        sql = f"SELECT id, hash FROM custody_events WHERE id IN ({', '.join('?' * len(ids))})"
        return dict(self.conn.execute(sql, ids).fetchall())

    def write_batch(self, batch: Batch, now: datetime, *, merkle_log: bool) -> None:
        """Write what `write_batch` writes; the rows' datetimes and flags become their SQLite text."""
        conn = self.conn
        now_text = _sqlite_datetime(now)
        if batch.accepted:
            if merkle_log:
                start = log_service.append_sqlite(
                    conn, [bytes.fromhex(row["hash"]) for row in batch.accepted]
                )
                for offset, row in enumerate(batch.accepted):
                    row["log_index"] = start + offset
            for row in batch.accepted:
                row["occurred_at"] = _wire_to_sqlite(row["occurred_at"])
                if row["fix_at"] is not None:
                    row["fix_at"] = _wire_to_sqlite(row["fix_at"])
                row["received_at"] = (
                    now_text if row["received_at"] is now else _sqlite_value(row["received_at"])
                )
                if row["flags"] is not None:
                    row["flags"] = json.dumps(row["flags"])
            conn.executemany(_SQLITE_EVENT_INSERT_NAMED, batch.accepted)
        if batch.rejected:
            for row in batch.rejected:
                row["received_at"] = _sqlite_value(row["received_at"])
            conn.executemany(_SQLITE_REJECTED_INSERT, batch.rejected)
        if batch.touched:
            params = []
            for sid, ship in batch.touched.items():
                closed_at = ship["closed_at"]
                params.append(
                    {
                        **ship,
                        "closed_at": _sqlite_datetime(closed_at)
                        if isinstance(closed_at, datetime)
                        else closed_at,
                        "updated_at": now_text,
                        "b_id": sid,
                    }
                )
            conn.executemany(_SQLITE_SHIPMENT_UPDATE_NAMED, params)


def server_event(
    key: SigningKey,
    *,
    ship_code: str,
    event_type: EventType,
    actor: str,
    prev: str | None,
    data: dict[str, Any],
    now: datetime,
    counterparty: dict[str, Any] | None = None,
) -> CustodyEvent:
    """An event the server records itself (registered, cancelled, confirmed), signed with its event key."""
    return sign_event(
        key,
        id=new_event_id(),
        shipment=ship_code,
        type=event_type.value,
        occurred_at=to_wire(now),
        actor=actor,
        counterparty=counterparty,
        location=None,
        data={**data, "no_fix_reason": "recorded by the server"},
        prev=prev,
    )


async def append_server_event(
    conn: AsyncConnection,
    key: SigningKey,
    ship: dict[str, Any],
    *,
    event_type: EventType,
    role: str,
    actor: str,
    data: dict[str, Any],
    now: datetime,
    counterparty: dict[str, Any] | None = None,
    merkle_log: bool = True,
) -> CustodyEvent:
    """Append a server-signed event to a locked shipment; raises IllegalTransition."""
    new_state = lifecycle.check(role, event_type, ship["state"])
    event = server_event(
        key,
        ship_code=ship["code"],
        event_type=event_type,
        actor=actor,
        prev=ship["head"],
        data=data,
        now=now,
        counterparty=counterparty,
    )
    batch = Batch()
    batch.accepted.append(event_row(event, ship["id"], ship["seq"] + 1, None, now, None))
    apply_effects(ship, event, new_state, now)
    batch.touched[ship["id"]] = ship
    await write_batch(conn, batch, now, merkle_log=merkle_log)
    return event


def _identity_problem(event: CustodyEvent, user: CurrentUser, my_devices: dict[str, int]) -> str | None:
    """The cheap part of the prechecks: whose event, from which enrolled device."""
    if event.actor != user.actor:
        return f"actor {event.actor} is not the signed-in user ({user.actor})"
    if event.device not in my_devices:
        return f"device key {event.device[:8]}… is not enrolled to {user.actor} (POST /api/v1/devices)"
    return None


def _integrity_problem(event: CustodyEvent) -> str | None:
    try:
        verify_event(event)
    except EventIntegrityError as exc:
        return str(exc)
    return None


_INLINE = SignaturePool(0)


def _signature_record(ev: CustodyEvent) -> bytes | None:
    """The event's key, signature and hash as raw bytes; None if they are not even well
    formed (`verify_event` words the reason)."""
    try:
        return record(b64url_decode(ev.device), b64url_decode(ev.sig), bytes.fromhex(ev.hash))
    except ValueError:
        return None


class _Checks:
    """A batch's hash and signature checks, split so that they hold up the writer least.

    The signatures go to the helper processes at once (verifier.py); the canonical
    hashes (pure Python) are recomputed by whoever waits for the result: the SQLite
    writer's thread, after its speculative attempt is written. The signature covers the
    hash as sent, so the two are independent. An event found broken either way is
    checked again with `verify_event`, which words (and decides) its problem.
    """

    def __init__(
        self,
        events: list[CustodyEvent],
        user: CurrentUser,
        my_devices: dict[str, int],
        signatures: SignaturePool,
    ) -> None:
        self.identity = [_identity_problem(ev, user, my_devices) for ev in events]
        self._todo = [ev for ev, problem in zip(events, self.identity, strict=True) if problem is None]
        self._records = [_signature_record(ev) for ev in self._todo]
        blob = b"".join(r for r in self._records if r is not None)
        pool = signatures if len(blob) >= 16 * RECORD else _INLINE  # a helper's round trip pays from ~16 on
        self.futures = pool.split(blob)

    def done(self) -> bool:
        """Are the signatures checked? (The hashes are checked by the waiter.)"""
        return all(f.done() for f in self.futures)

    def _merge(self, hashes: list[bool], verified: bytes) -> list[str | None]:
        ok = iter(verified)
        found: list[str | None] = []
        for ev, rec, hash_ok in zip(self._todo, self._records, hashes, strict=True):
            sig_ok = rec is not None and next(ok) == 1
            found.append(None if hash_ok and sig_ok else _integrity_problem(ev))
        rest = iter(found)
        return [problem if problem is not None else next(rest) for problem in self.identity]

    def _hashes(self) -> list[bool]:
        return [compute_hash(ev) == ev.hash for ev in self._todo]

    def wait(self) -> list[str | None]:
        """Every event's first problem (blocking: for the writer's thread)."""
        hashes = self._hashes()
        return self._merge(hashes, b"".join(f.result() for f in self.futures))

    async def problems(self) -> list[str | None]:
        hashes = self._hashes()  # on the loop, while the helpers verify
        parts = await asyncio.gather(*(asyncio.wrap_future(f) for f in self.futures))
        return self._merge(hashes, b"".join(parts))


async def _my_devices(db: Database, user: CurrentUser, wanted: set[str]) -> dict[str, int]:
    """The user's enrolled device keys; cached per process, re-read on any unknown key."""
    cache: dict[int, dict[str, int]] = db.cache.setdefault("devices", {})
    mine = cache.get(user.id, {})
    if not wanted <= mine.keys():
        async with db.read() as conn:
            rows = (
                await conn.execute(
                    select(devices.c.public_key, devices.c.id).where(
                        devices.c.user_id == user.id, devices.c.revoked_at.is_(None)
                    )
                )
            ).all()
        mine = cache[user.id] = {r.public_key: r.id for r in rows}
    return mine


async def ingest(
    db: Database,
    user: CurrentUser,
    events: list[CustodyEvent],
    now: datetime,
    signatures: SignaturePool | None = None,
) -> list[EventResult]:
    """Apply a courier's batch; one result per event, in input order. `signatures`: the
    app's helper processes (None: every check in this process)."""
    my_devices = await _my_devices(db, user, {ev.device for ev in events})
    checks = _Checks(events, user, my_devices, signatures or _INLINE)
    try:
        results = await _apply(db, user, events, checks, my_devices, now, check_all_ids=False)
    except (IntegrityError, sqlite3.IntegrityError):
        # an id that was accepted before, now with another body and the current head as prev:
        # redo the batch looking every id up, so it is answered as a conflict
        results = await _apply(db, user, events, checks, my_devices, now, check_all_ids=True)
    touched = {ev.shipment for ev, r in zip(events, results, strict=True) if r.status == "accepted"}
    db.changed("event", sorted(touched))
    return results


async def _apply(
    db: Database,
    user: CurrentUser,
    events: list[CustodyEvent],
    checks: _Checks,
    my_devices: dict[str, int],
    now: datetime,
    *,
    check_all_ids: bool,
) -> list[EventResult]:
    codes = sorted({ev.shipment for ev in events})
    if db.is_sqlite:
        # the whole transaction in one call on the writer's thread (see Database.run_sqlite_write)
        def attempt(conn: sqlite3.Connection, problems: list[str | None]) -> list[EventResult]:
            w = _SqliteWriter(conn)
            plan = _Plan(user, events, problems, my_devices, now, w.lock_shipments(codes))
            plan.known.update(w.known(plan.ids_to_look_up(check_all_ids)))
            plan.known.update(w.known(plan.apply_chains()))
            plan.settle_leftovers()
            w.write_batch(plan.batch, now, merkle_log=db.merkle_log)
            return plan.answers()

        def run(conn: sqlite3.Connection) -> list[EventResult]:
            if check_all_ids or checks.done():
                return attempt(conn, checks.wait())
            # While the signatures are still being checked, apply the batch as if they all
            # verify, under a savepoint; keep it only if they do. Nothing commits before the
            # checks are in, and any other outcome is decided again from the start.
            conn.execute("SAVEPOINT speculative")
            try:
                answers = attempt(conn, checks.identity)
            except sqlite3.IntegrityError:
                answers = None
            problems = checks.wait()
            if answers is not None and problems == checks.identity:
                conn.execute("RELEASE speculative")
                return answers
            conn.execute("ROLLBACK TO speculative")
            conn.execute("RELEASE speculative")
            return attempt(conn, problems)

        return await db.run_sqlite_write(run)

    async def attempt_async(conn: AsyncConnection, problems: list[str | None]) -> list[EventResult]:
        plan = _Plan(user, events, problems, my_devices, now, await lock_shipments(conn, codes))
        plan.known.update(await _known(conn, plan.ids_to_look_up(check_all_ids)))
        plan.known.update(await _known(conn, plan.apply_chains()))
        plan.settle_leftovers()
        await write_batch(conn, plan.batch, now, merkle_log=db.merkle_log)
        return plan.answers()

    async with db.write() as conn:
        if check_all_ids or checks.done():
            return await attempt_async(conn, await checks.problems())
        # the same speculation as on SQLite, with a SAVEPOINT: the statements' round trips
        # to the server overlap the signature checks
        savepoint = await conn.begin_nested()
        try:
            answers: list[EventResult] | None = await attempt_async(conn, checks.identity)
        except IntegrityError:
            answers = None
        problems = await checks.problems()
        if answers is not None and problems == checks.identity:
            await savepoint.commit()
            return answers
        await savepoint.rollback()
        return await attempt_async(conn, problems)


async def _known(conn: AsyncConnection, ids: list[str]) -> dict[str, str]:
    """The stored hash of each of these event ids that was accepted before."""
    if not ids:
        return {}
    rows = await conn.execute(
        select(custody_events.c.id, custody_events.c.hash).where(custody_events.c.id.in_(ids))
    )
    return {r.id: r.hash for r in rows.all()}


_CONFLICT = (
    "conflict: an event with this id and a different hash was accepted "
    "before; a correction must be a new event with a new id"
)


class _Plan:
    """What one transaction decides about a batch, given the locked shipments and the ids
    seen before; the caller runs the lookups it asks for and writes `batch`."""

    def __init__(
        self,
        user: CurrentUser,
        events: list[CustodyEvent],
        problems: list[str | None],
        my_devices: dict[str, int],
        now: datetime,
        ships: dict[str, dict[str, Any]],
    ) -> None:
        self.user, self.now, self.ships = user, now, ships
        self.latest = to_wire(now + CLOCK_SKEW)  # a later occurred_at is flagged device_clock_ahead
        self.pending = [
            _Pending(i, ev, problem, my_devices.get(ev.device))
            for i, (ev, problem) in enumerate(zip(events, problems, strict=True))
        ]
        self.results: list[EventResult | None] = [None] * len(events)
        self.known: dict[str, str] = {}
        self.batch = Batch()
        self.leftovers: list[tuple[_Pending, dict[str, Any]]] = []

    def ids_to_look_up(self, check_all_ids: bool) -> list[str]:
        # Only an event whose prev is neither a current head nor in this batch can be a resend;
        # look those up (usually none) instead of every id.
        linked = {s["head"] for s in self.ships.values()} | {p.event.hash for p in self.pending}
        return [p.event.id for p in self.pending if check_all_ids or p.event.prev not in linked]

    def reject(self, p: _Pending, ship: dict[str, Any] | None, reason: str) -> None:
        self.batch.rejected.append(
            rejected_row(p.event, ship["id"] if ship else None, reason, self.user, self.now)
        )
        self.results[p.index] = EventResult(p.event.id, "rejected", reason, ship["head"] if ship else None)

    def apply_chains(self) -> list[str]:
        """Decide every event that continues a chain; return the ids left to look up."""
        ships, known, results = self.ships, self.known, self.results
        by_ship: dict[str, list[_Pending]] = defaultdict(list)
        for p in self.pending:
            ev = p.event
            if ev.id in known:
                if known[ev.id] == ev.hash:
                    ship = ships.get(ev.shipment)
                    results[p.index] = EventResult(ev.id, "duplicate", head=ship["head"] if ship else None)
                else:
                    self.reject(p, ships.get(ev.shipment), _CONFLICT)
                continue
            by_ship[ev.shipment].append(p)

        for code, plist in by_ship.items():
            ship = ships.get(code)
            if ship is None:
                for p in plist:
                    self.reject(p, None, f"unknown shipment {code}")
                continue
            # apply in chain order: repeatedly take the first event whose prev is the head
            remaining = list(plist)
            progressed = True
            while remaining and progressed:
                progressed = False
                for p in remaining:
                    if p.event.prev == ship["head"]:
                        remaining.remove(p)
                        _decide(
                            p, ship, self.user, self.batch, known, results, self.reject, self.now, self.latest
                        )
                        progressed = True
                        break
            self.leftovers += [(p, ship) for p in remaining]
        # the rest of a resent chain: duplicates, not forks
        return [p.event.id for p, _ in self.leftovers if p.event.id not in known]

    def settle_leftovers(self) -> None:
        for p, ship in self.leftovers:
            if p.event.id in self.known:
                if self.known[p.event.id] == p.event.hash:
                    self.results[p.index] = EventResult(p.event.id, "duplicate", head=ship["head"])
                else:
                    self.reject(p, ship, _CONFLICT)
                continue
            self.reject(
                p,
                ship,
                f"prev {str(p.event.prev)[:12]}… is not the current head "
                f"{str(ship['head'])[:12]}…: the chain has moved on; sync first and record anew",
            )

    def answers(self) -> list[EventResult]:
        return [r for r in self.results if r is not None]


def _decide(
    p: _Pending,
    ship: dict[str, Any],
    user: CurrentUser,
    batch: Batch,
    known: dict[str, str],
    results: list[EventResult | None],
    reject: Any,
    now: datetime,
    latest: str,
) -> None:
    ev = p.event
    if ev.id in known:
        if known[ev.id] == ev.hash:
            results[p.index] = EventResult(ev.id, "duplicate", head=ship["head"])
        else:
            reject(p, ship, "conflict: the same id with a different hash in this batch")
        return
    if p.problem:
        return reject(p, ship, p.problem)
    if ship["assigned_courier_id"] != user.id:
        return reject(p, ship, f"shipment {ship['code']} is not assigned to {user.actor}")
    try:
        new_state = lifecycle.check(user.role, ev.type, ship["state"])
    except IllegalTransition as exc:
        return reject(p, ship, f"illegal transition: {exc}")
    if problem := content_problem(ev, ship["kind"]):
        return reject(p, ship, problem)
    flags = _flags(ev, ship, latest)
    batch.accepted.append(event_row(ev, ship["id"], ship["seq"] + 1, p.device_id, now, flags))
    apply_effects(ship, ev, new_state, now)
    batch.touched[ship["id"]] = ship
    known[ev.id] = ev.hash
    results[p.index] = EventResult(ev.id, "accepted", head=ship["head"])
