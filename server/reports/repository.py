"""All SQL of the reports: the window's shipments grouped, their legs and outcomes.

SQLite and PostgreSQL differ here only: JSON extraction, and where the medians are taken
(PostgreSQL's percentile_cont; on SQLite one pair of times per delivered shipment).
"""

from __future__ import annotations

import asyncio
import statistics
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, func, literal_column, or_, select, text
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from shared.lifecycle import OPEN_STATES, State
from shared.timeutil import as_utc

from ..db.engine import Database
from ..db.models import custody_events, shipments, units

# literal, to match the partial indexes ix_custody_events_legs and ix_custody_events_outcomes
LEG_TYPES = text("custody_events.type IN ('picked_up', 'delivered')")
OUTCOME_TYPES = text("custody_events.type IN ('delivery_failed', 'confirmed')")


@dataclass(frozen=True, slots=True)
class Leg:
    """Pickup to delivery of one kind of shipment: how many, and the median in seconds."""

    count: int
    median_s: float | None


def _window(start: datetime, end: datetime, unit_id: int | None) -> list[ColumnElement[bool]]:
    s = shipments.c
    conds: list[ColumnElement[bool]] = [s.created_at >= start, s.created_at < end]
    if unit_id is not None:
        conds.append(or_(s.unit_id == unit_id, s.dest_unit_id == unit_id))
    return conds


async def all_units(conn: AsyncConnection) -> list[Any]:
    return list((await conn.execute(select(units.c.id, units.c.code, units.c.name, units.c.kind))).all())


async def grouped(
    conn: AsyncConnection, start: datetime, end: datetime, unit_id: int | None, now: datetime
) -> list[Any]:
    """The window's shipments counted by state, kind, field, units and whether they have a parent."""
    s = shipments.c
    delivered_on_time = case((and_(s.state == State.DELIVERED.value, s.closed_at <= s.due_at), 1), else_=0)
    late_open = case((and_(s.state.in_([x.value for x in OPEN_STATES]), s.due_at < now), 1), else_=0)
    has_parent = case((s.parent_code.is_(None), 0), else_=1)
    query = (
        select(
            s.state,
            s.kind,
            s.field,
            s.unit_id,
            s.dest_unit_id,
            has_parent.label("has_parent"),
            func.count().label("n"),
            func.sum(delivered_on_time).label("on_time"),
            func.sum(late_open).label("late"),
            func.min(s.id).label("lo"),
            func.max(s.id).label("hi"),
        )
        .where(*_window(start, end, unit_id))
        .group_by(s.state, s.kind, s.field, s.unit_id, s.dest_unit_id, has_parent)
    )
    return list((await conn.execute(query)).all())


def _json_field(db: Database, path: tuple[str, ...]) -> ColumnElement[Any]:
    """One value from the event body's JSON, extracted by the database (no body parsing in Python)."""
    if db.is_sqlite:
        return func.json_extract(custody_events.c.body, "$." + ".".join(path))
    expr = "(custody_events.body::json" + "".join(f"->'{p}'" for p in path[:-1]) + f"->>'{path[-1]}')"
    return literal_column(expr)


async def legs_and_outcomes(
    db: Database, start: datetime, end: datetime, unit_id: int | None, lo: int, hi: int
) -> tuple[dict[str, Leg], list[Any]]:
    """Pickup-to-delivery medians per kind, and (type, reason, rating, n) of failed attempts
    and confirmations, for the window's shipments (whose ids lie in [lo, hi])."""
    s, e = shipments.c, custody_events.c
    conds = _window(start, end, unit_id)
    # The events of the window's shipments, found through partial indexes on their types
    # (written out, not bound, so the planner can use them). The window's ids also bound the
    # scan: its events have a shipment_id between the smallest and the largest of them.
    window_ids = select(s.id).where(*conds)
    pickup_at = func.min(case((e.type == "picked_up", e.occurred_at)))
    delivered_at = func.max(case((e.type == "delivered", e.occurred_at)))
    legs_query = (
        select(s.kind, pickup_at.label("p"), delivered_at.label("d"))
        .select_from(shipments.join(custody_events, e.shipment_id == s.id))
        .where(*conds, s.state == State.DELIVERED.value, LEG_TYPES, e.shipment_id.between(lo, hi))
        .group_by(s.id, s.kind)
    )
    if not db.is_sqlite:  # the medians in the database: two rows back instead of one per shipment
        leg = legs_query.subquery()
        seconds = func.extract("epoch", leg.c.d - leg.c.p)
        legs_query = (
            select(
                leg.c.kind,
                func.count(seconds).label("n"),
                func.percentile_cont(0.5).within_group(seconds).label("median"),
            )
            .where(leg.c.p.is_not(None), leg.c.d.is_not(None))
            .group_by(leg.c.kind)
        )
    reason = _json_field(db, ("data", "reason"))
    rating = _json_field(db, ("data", "rating"))
    outcomes_query = (
        select(e.type, reason.label("reason"), rating.label("rating"), func.count().label("n"))
        .where(OUTCOME_TYPES, e.shipment_id.between(lo, hi), e.shipment_id.in_(window_ids))
        .group_by(e.type, reason, rating)
    )

    async def rows(query: Any) -> list[Any]:
        async with db.read() as conn:
            return list((await conn.execute(query)).all())

    if db.is_sqlite:  # one reader at a time is all SQLite would do anyway
        leg_rows, outcomes = await rows(legs_query), await rows(outcomes_query)
        times: dict[str, list[float]] = {"submission": [], "result": []}
        for r in leg_rows:
            if r.p is not None and r.d is not None:
                times[r.kind].append((as_utc(r.d) - as_utc(r.p)).total_seconds())
        legs = {k: Leg(len(v), statistics.median(v) if v else None) for k, v in times.items()}
    else:  # two connections, two queries at once
        leg_rows, outcomes = await asyncio.gather(rows(legs_query), rows(outcomes_query))
        legs = {r.kind: Leg(int(r.n), float(r.median) if r.median is not None else None) for r in leg_rows}
    return legs, outcomes
