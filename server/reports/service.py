"""The figures provinces are judged by (API.md "Reports"), computed in the database.

Which shipments count: those registered in the window [start, end) — and, with a
unit, those the unit registered or that are addressed to it. Every figure below is
about that set; the SQL groups and counts, Python only adds up a few hundred rows
(and, for the medians, one pair of times per delivered shipment).

- on-time rate: delivered shipments whose delivery closed on or before `due_at`,
  over all delivered shipments of the set.
- door-to-desk: a submission's `picked_up` (at the citizen's door) to its
  `delivered` (signed for at the one-stop shop's desk); desk-to-door: a result's
  `picked_up` at the desk to its `delivered` at the door. Device times (`occurred_at`).
- the three administrative-reform criteria, per unit:
  1. has postal traffic: at least one shipment registered by it or addressed to it;
  2. dossiers received by post: submissions delivered to it, and their share of the
     dossiers it received that HoSo knows of (those plus results it sent home for
     dossiers handed in at its counter, i.e. results without a parent submission);
  3. results returned by post: its result shipments delivered, and their share of
     all the results it registered.
"""

from __future__ import annotations

import asyncio
import statistics
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from msgspec import Struct
from sqlalchemy import and_, case, func, literal_column, or_, select, text
from sqlalchemy.sql.elements import ColumnElement

from shared.lifecycle import OPEN_STATES, State
from shared.timeutil import as_utc, utcnow

from ..db.engine import Database
from ..db.models import custody_events, shipments, units
from ..errors import BadRequest

VN = ZoneInfo("Asia/Ho_Chi_Minh")
MAX_DAYS = 400
REASONS = ("not_home", "refused", "wrong_address", "unidentified", "other")
# literal, to match the partial indexes ix_custody_events_legs and ix_custody_events_outcomes
LEG_TYPES = text("custody_events.type IN ('picked_up', 'delivered')")
OUTCOME_TYPES = text("custody_events.type IN ('delivery_failed', 'confirmed')")


class Durations(Struct):
    count: int
    median_hours: float | None


class UnitCriteria(Struct):
    unit: str
    name: str
    kind: str
    shipments: int
    has_postal_traffic: bool
    dossiers_received_by_post: int
    dossiers_received_total: int
    dossiers_received_by_post_pct: float | None
    results_returned_by_post: int
    results_total: int
    results_returned_by_post_pct: float | None


class Ratings(Struct):
    count: int
    average: float | None
    by_score: dict[str, int]


class Summary(Struct):
    start: datetime
    end: datetime
    unit: str | None
    total: int
    by_state: dict[str, int]
    by_kind: dict[str, int]
    by_field: dict[str, int]
    delivered: int
    delivered_on_time: int
    on_time_rate: float | None
    late_open: int
    door_to_desk: Durations
    desk_to_door: Durations
    failed_attempts: int
    failed_reasons: dict[str, int]
    ratings: Ratings
    units: list[UnitCriteria]


@dataclass(frozen=True, slots=True)
class Window:
    start: datetime
    end: datetime


def _parse_bound(text: str, name: str, *, is_end: bool) -> datetime:
    """A date (a whole Vietnamese day; `to` includes its day) or an ISO time with an offset."""
    text = text.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            if is_end:
                day += timedelta(days=1)
            return datetime.combine(day, time(0), VN)
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(
            f"`{name}` must be a date like 2026-11-01 or a time like 2026-11-01T00:00:00+07:00; got {text!r}."
        ) from None
    if value.tzinfo is None:
        raise BadRequest(f"`{name}` needs a time zone, e.g. 2026-11-01T00:00:00+07:00.")
    return value


def window(start_text: str | None, end_text: str | None, now: datetime | None = None) -> Window:
    """The report's window; by default the last 30 days up to now."""
    now = now or utcnow()
    end = _parse_bound(end_text, "to", is_end=True) if end_text else now
    start = _parse_bound(start_text, "from", is_end=False) if start_text else end - timedelta(days=30)
    if start >= end:
        raise BadRequest("`from` must be before `to`.")
    if end - start > timedelta(days=MAX_DAYS):
        raise BadRequest(f"A report covers at most {MAX_DAYS} days; ask for a shorter window.")
    return Window(start, end)


def _json_field(db: Database, path: tuple[str, ...]) -> ColumnElement[Any]:
    """One value from the event body's JSON, extracted by the database (no body parsing in Python)."""
    if db.is_sqlite:
        return func.json_extract(custody_events.c.body, "$." + ".".join(path))
    expr = "(custody_events.body::json" + "".join(f"->'{p}'" for p in path[:-1]) + f"->>'{path[-1]}')"
    return literal_column(expr)


def _pct(part: int, whole: int) -> float | None:
    return round(100.0 * part / whole, 1) if whole else None


def _median_hours(values: list[float]) -> Durations:
    return Durations(
        count=len(values), median_hours=round(statistics.median(values) / 3600, 2) if values else None
    )


async def summary(db: Database, win: Window, unit_code: str | None) -> Summary:
    s, e = shipments.c, custody_events.c
    conds: list[ColumnElement[bool]] = [s.created_at >= win.start, s.created_at < win.end]
    unit_row = None
    async with db.read() as conn:
        unit_rows = (await conn.execute(select(units.c.id, units.c.code, units.c.name, units.c.kind))).all()
        if unit_code:
            unit_row = next((u for u in unit_rows if u.code == unit_code), None)
            if unit_row is None:
                raise BadRequest(f"unit {unit_code!r} does not exist.")
            conds.append(or_(s.unit_id == unit_row.id, s.dest_unit_id == unit_row.id))
        now = utcnow()
        delivered_on_time = case(
            (and_(s.state == State.DELIVERED.value, s.closed_at <= s.due_at), 1), else_=0
        )
        late_open = case((and_(s.state.in_([x.value for x in OPEN_STATES]), s.due_at < now), 1), else_=0)
        has_parent = case((s.parent_code.is_(None), 0), else_=1)
        grouped = (
            await conn.execute(
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
                .where(*conds)
                .group_by(s.state, s.kind, s.field, s.unit_id, s.dest_unit_id, has_parent)
            )
        ).all()
    # The events of the window's shipments, found through partial indexes on their types
    # (written out, not bound, so the planner can use them). The window's ids also bound the
    # scan: its events have a shipment_id between the smallest and the largest of them.
    lo = min((r.lo for r in grouped), default=0)
    hi = max((r.hi for r in grouped), default=0)
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
        legs, outcomes = await rows(legs_query), await rows(outcomes_query)
    else:  # two connections, two queries at once
        legs, outcomes = await asyncio.gather(rows(legs_query), rows(outcomes_query))
    reasons = [r for r in outcomes if r.type == "delivery_failed"]
    ratings = [r for r in outcomes if r.type == "confirmed"]

    by_state = {st.value: 0 for st in State}
    by_kind = {"submission": 0, "result": 0}
    by_field: dict[str, int] = {}
    total = on_time = late = 0
    per_unit: dict[int, dict[str, int]] = {}

    def bump(unit_id: int | None, key: str, n: int) -> None:
        if unit_id is not None:
            counts = per_unit.setdefault(unit_id, {})
            counts[key] = counts.get(key, 0) + n

    for r in grouped:
        n = int(r.n)
        total += n
        by_state[r.state] = by_state.get(r.state, 0) + n
        by_kind[r.kind] = by_kind.get(r.kind, 0) + n
        by_field[r.field or ""] = by_field.get(r.field or "", 0) + n
        on_time += int(r.on_time or 0)
        late += int(r.late or 0)
        bump(r.unit_id, "shipments", n)
        if r.dest_unit_id != r.unit_id:
            bump(r.dest_unit_id, "shipments", n)
        delivered = r.state == State.DELIVERED.value
        if r.kind == "submission" and delivered:
            bump(r.dest_unit_id, "received_by_post", n)
        if r.kind == "result":
            bump(r.unit_id, "results_total", n)
            if delivered:
                bump(r.unit_id, "returned_by_post", n)
            if not r.has_parent:
                bump(r.unit_id, "counter_dossiers", n)
    delivered_n = by_state.get(State.DELIVERED.value, 0)

    medians = {"submission": Durations(0, None), "result": Durations(0, None)}
    if db.is_sqlite:
        times: dict[str, list[float]] = {"submission": [], "result": []}
        for r in legs:
            if r.p is not None and r.d is not None:
                times[r.kind].append((as_utc(r.d) - as_utc(r.p)).total_seconds())
        medians = {kind: _median_hours(values) for kind, values in times.items()}
    else:
        for r in legs:
            hours = round(float(r.median) / 3600, 2) if r.median is not None else None
            medians[r.kind] = Durations(count=int(r.n), median_hours=hours)

    failed_reasons = {k: 0 for k in REASONS}
    for r in reasons:
        key = str(r.reason) if r.reason is not None else "other"
        failed_reasons[key] = failed_reasons.get(key, 0) + int(r.n)
    by_score = {str(k): 0 for k in range(1, 6)}
    for r in ratings:
        if r.rating is not None:
            by_score[str(int(r.rating))] = by_score.get(str(int(r.rating)), 0) + int(r.n)
    rated = sum(by_score.values())
    average = round(sum(int(k) * v for k, v in by_score.items()) / rated, 2) if rated else None

    criteria = []
    for u in unit_rows:
        if unit_row is not None and u.id != unit_row.id:
            continue
        c = per_unit.get(u.id, {})
        received = c.get("received_by_post", 0)
        received_total = received + c.get("counter_dossiers", 0)
        returned, results_total = c.get("returned_by_post", 0), c.get("results_total", 0)
        criteria.append(
            UnitCriteria(
                unit=u.code,
                name=u.name,
                kind=u.kind,
                shipments=c.get("shipments", 0),
                has_postal_traffic=c.get("shipments", 0) > 0,
                dossiers_received_by_post=received,
                dossiers_received_total=received_total,
                dossiers_received_by_post_pct=_pct(received, received_total),
                results_returned_by_post=returned,
                results_total=results_total,
                results_returned_by_post_pct=_pct(returned, results_total),
            )
        )
    return Summary(
        start=win.start,
        end=win.end,
        unit=unit_code,
        total=total,
        by_state=by_state,
        by_kind=by_kind,
        by_field=dict(sorted(by_field.items(), key=lambda kv: (-kv[1], kv[0]))),
        delivered=delivered_n,
        delivered_on_time=on_time,
        on_time_rate=_pct(on_time, delivered_n),
        late_open=late,
        door_to_desk=medians["submission"],
        desk_to_door=medians["result"],
        failed_attempts=sum(failed_reasons.values()),
        failed_reasons=failed_reasons,
        ratings=Ratings(count=rated, average=average, by_score=by_score),
        units=criteria,
    )


def local_day(dt: datetime, *, inclusive_end: bool = False) -> str:
    """A window bound as the Vietnamese date a person would type (`to` names its last day)."""
    value = dt.astimezone(VN)
    if inclusive_end and value.time() == time(0):
        value -= timedelta(days=1)
    return value.date().isoformat()
