"""Appending to a shipment's chain of custody.

Ingest hands a batch's signatures to the helper processes (verifier.py) and, in one
transaction meanwhile: locks the shipments, compares `prev` with each head, checks the
lifecycle, bulk-inserts accepted and rejected events and updates the shipments, under a
savepoint kept only if every hash and signature checks out; nothing commits before.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from msgspec import UNSET
from sqlalchemy import select
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
from shared.rules import MAX_EVENT_BYTES, content_problem, form_problem
from shared.timeutil import to_wire

from ..auth.service import CurrentUser
from ..db.engine import Database
from ..db.executor import CoreExecutor
from ..db.models import devices
from .repository import (
    SHIPMENT_STATE_COLUMNS,
    Batch,
    IngestWriter,
    IntegrityErrors,
    Party,
    in_write_transaction,
)
from .verifier import RECORD, SignaturePool, record

__all__ = ["SHIPMENT_STATE_COLUMNS", "Batch"]

_encode = msgspec.json.Encoder().encode
CLOCK_SKEW = timedelta(minutes=10)
# Rejected events kept (README, "Limits"): each is answered either way; beyond these the
# answer says it was not kept, so that one phone cannot fill the table.
MAX_REJECTED_PER_BATCH = 100
MAX_REJECTED_PER_DAY = 2000  # per courier account, UTC day


@dataclass(slots=True)
class _Pending:
    index: int
    event: CustodyEvent
    problem: str | None  # found before the lock (hash, signature, actor, device)
    device_id: int | None


def apply_effects(ship: dict[str, Any], event: CustodyEvent, new_state: State, now: datetime) -> None:
    """Move a shipment (a dict of SHIPMENT_STATE_COLUMNS) past an accepted event."""
    ship["state"] = new_state.value
    ship["head"] = event.hash
    ship["seq"] += 1
    cp = event.counterparty
    kind = event.type
    if kind is EventType.REGISTERED and event.data.get("channel") == "counter":
        # handed in at the counter: the clerk who received it holds it for their unit
        role, _, clerk_id = event.actor.partition(":")
        ship["custodian_role"], ship["custodian_name"], ship["custodian_user_id"] = (
            role,
            None,
            int(clerk_id),
        )
    elif kind is EventType.REGISTERED:
        ship["custodian_role"], ship["custodian_name"], ship["custodian_user_id"] = (
            "sender",
            None,
            None,
        )
    elif kind is EventType.PICKED_UP:
        role, _, actor_id = event.actor.partition(":")
        ship["custodian_role"], ship["custodian_name"], ship["custodian_user_id"] = (
            role,
            None,
            int(actor_id),
        )
    elif (
        kind in (EventType.TRANSFERRED, EventType.DELIVERED, EventType.RETURNED, EventType.COLLECTED)
        and cp is not None
    ):
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
    if event.type in (EventType.DELIVERED, EventType.COLLECTED) and (
        event.data.get("identity", {}).get("method") == "id_last4"
    ):
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
        "body": _kept_body(event),
        "received_at": now,
    }


def _kept_body(event: CustodyEvent) -> str:
    """The rejected event as sent; without its data if it is beyond the size an event may
    have, so that a refused event costs the table no more than an accepted one could."""
    body = _encode(event)
    if len(body) <= MAX_EVENT_BYTES:
        return body.decode()
    omitted = f"{len(body) // 1024} KiB event: data not kept (at most {MAX_EVENT_BYTES // 1024} KiB)"
    return _encode(msgspec.structs.replace(event, data={"omitted_by_server": omitted})).decode()


async def lock_shipments(conn: AsyncConnection, codes: list[str]) -> dict[str, dict[str, Any]]:
    """Read shipments for update (IngestWriter.lock_shipments) on a `Database.write()` connection."""
    return await conn.run_sync(lambda c: IngestWriter(CoreExecutor(c)).lock_shipments(codes))


async def write_batch(conn: AsyncConnection, batch: Batch, now: datetime, *, merkle_log: bool = True) -> None:
    """IngestWriter.write_batch on a `Database.write()` connection."""
    await conn.run_sync(
        lambda c: IngestWriter(CoreExecutor(c)).write_batch(batch, now, merkle_log=merkle_log)
    )


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
    attachments: dict[str, Any] | None = None,
) -> CustodyEvent:
    """An event the server records itself (registered, cancelled, confirmed), signed with its event key."""
    extra = {"attachments": attachments} if attachments is not None else {}
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
        **extra,
    )


class ContentProblem(ValueError):
    """A server-side event would break its type's content rules; the message says which."""


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
    attachments: dict[str, Any] | None = None,
    check_content: bool = False,
    merkle_log: bool = True,
) -> CustodyEvent:
    """Append a server-signed event to a locked shipment; raises IllegalTransition, or with
    `check_content` ContentProblem when the event breaks its type's rules (shared/rules.py)."""
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
        attachments=attachments,
    )
    if check_content and (problem := content_problem(event, ship["kind"])):
        raise ContentProblem(problem)
    flags = _flags(event, ship, to_wire(now + CLOCK_SKEW))
    batch = Batch()
    batch.accepted.append(event_row(event, ship["id"], ship["seq"] + 1, None, now, flags))
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
        # found before any hash is computed: whose event, which device, fit to hash at all
        self.identity = [_identity_problem(ev, user, my_devices) or form_problem(ev) for ev in events]
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
    pin_mismatches: frozenset[str] = frozenset(),
) -> list[EventResult]:
    """Apply a courier's batch; one result per event, in input order, an accepted one with
    its flags. `signatures`: the app's helper processes (None: every check in this process);
    `pin_mismatches`: ids of deliveries whose sealed PIN was wrong (custody/door.py)."""
    my_devices = await _my_devices(db, user, {ev.device for ev in events})
    checks = _Checks(events, user, my_devices, signatures or _INLINE)
    try:
        results = await _apply(db, user, events, checks, my_devices, now, pin_mismatches, check_all_ids=False)
    except IntegrityErrors:
        # an id that was accepted before, now with another body and the current head as prev:
        # redo the batch looking every id up, so it is answered as a conflict
        results = await _apply(db, user, events, checks, my_devices, now, pin_mismatches, check_all_ids=True)
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
    pin_mismatches: frozenset[str],
    *,
    check_all_ids: bool,
) -> list[EventResult]:
    codes = sorted({ev.shipment for ev in events})

    def attempt(w: IngestWriter, problems: list[str | None]) -> list[EventResult]:
        plan = _Plan(user, events, problems, my_devices, now, w.lock_shipments(codes), pin_mismatches)
        plan.parties = w.parties(plan.party_ids())
        plan.known.update(w.known(plan.ids_to_look_up(check_all_ids)))
        plan.known.update(w.known(plan.apply_chains()))
        plan.settle_leftovers()
        if plan.batch.rejected:
            day = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
            plan.keep_rejected(w.rejected_since(user.id, day))
        w.write_batch(plan.batch, now, merkle_log=db.merkle_log, outbox=db.outbox)
        return plan.answers()

    def run(w: IngestWriter, wait: Any) -> list[EventResult]:
        if check_all_ids or checks.done():
            return attempt(w, wait())
        # While the signatures are still being checked, apply the batch as if they all
        # verify, under a savepoint; keep it only if they do. Nothing commits before the
        # checks are in, and any other outcome is decided again from the start (PostgreSQL
        # may send the write meanwhile: undoing it then redoes the transaction).
        savepoint = w.savepoint()
        try:
            answers: list[EventResult] | None = attempt(w, checks.identity)
        except IntegrityErrors:
            answers = None
        problems = w.write_while_checking(wait) if answers is not None else wait()
        if answers is not None and problems == checks.identity:
            savepoint.keep()
            return answers
        savepoint.undo()
        return attempt(w, problems)

    return await in_write_transaction(db, run, checks.wait, checks.problems)


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
        pin_mismatches: frozenset[str] = frozenset(),
    ) -> None:
        self.user, self.now, self.ships = user, now, ships
        self.pin_mismatches = pin_mismatches
        self.latest = to_wire(now + CLOCK_SKEW)  # a later occurred_at is flagged device_clock_ahead
        self.pending = [
            _Pending(i, ev, problem, my_devices.get(ev.device))
            for i, (ev, problem) in enumerate(zip(events, problems, strict=True))
        ]
        self.results: list[EventResult | None] = [None] * len(events)
        self.known: dict[str, str] = {}
        self.batch = Batch()
        self.leftovers: list[tuple[_Pending, dict[str, Any]]] = []
        self.parties: dict[int, Party] = {}  # the user accounts named as counterparties
        self._rejected_at: list[int] = []  # the input index of each row of batch.rejected

    def party_ids(self) -> list[int]:
        ids = set()
        for p in self.pending:
            cp = p.event.counterparty
            if cp is not None and type(cp.user_id) is int and p.problem is None:
                ids.add(cp.user_id)
        return sorted(ids)

    def keep_rejected(self, kept_today: int) -> None:
        """Keep at most MAX_REJECTED_PER_BATCH rejected rows of this batch, and none beyond
        MAX_REJECTED_PER_DAY of this courier's today; the others are still answered."""
        room = max(0, min(MAX_REJECTED_PER_BATCH, MAX_REJECTED_PER_DAY - kept_today))
        rows = self.batch.rejected
        if len(rows) <= room:
            return
        why = (
            f"more than {MAX_REJECTED_PER_BATCH} rejected events in one batch"
            if room == MAX_REJECTED_PER_BATCH
            else f"more than {MAX_REJECTED_PER_DAY} rejected events of {self.user.actor} today"
        )
        for index in self._rejected_at[room:]:
            result = self.results[index]
            assert result is not None
            result.reason = f"{result.reason} (not kept: {why}, the most the server keeps)"
        del rows[room:], self._rejected_at[room:]

    def ids_to_look_up(self, check_all_ids: bool) -> list[str]:
        # Only an event whose prev is neither a current head nor in this batch can be a resend;
        # look those up (usually none) instead of every id.
        linked = {s["head"] for s in self.ships.values()} | {p.event.hash for p in self.pending}
        return [p.event.id for p in self.pending if check_all_ids or p.event.prev not in linked]

    def reject(self, p: _Pending, ship: dict[str, Any] | None, reason: str) -> None:
        self.batch.rejected.append(
            rejected_row(p.event, ship["id"] if ship else None, reason, self.user, self.now)
        )
        self._rejected_at.append(p.index)
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
                        _decide(p, ship, self, known, results)
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


def _party_problem(event: CustodyEvent, user: CurrentUser, parties: dict[int, Party]) -> str | None:
    """A counterparty's account must be what the event says it is: a transfer to a
    courier's account hands the shipment (and its assignment) on, so it must be an active
    courier of the giver's own unit; there is no way yet for a dispatcher to allow
    another unit's."""
    cp = event.counterparty
    if cp is None:
        return None
    uid = cp.user_id if cp.user_id is not UNSET else None
    if uid is None:  # a courier named without an account: the shipment waits for dispatch
        return None
    if cp.role not in ("courier", "clerk"):
        return f"counterparty.user_id {uid}: a {cp.role} has no account here; leave user_id out"
    party = parties.get(uid)
    if party is None:
        return f"counterparty.user_id {uid} is not an account of this service"
    if not party.active or party.role != cp.role:
        return f"counterparty.user_id {uid} is not an active {cp.role}'s account"
    if event.type is EventType.TRANSFERRED and cp.role == "courier" and party.unit_id != user.unit_id:
        return (
            f"counterparty.user_id {uid} is a courier of another unit; a transfer goes to a courier "
            "of your own unit (another unit's couriers take shipments from a hub)"
        )
    return None


def _decide(
    p: _Pending,
    ship: dict[str, Any],
    plan: _Plan,
    known: dict[str, str],
    results: list[EventResult | None],
) -> None:
    ev, user, batch, reject, now = p.event, plan.user, plan.batch, plan.reject, plan.now
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
    if lifecycle.TRANSITIONS[ev.type].server_signed:
        return reject(
            p,
            ship,
            f"a {ev.type} event is signed by the server, not by a device: "
            + (
                f"upload the pages (POST /api/v1/shipments/{ship['code']}/pages) and the server records it"
                if ev.type is EventType.DIGITISED
                else "it is recorded through its own route"
            ),
        )
    try:
        new_state = lifecycle.check(user.role, ev.type, ship["state"])
    except IllegalTransition as exc:
        return reject(p, ship, f"illegal transition: {exc}")
    if problem := content_problem(ev, ship["kind"]) or _party_problem(ev, user, plan.parties):
        return reject(p, ship, problem)
    flags = _flags(ev, ship, plan.latest)
    if ev.id in plan.pin_mismatches:
        flags.append("pin_mismatch")
    batch.accepted.append(event_row(ev, ship["id"], ship["seq"] + 1, p.device_id, now, flags))
    apply_effects(ship, ev, new_state, now)
    batch.touched[ship["id"]] = ship
    known[ev.id] = ev.hash
    results[p.index] = EventResult(ev.id, "accepted", head=ship["head"], flags=flags)
