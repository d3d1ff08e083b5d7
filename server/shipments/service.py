"""Registering, finding, assigning and cancelling shipments."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from shared import codes, lifecycle
from shared.labels import label_signature, label_url
from shared.lifecycle import EventType
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
from ..db.models import custody_events, rejected_events, shipments, units, users
from ..errors import (
    BadRequest,
    Conflict,
    NotFoundException,
    PermissionDeniedException,
    Unprocessable,
)
from ..keys import ServerKeys
from .schemas import (
    Assignment,
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


def _party(p: Party | None) -> dict[str, Any] | None:
    return msgspec.to_builtins(p) if p is not None else None


def parse_code(text: str) -> str:
    try:
        return codes.normalize(text)
    except codes.InvalidCode as exc:
        raise BadRequest(str(exc)) from None


async def create(
    db: Database,
    keys: ServerKeys,
    base_url: str,
    user: CurrentUser,
    data: ShipmentCreate,
    *,
    registered_at: datetime | None = None,  # the demo back-dates its history; requests never do
) -> ShipmentCreated:
    if data.due_at.tzinfo is None:
        raise BadRequest("due_at needs a time zone, e.g. 2026-12-01T17:00:00+07:00.")
    sender, recipient = _party(data.sender), _party(data.recipient)
    pin: str | None = None
    parent = None
    if data.parent:
        parent_code = parse_code(data.parent)
        async with db.read() as conn:
            parent = (
                await conn.execute(
                    select(
                        shipments.c.code,
                        shipments.c.kind,
                        shipments.c.sender,
                        shipments.c.recipient,
                        shipments.c.pin_hash,
                        shipments.c.dest_unit_id,
                    ).where(shipments.c.code == parent_code)
                )
            ).first()
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
            dest_unit_id = await conn.scalar(select(units.c.id).where(units.c.code == data.dest_unit))
        if dest_unit_id is None:
            raise Unprocessable(f"dest_unit {data.dest_unit!r} is not a known unit.")
    now = registered_at or utcnow()
    async with db.write() as conn:
        for _ in range(20):
            code = codes.new_code()
            if await conn.scalar(select(shipments.c.id).where(shipments.c.code == code)) is None:
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
            "sender": sender,
            "recipient": recipient,
            "due_at": data.due_at,
            "fee_vnd": data.fee_vnd,
            "components": list(data.components),
            "parent_code": parent.code if parent else None,
            "unit_id": user.unit_id,
            "dest_unit_id": dest_unit_id,
            "pin_hash": pin_hash,
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
        }
        ship_id = (await conn.execute(insert(shipments).values(**row))).inserted_primary_key[0]
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
                "sender": sender,
                "recipient": recipient,
                "unit": user.unit_code,
            },
        )
        ship = {**row, "id": ship_id}
        batch = Batch()
        batch.accepted.append(event_row(event, ship_id, 1, None, now, None))
        apply_effects(ship, event, lifecycle.State.REGISTERED, now)
        batch.touched[ship_id] = ship
        await write_batch(conn, batch, now, merkle_log=db.merkle_log)
    db.changed("registered", [code])
    return ShipmentCreated(
        code=code,
        state="registered",
        label_url=f"{base_url}/api/v1/shipments/{code}/label.png",
        tracking_url=label_url(base_url, code, keys.label),
        pin=pin,
        head=event.hash,
    )


def _custodian(r: Any) -> Custodian:
    return Custodian(role=r.custodian_role, name=r.custodian_name, user_id=r.custodian_user_id)


def _overdue(r: Any, now: datetime) -> bool:
    return r.state in lifecycle.OPEN_STATES and r.due_at < now


def _can_see(user: CurrentUser, r: Any) -> bool:
    if user.role == "courier":
        return r.assigned_courier_id == user.id
    if user.role == "clerk":
        return user.unit_id is not None and user.unit_id in (r.unit_id, r.dest_unit_id)
    return True


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
    conds = []
    if state:
        if state not in lifecycle.State.__members__.values():
            raise BadRequest(f"state must be one of {', '.join(s.value for s in lifecycle.State)}.")
        conds.append(shipments.c.state == state)
    if courier is not None:
        conds.append(shipments.c.assigned_courier_id == courier)
    if unit:
        unit_id = await _unit_id(db, unit)
        conds.append(or_(shipments.c.unit_id == unit_id, shipments.c.dest_unit_id == unit_id))
    if field:
        conds.append(shipments.c.field == field)
    if overdue:
        conds.append(
            and_(
                shipments.c.state.in_([s.value for s in lifecycle.OPEN_STATES]),
                shipments.c.due_at < now,
            )
        )
    if q:
        digits = q.replace(" ", "")
        like = f"%{q.strip()}%"
        conds.append(
            or_(
                shipments.c.code.startswith(digits) if digits.isdigit() else False,
                shipments.c.dossier_ref.ilike(like),
                shipments.c.procedure.ilike(like),
            )
        )
    if user.role == "clerk":
        conds.append(or_(shipments.c.unit_id == user.unit_id, shipments.c.dest_unit_id == user.unit_id))
    if cursor:
        conds.append(shipments.c.id < _decode_cursor(cursor))
    query = select(shipments).where(*conds).order_by(shipments.c.id.desc()).limit(limit + 1)
    async with db.read() as conn:
        rows = (await conn.execute(query)).all()
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
        uid = await conn.scalar(select(units.c.id).where(units.c.code == code))
    if uid is None:
        raise BadRequest(f"unit {code!r} does not exist.")
    return int(uid)


async def _load_visible(conn: AsyncConnection, user: CurrentUser, code: str) -> Any:
    row = (await conn.execute(select(shipments).where(shipments.c.code == code))).first()
    if row is None:
        raise NotFoundException(f"No shipment {codes.group(code)}.")
    if not _can_see(user, row):
        raise PermissionDeniedException(f"Shipment {codes.group(code)} is not yours to see.")
    return row


async def detail(
    db: Database, keys: ServerKeys, base_url: str, user: CurrentUser, code_text: str
) -> ShipmentDetail:
    code = parse_code(code_text)
    async with db.read() as conn:
        r = await _load_visible(conn, user, code)
        ev_rows = (
            await conn.execute(
                select(
                    custody_events.c.body,
                    custody_events.c.seq,
                    custody_events.c.received_at,
                    custody_events.c.flags,
                )
                .where(custody_events.c.shipment_id == r.id)
                .order_by(custody_events.c.seq)
            )
        ).all()
        rej_rows = (
            await conn.execute(
                select(rejected_events)
                .where(rejected_events.c.shipment_code == code)
                .order_by(rejected_events.c.id)
            )
        ).all()
        unit_codes = dict((await conn.execute(select(units.c.id, units.c.code))).all())
    events = [msgspec.json.decode(e.body) for e in ev_rows]
    wanted = {h for ev in events for h in _attachment_hashes(ev)}
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
        assigned_courier_id=r.assigned_courier_id,
        tracking_url=label_url(base_url, r.code, keys.label),
        created_at=r.created_at,
        events=[
            EventView(
                event=ev,
                seq=row.seq,
                received_at=row.received_at,
                missing_attachments=[h for h in _attachment_hashes(ev) if h not in have],
                flags=list(row.flags or []),
            )
            for ev, row in zip(events, ev_rows, strict=True)
        ],
        rejected=[
            RejectedView(
                id=x.event_id,
                hash=x.hash,
                type=x.type,
                actor=x.actor,
                reason=x.reason,
                received_at=x.received_at,
                event=msgspec.json.decode(x.body),
            )
            for x in rej_rows
        ],
    )


def _attachment_hashes(ev: dict[str, Any]) -> list[str]:
    a = ev.get("attachments") or {}
    return ([a["signature"]] if a.get("signature") else []) + list(a.get("photos") or [])


async def assign(db: Database, user: CurrentUser, code_text: str, courier_id: int) -> None:
    code = parse_code(code_text)
    async with db.write() as conn:
        courier = (
            await conn.execute(
                select(users.c.id, users.c.role, users.c.active).where(users.c.id == courier_id)
            )
        ).first()
        if courier is None or courier.role != "courier" or not courier.active:
            raise Unprocessable(f"courier_id {courier_id} is not an active courier.")
        ships = await lock_shipments(conn, [code])
        ship = ships.get(code)
        if ship is None:
            raise NotFoundException(f"No shipment {codes.group(code)}.")
        if ship["state"] in lifecycle.FINAL_STATES:
            raise Conflict(
                f"Shipment {codes.group(code)} is {ship['state']}: there is nothing left to carry."
            )
        if (
            ship["state"] == "in_custody"
            and ship["custodian_role"] == "courier"
            and ship["custodian_user_id"] not in (None, courier_id)
        ):
            raise Conflict("Another courier holds this envelope: record a transfer from them instead.")
        await conn.execute(
            update(shipments)
            .where(shipments.c.id == ship["id"])
            .values(assigned_courier_id=courier_id, updated_at=utcnow())
        )
    db.changed("assigned", [code])


async def cancel(db: Database, keys: ServerKeys, user: CurrentUser, code_text: str, reason: str) -> str:
    code = parse_code(code_text)
    async with db.write() as conn:
        ship = (await lock_shipments(conn, [code])).get(code)
        if ship is None:
            raise NotFoundException(f"No shipment {codes.group(code)}.")
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
    return event.hash


async def assignments(db: Database, keys: ServerKeys, user: CurrentUser) -> list[Assignment]:
    now = utcnow()
    async with db.read() as conn:
        rows = (
            await conn.execute(
                select(shipments)
                .where(
                    shipments.c.assigned_courier_id == user.id,
                    shipments.c.state.in_([s.value for s in lifecycle.OPEN_STATES]),
                )
                .order_by(shipments.c.due_at)
            )
        ).all()
    out = []
    for r in rows:
        pickup = r.state == "registered"
        party = r.sender if pickup else r.recipient
        out.append(
            Assignment(
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
                stop=Stop(
                    kind="pickup" if pickup else "delivery",
                    lat=party.get("lat"),
                    lon=party.get("lon"),
                    address=party.get("address", ""),
                    commune=party.get("commune", ""),
                    province=party.get("province", ""),
                    contact_name=party.get("name", ""),
                    contact_phone=party.get("phone"),
                ),
                next_events=[t.value for t in lifecycle.allowed_types("courier", r.state)],
                label_sig=label_signature(r.code, keys.label),
                pin_check=r.pin_hash if r.kind == "result" else None,
            )
        )
    return out
