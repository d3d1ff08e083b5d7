"""All SQL of the outbox: the rows a change writes in its own transaction, and what the
worker claims, reads and marks.

`rows_for_batch` runs inside ingest's one write transaction over an `Executor`
(server/db/executor.py), as `IngestWriter.write_batch` does: one read of the active
webhook subscriptions and one multi-row insert per batch. Everything else runs on
`Database.write()` / `read()` connections.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

import msgspec
from sqlalchemy import bindparam, func, insert, null, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from ..db.executor import Executor
from ..db.models import outbox_messages, shipments, unit_notify, units, webhook_subscriptions

T = outbox_messages.c
# what a citizen hears about, by custody event type (shipments.kind decides registered's topic)
CITIZEN_TOPICS = {"picked_up": "on_the_way", "delivery_failed": "delivery_failed", "delivered": "delivered"}
# what a webhook may subscribe to
WEBHOOK_EVENTS = (
    "registered",
    "assigned",
    "picked_up",
    "delivery_failed",
    "delivered",
    "returned",
    "confirmed",
)
_KEYS = tuple(c.name for c in outbox_messages.columns if c.name != "id")
_INSERT = insert(outbox_messages)
_ACTIVE_SUBS = select(
    webhook_subscriptions.c.id, webhook_subscriptions.c.unit_id, webhook_subscriptions.c.event_types
).where(webhook_subscriptions.c.active.is_(True))
_DECODE = msgspec.json.Decoder()


def message_row(
    *,
    shipment_id: int | None,
    unit_id: int | None,
    channel: str,
    topic: str,
    payload: dict[str, Any],
    now: datetime,
    subscription_id: int | None = None,
    sealed: bytes | None = None,
) -> dict[str, Any]:
    return {
        "shipment_id": shipment_id,
        "unit_id": unit_id,
        "channel": channel,
        "topic": topic,
        "subscription_id": subscription_id,
        "destination": "",
        "payload": payload,
        "sealed": sealed,
        "state": "pending",
        "attempts": 0,
        "next_at": now,
        "claimed_until": None,
        "claimed_by": None,
        "last_error": "",
        "segments": None,
        "created_at": now,
        "sent_at": None,
    }


def webhook_body(
    event_type: str, ship: dict[str, Any], now: datetime, event: dict[str, Any] | None
) -> dict[str, Any]:
    """The webhook's JSON (docs/NOTIFICATIONS.md): the custody event's hash and log index
    let the receiver ask the log for its inclusion later."""
    data: dict[str, Any] = {
        "shipment": ship["code"],
        "kind": ship["kind"],
        "dossier_ref": ship.get("dossier_ref") or "",
        "state": ship["state"],
    }
    if event is not None:
        data.update(
            event_id=event["id"],
            event_type=event["type"],
            hash=event["hash"],
            log_index=event.get("log_index"),
            # the signed wire time (the row's own may already be in its stored form)
            occurred_at=_DECODE.decode(event["body"])["occurred_at"]
            if "body" in event
            else _wire(event["occurred_at"]),
        )
    return {"type": f"shipment.{event_type}", "timestamp": _wire(now), "data": data}


def _wire(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return str(value)


class Subscriptions:
    """The active subscriptions, read once per transaction: (unit, event type) -> ids."""

    def __init__(self, rows: Iterable[Sequence[Any]]) -> None:
        self.by: dict[tuple[int, str], list[int]] = {}
        for sid, unit_id, types in rows:
            for t in types or ():
                self.by.setdefault((unit_id, t), []).append(sid)

    def matching(self, ship: dict[str, Any], event_type: str) -> list[tuple[int, int]]:
        """(subscription id, unit id) for the shipment's registering and destination units."""
        out: list[tuple[int, int]] = []
        units = {ship.get("unit_id"), ship.get("dest_unit_id")}
        for unit_id in (u for u in units if isinstance(u, int)):
            out += [(sid, unit_id) for sid in self.by.get((unit_id, event_type), ())]
        return out


def rows_for_batch(
    ex: Executor,
    accepted: list[dict[str, Any]],
    touched: dict[int, dict[str, Any]],
    now: datetime,
    extra: list[dict[str, Any]],
) -> None:
    """The outbox rows of one ingest transaction's accepted events (and `extra` rows the
    caller made, e.g. registration's sealed PIN), in one multi-row insert."""
    rows = batch_rows(accepted, touched, now, extra, lambda: Subscriptions(ex.rows(_ACTIVE_SUBS)))
    if rows:
        ex.many(_INSERT, rows, _KEYS)


def batch_rows(
    accepted: list[dict[str, Any]],
    touched: dict[int, dict[str, Any]],
    now: datetime,
    extra: list[dict[str, Any]],
    subscriptions: Callable[[], Subscriptions],
    *,
    webhooks: bool | None = None,
) -> list[dict[str, Any]]:
    """rows_for_batch's rows; `subscriptions()` is called at most once, when an event could
    have a webhook (PostgreSQL's writer read them with the shipments' lock: PG_ACTIVE_SUBS).
    `webhooks`: True for the webhook rows only (they name the event's log index), False for
    every other row, None for all."""
    rows = list(extra) if webhooks is not True else []
    subs: Subscriptions | None = None
    for ev in accepted:
        etype = ev["type"]
        ship = touched.get(ev["shipment_id"])
        if ship is None:
            continue
        topic = CITIZEN_TOPICS.get(etype)
        if etype == "registered" and not extra:
            topic = "result_ready" if ship["kind"] == "result" else None  # a submission's comes with its PIN
        if etype == "picked_up" and ship["kind"] != "result":
            topic = None  # the citizen handed it over themselves
        if topic is not None and webhooks is not True:
            # the worker reads the code, kind and phone from the shipment: only what it cannot
            payload: dict[str, Any] = {}
            if etype == "delivery_failed":
                data = _DECODE.decode(ev["body"]).get("data") or {}
                payload["reason"] = str(data.get("reason", ""))[:40]
            rows.append(
                message_row(
                    shipment_id=ship["id"],
                    unit_id=ship.get("unit_id"),
                    channel="citizen",
                    topic=topic,
                    payload=payload,
                    now=now,
                )
            )
        if etype in WEBHOOK_EVENTS and webhooks is not False:
            if subs is None:
                subs = subscriptions()
            if not subs.by:
                continue
            for sid, unit_id in subs.matching(ship, etype):
                rows.append(
                    message_row(
                        shipment_id=ship["id"],
                        unit_id=unit_id,
                        channel="webhook",
                        topic=etype,
                        payload=webhook_body(etype, ship, now, ev),
                        now=now,
                        subscription_id=sid,
                    )
                )
    return rows


# the active subscriptions as one JSON text of [id, unit_id, event_types] arrays (PostgreSQL)
PG_ACTIVE_SUBS = (
    "SELECT coalesce(json_agg(json_build_array(id, unit_id, event_types)), '[]'::json)::text AS subs "
    "FROM webhook_subscriptions WHERE active"
)
# (column, array type) of an outbox row, for an `INSERT … SELECT FROM unnest(…)` (PostgreSQL)
PG_COLUMNS = (
    ("shipment_id", "int"),
    ("unit_id", "int"),
    ("channel", "text"),
    ("topic", "text"),
    ("subscription_id", "int"),
    ("destination", "text"),
    ("payload", "text"),  # JSON text, cast by the insert
    ("sealed", "bytea"),
    ("state", "text"),
    ("attempts", "int"),
    ("next_at", "timestamptz"),
    ("claimed_until", "timestamptz"),
    ("claimed_by", "text"),
    ("last_error", "text"),
    ("segments", "int"),
    ("created_at", "timestamptz"),
    ("sent_at", "timestamptz"),
)
assert {c for c, _ in PG_COLUMNS} == set(_KEYS)


# --- the worker's side ---


async def anything_due(conn: AsyncConnection, now: datetime) -> bool:
    """A read, so that an idle worker never takes the write lock just to find nothing."""
    query = select(T.id).where(T.state == "pending", T.next_at <= now).limit(1)
    return (await conn.execute(query)).first() is not None


async def claim(conn: AsyncConnection, me: str, n: int, lease_s: float, now: datetime) -> list[Any]:
    """Take up to n due rows for `lease_s`: nobody else takes them until the lease ends, and
    a worker that dies leaves them to be taken again then. On PostgreSQL `FOR UPDATE SKIP
    LOCKED` lets several workers claim at once without waiting on each other's rows."""
    due = (
        select(T.id)
        .where(T.state == "pending", T.next_at <= now, or_(T.claimed_until.is_(None), T.claimed_until < now))
        .order_by(T.next_at, T.id)
        .limit(n)
    )
    if conn.dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    stmt = (
        update(outbox_messages)
        .where(T.id.in_(due.scalar_subquery()))
        .values(claimed_until=now + timedelta(seconds=lease_s), claimed_by=me)
        .returning(*outbox_messages.columns)
    )
    rows = (await conn.execute(stmt)).all()
    return sorted(rows, key=lambda r: r.id)


def _outcome(**also: Any) -> Any:
    """Record a try's outcome on a row this worker still holds, and let the row go."""
    return (
        update(outbox_messages)
        .where(T.id == bindparam("b_id"), T.claimed_by == bindparam("b_me"))
        .values(
            **{c: bindparam(c) for c in _OUTCOME_COLUMNS},
            claimed_until=null(),
            claimed_by=null(),
            **also,
        )
    )


_OUTCOME_COLUMNS = (
    "state",
    "attempts",
    "channel",
    "destination",
    "segments",
    "last_error",
    "sent_at",
    "next_at",
)
_DONE = _outcome(sealed=null())  # sent or given up: the sealed PIN is erased
_AGAIN = _outcome()  # to be tried again: the PIN stays sealed


async def finish(
    conn: AsyncConnection, me: str, done: list[dict[str, Any]], again: list[dict[str, Any]]
) -> None:
    """Record outcomes, only on rows this worker still holds: `done` (sent or skipped: the
    sealed PIN is erased) and `again` (a retry later, or dead: kept for an admin's retry)."""
    for stmt, params in ((_DONE, done), (_AGAIN, again)):
        if params:
            await conn.execute(stmt, [{**p, "b_me": me} for p in params])


async def shipments_for(conn: AsyncConnection, ids: set[int]) -> dict[int, Any]:
    if not ids:
        return {}
    rows = await conn.execute(
        select(
            shipments.c.id,
            shipments.c.code,
            shipments.c.kind,
            shipments.c.sender,
            shipments.c.recipient,
            shipments.c.unit_id,
            shipments.c.dossier_ref,
        ).where(shipments.c.id.in_(sorted(ids)))
    )
    return {r.id: r for r in rows}


async def subscriptions_for(conn: AsyncConnection, ids: set[int]) -> dict[int, Any]:
    if not ids:
        return {}
    rows = await conn.execute(
        select(webhook_subscriptions).where(webhook_subscriptions.c.id.in_(sorted(ids)))
    )
    return {r.id: r for r in rows}


async def notify_settings(conn: AsyncConnection, unit_ids: set[int]) -> dict[int, Any]:
    if not unit_ids:
        return {}
    rows = await conn.execute(select(unit_notify).where(unit_notify.c.unit_id.in_(sorted(unit_ids))))
    return {r.unit_id: r for r in rows}


async def insert_rows(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    if rows:
        await conn.execute(_INSERT, rows)


async def active_subscriptions(conn: AsyncConnection) -> Subscriptions:
    return Subscriptions((await conn.execute(_ACTIVE_SUBS)).all())


# --- what the console and the CLI read and change ---


async def of_code(conn: AsyncConnection, code: str) -> list[Any]:
    ship_id = (await conn.execute(select(shipments.c.id).where(shipments.c.code == code))).scalar()
    return [] if ship_id is None else await of_shipment(conn, ship_id)


async def of_shipment(conn: AsyncConnection, shipment_id: int) -> list[Any]:
    query = (
        select(
            T.id,
            T.channel,
            T.topic,
            T.destination,
            T.state,
            T.attempts,
            T.segments,
            T.last_error,
            T.created_at,
            T.sent_at,
            T.next_at,
        )
        .where(T.shipment_id == shipment_id)
        .order_by(T.id)
    )
    return list((await conn.execute(query)).all())


async def dead_letters(conn: AsyncConnection, limit: int = 200) -> list[Any]:
    query = (
        select(
            T.id,
            T.channel,
            T.topic,
            T.destination,
            T.attempts,
            T.last_error,
            T.created_at,
            shipments.c.code,
        )
        .select_from(outbox_messages.outerjoin(shipments, shipments.c.id == T.shipment_id))
        .where(T.state == "dead")
        .order_by(T.id.desc())
        .limit(limit)
    )
    return list((await conn.execute(query)).all())


async def retry_dead(conn: AsyncConnection, message_id: int, now: datetime) -> bool:
    """A dead letter back to pending, due now, with its tries counted afresh."""
    result = await conn.execute(
        update(outbox_messages)
        .where(T.id == message_id, T.state == "dead")
        .values(state="pending", attempts=0, next_at=now, last_error="", claimed_until=None, claimed_by=None)
    )
    return bool(result.rowcount)


async def counts(conn: AsyncConnection) -> dict[str, int]:
    rows = await conn.execute(select(T.state, func.count()).group_by(T.state))
    return {state: n for state, n in rows}


async def unit_id_of(conn: AsyncConnection, code: str) -> int | None:
    return (await conn.execute(select(units.c.id).where(units.c.code == code))).scalar()


async def add_subscription(conn: AsyncConnection, row: dict[str, Any]) -> int:
    return int(
        (
            await conn.execute(
                insert(webhook_subscriptions).values(**row).returning(webhook_subscriptions.c.id)
            )
        ).scalar_one()
    )


async def subscriptions(conn: AsyncConnection, unit_id: int | None = None) -> list[Any]:
    query = select(webhook_subscriptions, units.c.code.label("unit_code")).join(
        units, units.c.id == webhook_subscriptions.c.unit_id
    )
    if unit_id is not None:
        query = query.where(webhook_subscriptions.c.unit_id == unit_id)
    return list((await conn.execute(query.order_by(webhook_subscriptions.c.id))).all())


async def update_subscription(conn: AsyncConnection, sub_id: int, **values: Any) -> bool:
    result = await conn.execute(
        update(webhook_subscriptions).where(webhook_subscriptions.c.id == sub_id).values(**values)
    )
    return bool(result.rowcount)


async def subscription(conn: AsyncConnection, sub_id: int) -> Any:
    return (
        await conn.execute(select(webhook_subscriptions).where(webhook_subscriptions.c.id == sub_id))
    ).first()


async def set_notify(conn: AsyncConnection, unit_id: int, row: dict[str, Any]) -> None:
    exists = (
        await conn.execute(select(unit_notify.c.unit_id).where(unit_notify.c.unit_id == unit_id))
    ).first()
    if exists:
        await conn.execute(update(unit_notify).where(unit_notify.c.unit_id == unit_id).values(**row))
    else:
        await conn.execute(insert(unit_notify).values(unit_id=unit_id, **row))
