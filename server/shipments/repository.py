"""All SQL about shipments, and the one place that decides who may see which shipment.

The unit scope (ARCHITECTURE.md "This shipment as this user may see it"): a clerk or a
dispatcher sees the shipments their unit registered, is the destination of, holds (the
custodian is one of the unit's people), or that answer a submission their unit
registered (the post office that brought a dossier in carries its result home); a
courier those assigned to them or held by them; admins and auditors every shipment.
`scope_terms` writes the rule down once; the SQL where-clause (`scope`) and the row
predicate (`may_see`) are both built from it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy import ColumnElement, and_, false, insert, or_, select, true, update
from sqlalchemy.ext.asyncio import AsyncConnection

from shared import codes
from shared.events import CustodyEvent
from shared.lifecycle import OPEN_STATES

from ..auth.service import CurrentUser
from ..db.models import attachments, custody_events, rejected_events, shipments, units, users
from ..db.results import inserted_id
from ..errors import NotFoundException, PermissionDeniedException

OPEN = [s.value for s in OPEN_STATES]
SEE_ALL = frozenset({"admin", "auditor"})
UNIT_STAFF = frozenset({"clerk", "dispatcher"})

# the unit of whoever holds the envelope now (NULL when a citizen, a hub or nobody holds it)
_holder_unit = (
    select(users.c.unit_id)
    .where(users.c.id == shipments.c.custodian_user_id)
    .correlate(shipments)
    .scalar_subquery()
    .label("custodian_unit_id")
)
# the unit that registered the submission a result answers: its post office carries the result home
_parent = shipments.alias("parent")
_carrier_unit = (
    select(_parent.c.unit_id)
    .where(_parent.c.code == shipments.c.parent_code)
    .correlate(shipments)
    .scalar_subquery()
    .label("carrier_unit_id")
)
_COLUMNS: dict[str, Any] = {
    "unit_id": shipments.c.unit_id,
    "dest_unit_id": shipments.c.dest_unit_id,
    "custodian_unit_id": _holder_unit,
    "carrier_unit_id": _carrier_unit,
    "assigned_courier_id": shipments.c.assigned_courier_id,
    "custodian_user_id": shipments.c.custodian_user_id,
}


def scope_terms(user: CurrentUser) -> list[tuple[str, int]] | None:
    """The rule: (column, value) pairs of which any one makes a shipment visible; None: all."""
    if user.role in SEE_ALL:
        return None
    if user.role == "courier":
        return [("assigned_courier_id", user.id), ("custodian_user_id", user.id)]
    if user.role in UNIT_STAFF and user.unit_id is not None:
        unit_columns = ("unit_id", "dest_unit_id", "custodian_unit_id", "carrier_unit_id")
        return [(name, user.unit_id) for name in unit_columns]
    return []


def scope(user: CurrentUser) -> ColumnElement[bool]:
    """The rule as a where-clause over `shipments`."""
    terms = scope_terms(user)
    if terms is None:
        return true()
    if not terms:
        return false()
    return or_(*(_COLUMNS[name] == value for name, value in terms))


def may_see(user: CurrentUser, row: Any) -> bool:
    """The rule on a row read with `SHIPMENT_COLUMNS` (it carries custodian_unit_id)."""
    terms = scope_terms(user)
    if terms is None:
        return True
    return any(getattr(row, name) == value for name, value in terms)


SHIPMENT_COLUMNS = (shipments, _holder_unit, _carrier_unit)


def _not_found(code: str) -> NotFoundException:
    return NotFoundException(f"No shipment {codes.group(code)}.")


async def visible(conn: AsyncConnection, user: CurrentUser, code: str) -> Any:
    """This shipment as this user may see it: 404 when unknown, 403 when not theirs."""
    row = (await conn.execute(select(*SHIPMENT_COLUMNS).where(shipments.c.code == code))).first()
    if row is None:
        raise _not_found(code)
    if not may_see(user, row):
        raise PermissionDeniedException(f"Shipment {codes.group(code)} is not yours to see.")
    return row


async def signed_by(conn: AsyncConnection, code: str, actor: str) -> bool:
    """Whether `actor` recorded any accepted event of this shipment (a courier who held it once)."""
    query = (
        select(custody_events.c.id)
        .join(shipments, shipments.c.id == custody_events.c.shipment_id)
        .where(shipments.c.code == code, custody_events.c.actor == actor)
        .limit(1)
    )
    return (await conn.execute(query)).first() is not None


async def visible_many(conn: AsyncConnection, user: CurrentUser, wanted: list[str]) -> list[Any]:
    """Several shipments in the order asked for; the first unknown or unseen one fails."""
    query = select(*SHIPMENT_COLUMNS).where(shipments.c.code.in_(wanted))
    rows = {r.code: r for r in (await conn.execute(query)).all()}
    missing = [c for c in wanted if c not in rows]
    if missing:
        raise NotFoundException(f"No shipment {', '.join(codes.group(c) for c in missing[:5])}.")
    for c in wanted:
        if not may_see(user, rows[c]):
            raise PermissionDeniedException(f"Shipment {codes.group(c)} is not yours to see.")
    return [rows[c] for c in wanted]


async def visible_codes(conn: AsyncConnection, user: CurrentUser, wanted: Iterable[str]) -> list[str]:
    """Which of these codes the user may see, in the order given (the live stream's filter)."""
    wanted = list(wanted)
    if not wanted:
        return []
    terms = scope_terms(user)
    if terms is None:
        return wanted
    query = select(shipments.c.code).where(shipments.c.code.in_(wanted), scope(user))
    seen = set((await conn.scalars(query)).all())
    return [c for c in wanted if c in seen]


# ---- events -------------------------------------------------------------------------------


@dataclass(slots=True)
class StoredEvent:
    """One accepted event as stored: the signed event and what the server noted on receipt."""

    id: str
    seq: int
    event: CustodyEvent
    received_at: datetime
    flags: list[str]
    hash: str
    log_index: int | None
    body: str  # exactly as signed, for the export and for the API (which shows it unchanged)


_decode_event = msgspec.json.Decoder(CustodyEvent).decode


async def events_of(
    conn: AsyncConnection, ship_id: int, types: Iterable[str] | None = None
) -> list[StoredEvent]:
    """The shipment's accepted events in chain order (optionally only these types)."""
    e = custody_events.c
    query = (
        select(e.id, e.seq, e.body, e.received_at, e.flags, e.hash, e.log_index)
        .where(e.shipment_id == ship_id)
        .order_by(e.seq)
    )
    if types is not None:
        query = query.where(e.type.in_(list(types)))
    return [
        StoredEvent(
            id=r.id,
            seq=r.seq,
            event=_decode_event(r.body),
            received_at=r.received_at,
            flags=list(r.flags or []),
            hash=r.hash,
            log_index=r.log_index,
            body=r.body,
        )
        for r in (await conn.execute(query)).all()
    ]


async def rejected_of(conn: AsyncConnection, code: str) -> list[Any]:
    query = (
        select(rejected_events).where(rejected_events.c.shipment_code == code).order_by(rejected_events.c.id)
    )
    return list((await conn.execute(query)).all())


# ---- people and units ---------------------------------------------------------------------


class UserName(msgspec.Struct, frozen=True):
    username: str
    full_name: str | None

    @property
    def shown(self) -> str:
        return self.full_name or self.username

    @property
    def with_username(self) -> str:
        return f"{self.full_name or self.username} ({self.username})"


async def user_names(conn: AsyncConnection, actors: Iterable[str]) -> dict[str, UserName]:
    """Names of the accounts behind actors like `courier:12`, keyed by actor."""
    ids = {int(a.split(":")[1]) for a in actors if ":" in a and a.split(":")[1].isdigit()}
    if not ids:
        return {}
    query = select(users.c.id, users.c.role, users.c.full_name, users.c.username).where(users.c.id.in_(ids))
    return {
        f"{r.role}:{r.id}": UserName(username=r.username, full_name=r.full_name)
        for r in (await conn.execute(query)).all()
    }


async def active_courier(conn: AsyncConnection, user_id: int) -> Any:
    query = select(users.c.id, users.c.role, users.c.active, users.c.full_name, users.c.username).where(
        users.c.id == user_id
    )
    row = (await conn.execute(query)).first()
    return row if row is not None and row.role == "courier" and row.active else None


async def unit_id(conn: AsyncConnection, code: str) -> int | None:
    return await conn.scalar(select(units.c.id).where(units.c.code == code))


async def unit_name(conn: AsyncConnection, unit_id: int) -> str:
    row = (await conn.execute(select(units.c.code, units.c.name).where(units.c.id == unit_id))).first()
    return f"{row.name} ({row.code})" if row else ""


async def unit_codes(conn: AsyncConnection) -> dict[int, str]:
    return dict((await conn.execute(select(units.c.id, units.c.code))).all())


# ---- shipments ----------------------------------------------------------------------------


async def parent_of(conn: AsyncConnection, code: str) -> Any:
    s = shipments.c
    query = select(s.code, s.kind, s.sender, s.recipient, s.pin_hash, s.dest_unit_id).where(s.code == code)
    return (await conn.execute(query)).first()


async def code_taken(conn: AsyncConnection, code: str) -> bool:
    return await conn.scalar(select(shipments.c.id).where(shipments.c.code == code)) is not None


async def set_assigned(conn: AsyncConnection, ship_id: int, courier_id: int, now: datetime) -> None:
    await conn.execute(
        update(shipments)
        .where(shipments.c.id == ship_id)
        .values(assigned_courier_id=courier_id, updated_at=now)
    )


async def insert_shipment(conn: AsyncConnection, row: dict[str, Any]) -> int:
    return inserted_id(await conn.execute(insert(shipments).values(**row)))


@dataclass(frozen=True, slots=True)
class SearchFilters:
    state: str | None = None
    courier: int | None = None
    unit_id: int | None = None  # registered by or addressed to this unit
    field: str | None = None
    due_before: datetime | None = None  # open and due before this: overdue
    q: str | None = None  # code prefix, dossier number or procedure
    before_id: int | None = None  # the cursor: rows older than this one


async def search(conn: AsyncConnection, user: CurrentUser, f: SearchFilters, limit: int) -> list[Any]:
    """Shipments matching the filters among those the user may see, newest first."""
    s = shipments.c
    conds: list[ColumnElement[bool]] = [scope(user)]
    if f.state:
        conds.append(s.state == f.state)
    if f.courier is not None:
        conds.append(s.assigned_courier_id == f.courier)
    if f.unit_id is not None:
        conds.append(or_(s.unit_id == f.unit_id, s.dest_unit_id == f.unit_id))
    if f.field:
        conds.append(s.field == f.field)
    if f.due_before is not None:
        conds.append(and_(s.state.in_(OPEN), s.due_at < f.due_before))
    if f.q:
        digits = f.q.replace(" ", "")
        like = f"%{f.q.strip()}%"
        conds.append(
            or_(
                s.code.startswith(digits) if digits.isdigit() else false(),
                s.dossier_ref.ilike(like),
                s.procedure.ilike(like),
            )
        )
    if f.before_id is not None:
        conds.append(s.id < f.before_id)
    query = select(shipments).where(*conds).order_by(s.id.desc()).limit(limit)
    return list((await conn.execute(query)).all())


async def units_by_id(conn: AsyncConnection, ids: Iterable[int]) -> dict[int, Any]:
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    rows = (
        await conn.execute(select(units.c.id, units.c.code, units.c.name).where(units.c.id.in_(wanted)))
    ).all()
    return {r.id: r for r in rows}


async def open_assigned_to(conn: AsyncConnection, courier_id: int) -> list[Any]:
    query = (
        select(shipments)
        .where(shipments.c.assigned_courier_id == courier_id, shipments.c.state.in_(OPEN))
        .order_by(shipments.c.due_at)
    )
    return list((await conn.execute(query)).all())


# ---- attachments --------------------------------------------------------------------------


async def may_see_attachment(conn: AsyncConnection, user: CurrentUser, sha256: str) -> bool:
    """An attachment is visible with a visible shipment whose event names it; an upload no
    event names yet, only to the account that uploaded it."""
    if user.role in SEE_ALL:
        return True
    uploaded_by = await conn.scalar(select(attachments.c.uploaded_by).where(attachments.c.sha256 == sha256))
    if uploaded_by is not None and uploaded_by == user.id:
        return True
    # a SHA-256 in hex has no LIKE wildcards; the quotes keep it to a whole JSON string
    named = custody_events.c.body.contains(f'"{sha256}"')
    query = (
        select(custody_events.c.id)
        .select_from(custody_events.join(shipments, shipments.c.id == custody_events.c.shipment_id))
        .where(named, scope(user))
        .limit(1)
    )
    return (await conn.scalar(query)) is not None
