"""All SQL of the money area: fees couriers collected at pickup, remittances, statements.

A fee is what a courier's `picked_up` event recorded in `data.fee_vnd`, or what a clerk took at
the counter (`data.fee_vnd` of the `registered` event of a dossier with channel "counter": paid
into the post office's till there, so owed by no courier); which shipments a user may see in a
statement is decided by shipments/repository.py (`scope`), not here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy import and_, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from ..auth.service import CurrentUser
from ..db.models import custody_events, remittance_items, remittances, shipments, units, users
from ..db.results import inserted_id
from ..shipments import repository as shipments_repo


@dataclass(slots=True)
class Fee:
    """One fee a courier collected, and the remittance that covered it (if any)."""

    shipment_id: int
    code: str
    dossier_ref: str
    procedure: str
    agency_id: int | None
    courier_id: int
    fee_vnd: int
    collected_at: datetime  # the pickup's time on the device
    remittance_id: int | None
    remitted_at: datetime | None
    at_counter: bool = False  # taken by a clerk at the counter (courier_id is then the clerk's)


def _fee_of(body: str) -> int:
    data = msgspec.json.decode(body).get("data") or {}
    fee = data.get("fee_vnd")
    return fee if type(fee) is int and fee > 0 else 0


def _fees_query(extra: list[Any], types: Any = None) -> Any:
    e, s = custody_events.c, shipments.c
    return (
        select(
            s.id.label("shipment_id"),
            s.code,
            s.dossier_ref,
            s.procedure,
            s.dest_unit_id,
            e.actor,
            e.body,
            e.occurred_at,
            remittance_items.c.remittance_id,
            remittances.c.created_at.label("remitted_at"),
        )
        .select_from(
            custody_events.join(shipments, shipments.c.id == e.shipment_id)
            .outerjoin(remittance_items, remittance_items.c.shipment_id == s.id)
            .outerjoin(remittances, remittances.c.id == remittance_items.c.remittance_id)
        )
        .where(custody_events.c.type == "picked_up" if types is None else types, *extra)
        .order_by(e.occurred_at, s.id)
    )


def _fees(rows: list[Any]) -> list[Fee]:
    out = []
    for r in rows:
        fee = _fee_of(r.body)
        if fee:
            out.append(
                Fee(
                    shipment_id=r.shipment_id,
                    code=r.code,
                    dossier_ref=r.dossier_ref,
                    procedure=r.procedure,
                    agency_id=r.dest_unit_id,
                    courier_id=int(r.actor.split(":")[1]),
                    fee_vnd=fee,
                    collected_at=r.occurred_at,
                    remittance_id=r.remittance_id,
                    remitted_at=r.remitted_at,
                    at_counter=r.actor.startswith("clerk:"),
                )
            )
    return out


async def fees_of_couriers(
    conn: AsyncConnection, courier_ids: list[int], until: datetime, since: datetime | None = None
) -> list[Fee]:
    """The fees these couriers collected before `until`, with their remittance: those
    collected from `since` on, and older ones still unremitted at `since`."""
    if not courier_ids:
        return []
    actors = [f"courier:{i}" for i in courier_ids]
    e, paid = custody_events.c, remittances.c.created_at
    conds = [e.actor.in_(actors), e.occurred_at < until]
    if since is not None:
        conds.append(or_(e.occurred_at >= since, paid.is_(None), paid >= since))
    query = _fees_query(conds)
    return _fees(list((await conn.execute(query)).all()))


async def fees_of_shipments(conn: AsyncConnection, courier_id: int, ship_codes: list[str]) -> list[Fee]:
    """The fees this courier collected for these shipments (others are left out)."""
    e, s = custody_events.c, shipments.c
    query = _fees_query([e.actor == f"courier:{courier_id}", s.code.in_(ship_codes)])
    return _fees(list((await conn.execute(query)).all()))


async def fees_for_agency(
    conn: AsyncConnection, user: CurrentUser, agency_id: int, start: datetime, end: datetime
) -> list[Fee]:
    """Fees collected in [start, end) for shipments going to the agency, as the user may see them:
    those couriers collected at pickup and those clerks took at the counter."""
    e, s = custody_events.c, shipments.c
    query = _fees_query(
        [
            s.dest_unit_id == agency_id,
            e.occurred_at >= start,
            e.occurred_at < end,
            shipments_repo.scope(user),
        ],
        or_(
            and_(e.type == "picked_up", e.actor.like("courier:%")),
            and_(e.type == "registered", s.channel == "counter", e.actor.like("clerk:%")),
        ),
    )
    return _fees(list((await conn.execute(query)).all()))


async def couriers_of(conn: AsyncConnection, unit_id: int | None) -> list[Any]:
    """Couriers (active or not) of a unit; of every unit when unit_id is None."""
    u = users.c
    conds = [u.role == "courier"]
    if unit_id is not None:
        conds.append(u.unit_id == unit_id)
    query = (
        select(u.id, u.username, u.full_name, u.unit_id, units.c.code.label("unit_code"))
        .select_from(users.outerjoin(units, units.c.id == u.unit_id))
        .where(*conds)
        .order_by(u.full_name, u.id)
    )
    return list((await conn.execute(query)).all())


async def remittances_of(
    conn: AsyncConnection, courier_ids: list[int], until: datetime, since: datetime
) -> list[Any]:
    """The couriers' remittances recorded in [since, until)."""
    if not courier_ids:
        return []
    r = remittances.c
    query = (
        select(remittances)
        .where(r.courier_id.in_(courier_ids), r.created_at >= since, r.created_at < until)
        .order_by(r.created_at, r.id)
    )
    return list((await conn.execute(query)).all())


async def insert_remittance(conn: AsyncConnection, row: dict[str, Any], items: list[dict[str, Any]]) -> int:
    """The remittance and its items in the caller's transaction; an item already remitted
    raises IntegrityError (the items' primary key is the shipment)."""
    result = await conn.execute(insert(remittances).values(**row))
    rid = inserted_id(result)
    await conn.execute(insert(remittance_items), [{**i, "remittance_id": rid} for i in items])
    return rid


async def remittance(conn: AsyncConnection, remittance_id: int) -> Any:
    cashier, courier = users.alias("cashier"), users.alias("courier")
    query = (
        select(
            remittances,
            cashier.c.full_name.label("cashier_name"),
            cashier.c.username.label("cashier_login"),
            courier.c.full_name.label("courier_name"),
            courier.c.username.label("courier_login"),
            units.c.code.label("unit_code"),
        )
        .select_from(
            remittances.join(cashier, cashier.c.id == remittances.c.cashier_id)
            .join(courier, courier.c.id == remittances.c.courier_id)
            .join(units, units.c.id == remittances.c.unit_id)
        )
        .where(remittances.c.id == remittance_id)
    )
    return (await conn.execute(query)).first()


async def unit_by_code(conn: AsyncConnection, code: str) -> Any:
    return (await conn.execute(select(units).where(units.c.code == code))).first()


async def unit_by_id(conn: AsyncConnection, unit_id: int) -> Any:
    return (await conn.execute(select(units).where(units.c.id == unit_id))).first()


async def agencies(conn: AsyncConnection) -> list[Any]:
    query = select(units).where(units.c.kind == "one_stop_shop").order_by(units.c.code)
    return list((await conn.execute(query)).all())


async def courier(conn: AsyncConnection, courier_id: int) -> Any:
    u = users.c
    query = select(u.id, u.username, u.full_name, u.unit_id, u.role).where(
        and_(u.id == courier_id, or_(u.role == "courier"))
    )
    return (await conn.execute(query)).first()
