"""Registering, finding, assigning and cancelling shipments."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import msgspec
from sqlalchemy.ext.asyncio import AsyncConnection

from shared import codes, lifecycle
from shared.labels import label_signature, label_url
from shared.lifecycle import EventType
from shared.rules import content_problem
from shared.timeutil import to_wire, utcnow

from ..auth.passwords import hash_pin_async, new_pin
from ..auth.service import CurrentUser
from ..custody import attachments as attachment_store
from ..custody.service import (
    Batch,
    append_server_event,
    apply_effects,
    event_row,
    lock_shipments,
    server_event,
    write_batch,
)
from ..db.engine import Database
from ..errors import BadRequest, Conflict, Unprocessable
from ..keys import ServerKeys
from ..outbox import service as outbox_service
from . import repository
from .schemas import (
    Assigned,
    Assignment,
    Cancelled,
    Custodian,
    EventView,
    Party,
    RejectedView,
    ShipmentCreate,
    ShipmentCreated,
    ShipmentDetail,
    ShipmentPage,
    ShipmentSummary,
    Stop,
)

PAGE_SIZE = 50


@dataclass(frozen=True, slots=True)
class CounterIntake:
    """What a counter reception adds to the `registered` event (server/counter/service.py)."""

    data: dict[str, Any]  # channel, components, missing_components, incomplete, fee_vnd
    counterparty: dict[str, Any]  # the citizen who handed the dossier in
    attachments: dict[str, Any]  # their signature


def _party(p: Party | None) -> dict[str, Any] | None:
    return msgspec.to_builtins(p) if p is not None else None


def parse_code(text: str) -> str:
    try:
        return codes.normalize(text)
    except codes.InvalidCode as exc:
        raise BadRequest(str(exc)) from None


@dataclass(frozen=True, slots=True)
class Prepared:
    """A registration checked and ready to write: what `create` reads before its transaction."""

    data: ShipmentCreate
    sender: dict[str, Any]
    recipient: dict[str, Any]
    pin: str | None  # None: a result that inherits its submission's PIN
    pin_hash: str
    parent_code: str | None
    dest_unit_id: int | None


async def prepare(db: Database, data: ShipmentCreate) -> Prepared:
    """Every check of a registration that needs no write, and the new PIN's hash."""
    if data.due_at.tzinfo is None:
        raise BadRequest("due_at needs a time zone, e.g. 2026-12-01T17:00:00+07:00.")
    sender, recipient = _party(data.sender), _party(data.recipient)
    pin: str | None = None
    parent = None
    if data.parent:
        parent_code = parse_code(data.parent)
        async with db.read() as conn:
            parent = await repository.parent_of(conn, parent_code)
        if parent is None:
            raise Unprocessable(f"parent {parent_code} is not a known shipment.")
        if parent.kind != "submission" or data.kind != "result":
            raise Unprocessable(
                "only a result shipment can have a parent, and the parent must be a submission."
            )
        # the result goes back to the citizen who sent the dossier, from the agency that got it
        sender = sender or parent.recipient
        recipient = recipient or parent.sender
        pin_hash = parent.pin_hash
    else:
        pin = new_pin()
        pin_hash = await hash_pin_async(pin)  # argon2, in a thread
    if sender is None:
        raise BadRequest("sender is required (or give the parent submission's code).")
    if recipient is None:
        raise BadRequest("recipient is required (or give the parent submission's code).")
    dest_unit_id = None
    if data.dest_unit:
        async with db.read() as conn:
            dest_unit_id = await repository.unit_id(conn, data.dest_unit)
        if dest_unit_id is None:
            raise Unprocessable(f"dest_unit {data.dest_unit!r} is not a known unit.")
    return Prepared(
        data=data,
        sender=sender,
        recipient=recipient,
        pin=pin,
        pin_hash=pin_hash,
        parent_code=parent.code if parent else None,
        dest_unit_id=dest_unit_id,
    )


async def create(
    db: Database,
    keys: ServerKeys,
    base_url: str,
    user: CurrentUser,
    data: ShipmentCreate,
    *,
    registered_at: datetime | None = None,  # the demo back-dates its history; requests never do
    counter: CounterIntake | None = None,
) -> ShipmentCreated:
    """Register a shipment. With `counter` the dossier was handed in at a counter (server/counter):
    the `registered` event also names the citizen, carries their signature, the checklist and
    the fee taken, and the shipment's channel is "counter" (CUSTODY.md §3)."""
    prepared = await prepare(db, data)
    async with db.write() as conn:
        created, _ = await insert_prepared(
            conn, db, keys, base_url, user, prepared, registered_at or utcnow(), counter=counter
        )
    db.changed("registered", [created.code])
    return created


async def insert_prepared(
    conn: AsyncConnection,
    db: Database,
    keys: ServerKeys,
    base_url: str,
    user: CurrentUser,
    p: Prepared,
    now: datetime,
    *,
    counter: CounterIntake | None = None,
) -> tuple[ShipmentCreated, int]:
    """Write the shipment and its signed `registered` event in the caller's transaction (the
    caller tells `db.changed` after its commit): the answer and the shipment's row id."""
    data = p.data
    for _ in range(20):
        code = codes.new_code()
        if not await repository.code_taken(conn, code):
            break
    else:  # pragma: no cover - 10**12 codes
        raise Conflict("could not find a free shipment code; try again")
    row = {
        "code": code,
        "kind": data.kind,
        "state": "registered",
        "dossier_ref": data.dossier_ref,
        "procedure": data.procedure,
        "field": data.field,
        "sender": p.sender,
        "recipient": p.recipient,
        "due_at": data.due_at,
        "fee_vnd": data.fee_vnd,
        "components": list(data.components),
        "parent_code": p.parent_code,
        "unit_id": user.unit_id,
        "dest_unit_id": p.dest_unit_id,
        "pin_hash": p.pin_hash,
        "assigned_courier_id": None,
        "head": None,
        "seq": 0,
        "attempts": 0,
        "custodian_role": None,
        "custodian_name": None,
        "custodian_user_id": None,
        "created_by": user.id,
        "created_at": now,
        "updated_at": now,
        "closed_at": None,
        "channel": "counter" if counter else "post",
    }
    ship_id = await repository.insert_shipment(conn, row)
    lifecycle.check(user.role, EventType.REGISTERED, None)
    event = server_event(
        keys.event,
        ship_code=code,
        event_type=EventType.REGISTERED,
        actor=user.actor,
        prev=None,
        now=now,
        data={
            "kind": data.kind,
            "dossier_ref": data.dossier_ref,
            "procedure": data.procedure,
            "field": data.field,
            "due_at": to_wire(data.due_at),
            "fee_vnd": data.fee_vnd,
            "components": list(data.components),
            "parent": row["parent_code"],
            "sender": p.sender,
            "recipient": p.recipient,
            "unit": user.unit_code,
            **(counter.data if counter else {}),
        },
        counterparty=counter.counterparty if counter else None,
        attachments=counter.attachments if counter else None,
    )
    if counter and (problem := content_problem(event, data.kind)):
        raise Unprocessable(problem)  # the transaction rolls back: nothing is kept
    ship = {**row, "id": ship_id}
    batch = Batch()
    batch.accepted.append(event_row(event, ship_id, 1, None, now, None))
    apply_effects(ship, event, lifecycle.State.REGISTERED, now)
    batch.touched[ship_id] = ship
    if p.pin is not None:  # the citizen's PIN and link, in this transaction (server/outbox)
        batch.outbox += outbox_service.registration_rows(keys, ship, p.pin, now)
    await write_batch(conn, batch, now, merkle_log=db.merkle_log)
    return (
        ShipmentCreated(
            code=code,
            state="registered",
            label_url=f"{base_url}/api/v1/shipments/{code}/label.png",
            tracking_url=label_url(base_url, code, keys.label),
            pin=p.pin,
            head=event.hash,
        ),
        ship_id,
    )


def _custodian(r: Any) -> Custodian:
    return Custodian(role=r.custodian_role, name=r.custodian_name, user_id=r.custodian_user_id)


def _overdue(r: Any, now: datetime) -> bool:
    return r.state in lifecycle.OPEN_STATES and r.due_at < now


def _encode_cursor(ship_id: int) -> str:
    return base64.urlsafe_b64encode(str(ship_id).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> int:
    try:
        return int(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode())
    except ValueError:
        raise BadRequest("cursor is not one this server gave out; start again without it.") from None


async def search(
    db: Database,
    user: CurrentUser,
    *,
    state: str | None,
    courier: int | None,
    unit: str | None,
    field: str | None,
    overdue: bool | None,
    q: str | None,
    cursor: str | None,
    limit: int = PAGE_SIZE,
) -> ShipmentPage:
    now = utcnow()
    if state and state not in lifecycle.State.__members__.values():
        raise BadRequest(f"state must be one of {', '.join(s.value for s in lifecycle.State)}.")
    filters = repository.SearchFilters(
        state=state or None,
        courier=courier,
        unit_id=await _unit_id(db, unit) if unit else None,
        field=field or None,
        due_before=now if overdue else None,
        q=q or None,
        before_id=_decode_cursor(cursor) if cursor else None,
    )
    async with db.read() as conn:
        rows = await repository.search(conn, user, filters, limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    items = [
        ShipmentSummary(
            code=r.code,
            kind=r.kind,
            state=r.state,
            dossier_ref=r.dossier_ref,
            procedure=r.procedure,
            field=r.field,
            recipient_name=(r.recipient or {}).get("name", ""),
            recipient_commune=(r.recipient or {}).get("commune", ""),
            due_at=r.due_at,
            overdue=_overdue(r, now),
            assigned_courier_id=r.assigned_courier_id,
            custodian=_custodian(r),
            attempts=r.attempts,
            head=r.head,
            created_at=r.created_at,
            updated_at=r.updated_at,
        )
        for r in rows
    ]
    return ShipmentPage(items=items, next_cursor=_encode_cursor(rows[-1].id) if more else None)


async def _unit_id(db: Database, code: str) -> int:
    async with db.read() as conn:
        uid = await repository.unit_id(conn, code)
    if uid is None:
        raise BadRequest(f"unit {code!r} does not exist.")
    return int(uid)


async def detail(
    db: Database, keys: ServerKeys, base_url: str, user: CurrentUser, code_text: str
) -> ShipmentDetail:
    code = parse_code(code_text)
    async with db.read() as conn:
        r = await repository.visible(conn, user, code)
        stored = await repository.events_of(conn, r.id)
        rejected = await repository.rejected_of(conn, code)
        unit_codes = await repository.unit_codes(conn)
    wanted = {h for s in stored for h in s.event.attachment_hashes()}
    have = await attachment_store.present(db, wanted)
    now = utcnow()
    return ShipmentDetail(
        code=r.code,
        kind=r.kind,
        state=r.state,
        head=r.head,
        custodian=_custodian(r),
        attempts=r.attempts,
        due_at=r.due_at,
        overdue=_overdue(r, now),
        dossier_ref=r.dossier_ref,
        procedure=r.procedure,
        field=r.field,
        sender=r.sender,
        recipient=r.recipient,
        fee_vnd=r.fee_vnd,
        components=r.components,
        parent=r.parent_code,
        unit=unit_codes.get(r.unit_id),
        dest_unit=unit_codes.get(r.dest_unit_id),
        channel=r.channel,
        assigned_courier_id=r.assigned_courier_id,
        tracking_url=label_url(base_url, r.code, keys.label),
        created_at=r.created_at,
        events=[
            EventView(
                event=msgspec.to_builtins(s.event),
                seq=s.seq,
                received_at=s.received_at,
                missing_attachments=[h for h in s.event.attachment_hashes() if h not in have],
                flags=s.flags,
            )
            for s in stored
        ],
        rejected=[
            RejectedView(
                id=x.event_id,
                hash=x.hash,
                type=x.type,
                actor=x.actor,
                reason=x.reason,
                received_at=x.received_at,
                event=msgspec.json.decode(x.body),  # as sent: a rejected event may not even parse
            )
            for x in rejected
        ],
    )


async def _locked_visible(conn: AsyncConnection, user: CurrentUser, code: str) -> dict[str, Any]:
    """Lock the shipment for a write, then apply the unit scope to it (decided under the lock)."""
    ship = (await lock_shipments(conn, [code])).get(code)
    await repository.visible(conn, user, code)  # 404 unknown, 403 not theirs
    assert ship is not None
    return ship


REASSIGN_REASON = "reassigned by the dispatcher: the courier holding it cannot hand it over"


async def assign(
    db: Database, keys: ServerKeys, user: CurrentUser, code_text: str, courier_id: int
) -> Assigned:
    """Give an open shipment to a courier. When another courier holds it (a transfer that never
    arrived, a lost phone), the dispatcher takes custody over for the new courier: a server-signed
    `transferred` event, by the dispatcher, that says so (the recovery path)."""
    code = parse_code(code_text)
    now = utcnow()
    async with db.write() as conn:
        courier = await repository.active_courier(conn, courier_id)
        if courier is None:
            raise Unprocessable(f"courier_id {courier_id} is not an active courier.")
        ship = await _locked_visible(conn, user, code)
        if ship["state"] in lifecycle.FINAL_STATES:
            raise Conflict(
                f"Shipment {codes.group(code)} is {ship['state']}: there is nothing left to carry."
            )
        held_by_other = (
            ship["state"] == "in_custody"
            and ship["custodian_role"] == "courier"
            and ship["custodian_user_id"] not in (None, courier_id)
        )
        if not held_by_other:
            await repository.set_assigned(conn, ship["id"], courier_id, now)
            head = None
        else:
            previous = {"role": "courier", "user_id": ship["custodian_user_id"]}
            try:
                event = await append_server_event(
                    conn,
                    keys.event,
                    ship,
                    event_type=EventType.TRANSFERRED,
                    role=user.role,
                    actor=user.actor,
                    data={"reassigned": True, "reason": REASSIGN_REASON, "previous_custodian": previous},
                    counterparty={
                        "name": courier.full_name or courier.username,
                        "role": "courier",
                        "user_id": courier_id,
                    },
                    now=now,
                    merkle_log=db.merkle_log,
                )
            except lifecycle.IllegalTransition as exc:
                raise Conflict(
                    f"Another courier holds this envelope and {exc}: "
                    "record a transfer from them, or ask a dispatcher to reassign it."
                ) from None
            head = event.hash
        await outbox_service.add_assigned(conn, ship, now)
    db.changed("assigned", [code])
    return Assigned(code=code, courier_id=courier_id, head=head)


async def cancel(db: Database, keys: ServerKeys, user: CurrentUser, code_text: str, reason: str) -> Cancelled:
    code = parse_code(code_text)
    async with db.write() as conn:
        ship = await _locked_visible(conn, user, code)
        try:
            event = await append_server_event(
                conn,
                keys.event,
                ship,
                event_type=EventType.CANCELLED,
                role=user.role,
                actor=user.actor,
                data={"reason": reason},
                now=utcnow(),
                merkle_log=db.merkle_log,
            )
        except lifecycle.IllegalTransition as exc:
            raise Conflict(f"Cannot cancel: {exc}.") from None
    db.changed("cancelled", [code])
    return Cancelled(code=code, head=event.hash)


def _stop(kind: Literal["pickup", "delivery"], party: dict[str, Any]) -> Stop:
    return Stop(
        kind=kind,
        lat=party.get("lat"),
        lon=party.get("lon"),
        address=party.get("address", ""),
        commune=party.get("commune", ""),
        province=party.get("province", ""),
        contact_name=party.get("name", ""),
        contact_phone=party.get("phone"),
        id_last4=party.get("id_last4"),
        contact_unit=party.get("unit"),
    )


async def assignments(db: Database, keys: ServerKeys, user: CurrentUser) -> list[Assignment]:
    now = utcnow()
    async with db.read() as conn:
        rows = await repository.open_assigned_to(conn, user.id)
        counters = await repository.units_by_id(
            conn, [r.unit_id for r in rows if r.channel == "counter" and r.unit_id is not None]
        )
    return [_assignment(r, keys, now, counters) for r in rows]


def _assignment(
    r: Any, keys: ServerKeys, now: datetime, counters: dict[int, Any] | None = None
) -> Assignment:
    pickup = r.state == "registered"
    party = r.sender if pickup else r.recipient
    if pickup and r.channel == "counter" and (unit := (counters or {}).get(r.unit_id)) is not None:
        # handed in at a counter: the courier takes it from that unit's clerk, not at the door
        party = {"name": unit.name, "unit": unit.code}
    return Assignment(
        code=r.code,
        kind=r.kind,
        state=r.state,
        head=r.head,
        due_at=r.due_at,
        overdue=_overdue(r, now),
        attempts=r.attempts,
        dossier_ref=r.dossier_ref,
        procedure=r.procedure,
        fee_vnd=r.fee_vnd,
        components=r.components,
        recipient_id_last4_known=bool((r.recipient or {}).get("id_last4")),
        stop=_stop("pickup" if pickup else "delivery", party),
        # where it goes once picked up: the phone records the pickup before it syncs
        next_stop=_stop("delivery", r.recipient or {}) if pickup else None,
        next_events=[t.value for t in lifecycle.allowed_types("courier", r.state)],
        label_sig=label_signature(r.code, keys.label),
        has_pin=bool(r.pin_hash) and r.kind == "result",
        channel=r.channel,
    )
