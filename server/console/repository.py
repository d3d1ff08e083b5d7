"""All SQL of the console: the board, couriers' workload, the clerk's counter and handovers.

Which shipments a user may see is not decided here: every query over shipments takes the
where-clause of shipments/repository.py (`scope`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Float, and_, case, cast, func, insert, literal, not_, or_, select, text
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement, TextClause

from ..auth.service import CurrentUser
from ..db.models import custody_events, handovers, shipments, units, users
from ..db.results import inserted_id
from ..shipments import repository as shipments_repo

# written out, not bound: so PostgreSQL can match the partial index ix_shipments_open_due
# (a prepared statement's parameters would hide the states from the planner)
OPEN_SQL = text("shipments.state IN ('registered', 'in_custody')")


@dataclass(frozen=True, slots=True)
class BoardQuery:
    state: str | None
    kind: str | None
    field: str | None
    unit_id: int | None
    courier: int | None
    due_before: datetime | None  # late: due before now
    due_between: tuple[datetime, datetime] | None  # at risk: due soon
    min_attempts: int | None = None  # to return: in custody with at least this many failed attempts
    # at risk, in SQL (PostgreSQL): registered, or not yet this many metres from the recipient
    # by the last known position (service.py's haversine, the same sum); None: not filtered here
    far_m: float | None = None


EARTH_M = 6_371_008.8


def _far(s: Any, last: Any, metres: float) -> ColumnElement[bool]:
    """Registered (not yet picked up), or the last known position is unknown or more than
    `metres` from the recipient (service._row's "at risk" beyond its due-soon window)."""
    lat, lon = s.recipient["lat"], s.recipient["lon"]
    known = and_(
        last.c.lat.is_not(None),
        last.c.lon.is_not(None),
        func.json_typeof(lat) == "number",
        func.json_typeof(lon) == "number",
    )
    la1, lo1 = func.radians(last.c.lat), func.radians(last.c.lon)
    # the casts only inside the CASE: a destination without numbers is never cast
    la2, lo2 = func.radians(cast(lat.as_string(), Float)), func.radians(cast(lon.as_string(), Float))
    h = func.power(func.sin((la2 - la1) / 2), 2) + func.cos(la1) * func.cos(la2) * func.power(
        func.sin((lo2 - lo1) / 2), 2
    )
    metres_away = 2 * EARTH_M * func.asin(func.least(literal(1.0, Float), func.sqrt(h)))
    near = case((known, metres_away <= metres), else_=False)
    return or_(s.state == "registered", not_(near))


async def board(
    conn: AsyncConnection,
    user: CurrentUser,
    q: BoardQuery,
    now: datetime,
    fetch: int,
    after: tuple[datetime, int] | None = None,
    count: bool = True,
) -> tuple[list[Any], int, int]:
    """Open shipments the user may see, soonest due first, with the last known position;
    and (if `count`) how many match and how many of those are late. `after` (due_at, id):
    only the rows after that one in the board's order (the next page of a filtered read)."""
    s = shipments.c
    conds: list[ColumnElement[bool] | TextClause] = [OPEN_SQL, shipments_repo.scope(user)]
    if q.state:
        conds.append(s.state == q.state)
    if q.kind:
        conds.append(s.kind == q.kind)
    if q.field:
        conds.append(s.field == q.field)
    if q.unit_id is not None:
        conds.append(or_(s.unit_id == q.unit_id, s.dest_unit_id == q.unit_id))
    if q.courier is not None:
        conds.append(s.assigned_courier_id == q.courier)
    if q.due_before is not None:
        conds.append(s.due_at < q.due_before)
    elif q.due_between is not None:
        conds.append(and_(s.due_at >= q.due_between[0], s.due_at < q.due_between[1]))
    if q.min_attempts is not None:
        conds.append(and_(s.state == "in_custody", s.attempts >= q.min_attempts))
    last = custody_events.alias("last")
    at_last = shipments.outerjoin(last, and_(last.c.shipment_id == s.id, last.c.seq == s.seq))
    page_conds = list(conds)
    if q.far_m is not None:
        # the rows only: the count stays that of the due-soon window, as on SQLite (counting
        # those at risk would join every due-soon row's last event: 2,331 probes at 1M,
        # more than the page's own read)
        page_conds.append(_far(s, last, q.far_m))
    if after is not None:
        page_conds.append(or_(s.due_at > after[0], and_(s.due_at == after[0], s.id > after[1])))
    courier = users.alias("courier")
    holder = users.alias("holder")
    # the page first, in the open-due index's order, then the names joined to its rows: so
    # the planner reads the index until the page is full and stops (joined first, it read every
    # row of an at-risk window and sorted them, estimating the distance filter as few rows)
    page = (
        select(
            s.id,
            s.code,
            s.kind,
            s.state,
            s.field,
            s.procedure,
            s.sender,
            s.recipient,
            s.custodian_role,
            s.custodian_name,
            s.custodian_user_id,
            s.assigned_courier_id,
            s.attempts,
            s.created_at,
            s.due_at,
            last.c.lat,
            last.c.lon,
        )
        .select_from(at_last)
        .where(*page_conds)
        .order_by(s.due_at, s.id)
        .limit(fetch)
        .subquery("page")
    )
    p = page.c
    query = (
        select(
            *(c for c in page.c if c.key != "custodian_user_id"),
            courier.c.full_name.label("courier_name"),
            courier.c.username.label("courier_username"),
            holder.c.full_name.label("holder_name"),
        )
        .select_from(
            page.outerjoin(courier, courier.c.id == p.assigned_courier_id).outerjoin(
                holder, holder.c.id == p.custodian_user_id
            )
        )
        .order_by(p.due_at, p.id)
    )
    late_expr = func.sum(case((s.due_at < now, 1), else_=0))
    rows = (await conn.execute(query)).all()
    if not count:
        return list(rows), 0, 0
    counted = (await conn.execute(select(func.count(), late_expr).where(*conds))).one()
    return list(rows), int(counted[0]), int(counted[1] or 0)


async def couriers(conn: AsyncConnection) -> list[Any]:
    query = (
        select(users.c.id, users.c.username, users.c.full_name, units.c.code.label("unit"))
        .select_from(users.outerjoin(units, units.c.id == users.c.unit_id))
        .where(users.c.role == "courier", users.c.active.is_(True))
        .order_by(users.c.full_name, users.c.id)
    )
    return list((await conn.execute(query)).all())


async def all_units(conn: AsyncConnection) -> list[Any]:
    return list((await conn.execute(select(units).order_by(units.c.code))).all())


# ---- couriers' workload -------------------------------------------------------------------


async def open_loads(
    conn: AsyncConnection, ids: list[int], now: datetime, start: datetime, end: datetime
) -> dict[int, Any]:
    """Per courier: to pick up, carrying, due in [start, end), late."""
    s = shipments.c
    query = (
        select(
            s.assigned_courier_id.label("cid"),
            func.sum(case((s.state == "registered", 1), else_=0)).label("to_pick_up"),
            func.sum(case((s.state == "in_custody", 1), else_=0)).label("carrying"),
            func.sum(case((and_(s.due_at >= start, s.due_at < end), 1), else_=0)).label("due_today"),
            func.sum(case((s.due_at < now, 1), else_=0)).label("late"),
        )
        .where(s.assigned_courier_id.in_(ids), s.state.in_(("registered", "in_custody")))
        .group_by(s.assigned_courier_id)
    )
    return {r.cid: r for r in (await conn.execute(query)).all()}


async def outcomes_since(
    conn: AsyncConnection, actors: list[str], start: datetime
) -> dict[tuple[str, str], int]:
    """(actor, type) → deliveries and failed attempts received since `start`."""
    e = custody_events.c
    query = (
        select(e.actor, e.type, func.count().label("n"))
        .where(e.actor.in_(actors), e.received_at >= start, e.type.in_(("delivered", "delivery_failed")))
        .group_by(e.actor, e.type)
    )
    return {(r.actor, r.type): int(r.n) for r in (await conn.execute(query)).all()}


async def last_fix(conn: AsyncConnection, actor: str) -> Any:
    """The actor's last event with a position (one indexed probe on (actor, received_at))."""
    e = custody_events.c
    query = (
        select(e.lat, e.lon, e.received_at)
        .where(e.actor == actor, e.lat.is_not(None))
        .order_by(e.received_at.desc())
        .limit(1)
    )
    return (await conn.execute(query)).first()


async def active_couriers(conn: AsyncConnection) -> list[Any]:
    query = (
        select(users.c.id, users.c.username, users.c.full_name)
        .where(users.c.role == "courier", users.c.active.is_(True))
        .order_by(users.c.full_name, users.c.id)
    )
    return list((await conn.execute(query)).all())


# ---- the clerk's counter ------------------------------------------------------------------


async def recent_registered(conn: AsyncConnection, unit_id: int | None, limit: int) -> list[Any]:
    s = shipments.c
    conds = [s.state == "registered"]
    if unit_id is not None:
        conds.append(s.unit_id == unit_id)
    query = (
        select(s.code, s.kind, s.recipient, s.due_at, s.created_at)
        .where(*conds)
        .order_by(s.id.desc())
        .limit(limit)
    )
    return list((await conn.execute(query)).all())


async def held_for_unit(conn: AsyncConnection, courier_id: int, unit_id: int | None) -> list[Any]:
    """What the courier holds that ends at the unit: sent to it, or coming back to it."""
    s = shipments.c
    query = (
        select(s.code, s.kind, s.procedure, s.recipient, s.due_at)
        .where(
            s.state == "in_custody",
            s.custodian_role == "courier",
            s.custodian_user_id == courier_id,
            or_(s.dest_unit_id == unit_id, and_(s.unit_id == unit_id, s.attempts > 0)),
        )
        .order_by(s.due_at)
    )
    return list((await conn.execute(query)).all())


async def insert_handover(conn: AsyncConnection, row: dict[str, Any]) -> int:
    result = await conn.execute(insert(handovers).values(**row))
    return inserted_id(result)


async def handover(conn: AsyncConnection, handover_id: int) -> Any:
    return (await conn.execute(select(handovers).where(handovers.c.id == handover_id))).first()


async def recorded_with(conn: AsyncConnection, wanted: Iterable[str], signature: str) -> set[str]:
    """Which of the codes have a delivered or returned event carrying this signature."""
    query = (
        select(shipments.c.code)
        .join(custody_events, custody_events.c.shipment_id == shipments.c.id)
        .where(
            shipments.c.code.in_(list(wanted)),
            custody_events.c.type.in_(("delivered", "returned")),
            custody_events.c.body.contains(signature),
        )
    )
    return set((await conn.execute(query)).scalars())


async def handovers_for(conn: AsyncConnection, courier_id: int, limit: int = 20) -> list[Any]:
    query = (
        select(handovers, users.c.full_name.label("clerk_name"), users.c.username.label("clerk_login"))
        .join(users, users.c.id == handovers.c.clerk_id)
        .where(handovers.c.courier_id == courier_id)
        .order_by(handovers.c.id.desc())
        .limit(limit)
    )
    return list((await conn.execute(query)).all())


async def still_held_by(conn: AsyncConnection, wanted: Iterable[str], courier_id: int) -> set[str]:
    query = select(shipments.c.code).where(
        shipments.c.code.in_(set(wanted)),
        shipments.c.state == "in_custody",
        shipments.c.custodian_user_id == courier_id,
    )
    return set((await conn.execute(query)).scalars())
