"""All SQL of the citizen area: a shipment's family (itself, its parent submission, its
results) with their events, and what confirming a delivered result reads and writes."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, or_, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from ..db.engine import Database
from ..db.models import custody_events, shipments


async def family_with_events(db: Database, code: str) -> list[Any]:
    """The shipment, its parent submission, its result(s) and all their events: one query,
    one row per event (or per shipment without events), in shipment id then chain order."""
    parent_of = select(shipments.c.parent_code).where(shipments.c.code == code).scalar_subquery()
    s, e = shipments.c, custody_events.c
    query = (
        select(
            s.id,
            s.code,
            s.kind,
            s.state,
            s.parent_code,
            s.due_at,
            s.attempts,
            s.custodian_role,
            s.sender,
            s.recipient,
            e.shipment_id,
            e.type,
            e.body,
            e.occurred_at,
        )
        .select_from(shipments.outerjoin(custody_events, e.shipment_id == s.id))
        .where(or_(s.code == code, s.parent_code == code, s.code == parent_of))
        .order_by(s.id, e.seq)
    )
    async with db.read() as conn:
        return list((await conn.execute(query)).all())


_FAMILY_VERSION = text(
    "SELECT id, head, updated_at FROM shipments WHERE code = :code OR parent_code = :code "
    "OR code = (SELECT parent_code FROM shipments WHERE code = :code) ORDER BY id"
)


# the same on PostgreSQL through Database.pg_fetch (asyncpg's text): the page's hot check
_PG_FAMILY_VERSION = (
    "SELECT id, head, updated_at FROM shipments WHERE code = $1 OR parent_code = $1 "
    "OR code = (SELECT parent_code FROM shipments WHERE code = $1) ORDER BY id"
)


async def family_version(db: Database, code: str) -> tuple[tuple[Any, ...], ...]:
    if not db.is_sqlite:
        return tuple(tuple(r) for r in await db.pg_fetch(_PG_FAMILY_VERSION, code))
    async with db.read() as conn:
        return tuple(tuple(r) for r in (await conn.execute(_FAMILY_VERSION, {"code": code})).all())


async def pin_row(db: Database, code: str) -> Any:
    """What a PIN check needs of a shipment (code, kind, parent, PIN hash), with its state and
    recipient for confirming; None if there is no such shipment."""
    async with db.read() as conn:
        return (
            await conn.execute(
                select(
                    shipments.c.code,
                    shipments.c.kind,
                    shipments.c.parent_code,
                    shipments.c.pin_hash,
                    shipments.c.state,
                    shipments.c.recipient,
                ).where(shipments.c.code == code)
            )
        ).first()


async def is_confirmed(conn: AsyncConnection, code: str) -> bool:
    n = await conn.scalar(
        select(func.count())
        .select_from(custody_events)
        .join(shipments, shipments.c.id == custody_events.c.shipment_id)
        .where(shipments.c.code == code, custody_events.c.type == "confirmed")
    )
    return bool(n)
