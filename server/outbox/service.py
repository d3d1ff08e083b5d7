"""The outbox's rules: the rows registration and assignment add, a shipment's messages, the
dead letters and their retry, webhook subscriptions (with rotation) and units' settings."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import nacl.public
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.timeutil import utcnow

from ..db.engine import Database
from ..errors import BadRequest, NotFoundException
from ..keys import ServerKeys
from . import messages
from . import repository as repo
from .channels import new_secret

ROTATION_OVERLAP = timedelta(hours=24)  # the previous secret still signs this long after a rotation


def registration_rows(
    keys: ServerKeys, ship: dict[str, Any], pin: str, now: datetime
) -> list[dict[str, Any]]:
    """A new submission's two citizen messages: the PIN alone (one UCS-2 segment), sealed to
    the server's own seal key until it is sent; and the tracking link."""
    sealed = nacl.public.SealedBox(keys.seal.public_key).encrypt(pin.encode()) if keys.seal else None
    payload: dict[str, Any] = {}
    common = {"shipment_id": ship["id"], "unit_id": ship.get("unit_id"), "channel": "citizen", "now": now}
    return [
        repo.message_row(topic="pin", payload=payload, sealed=sealed, **common),
        repo.message_row(topic="registered", payload=dict(payload), **common),
    ]


async def add_assigned(conn: AsyncConnection, ship: dict[str, Any], now: datetime) -> None:
    """Webhook rows for an assignment (no custody event records one), in its transaction."""
    subs = await repo.active_subscriptions(conn)
    rows = [
        repo.message_row(
            shipment_id=ship["id"],
            unit_id=unit_id,
            channel="webhook",
            topic="assigned",
            payload=repo.webhook_body("assigned", ship, now, None),
            now=now,
            subscription_id=sid,
        )
        for sid, unit_id in subs.matching(ship, "assigned")
    ]
    await repo.insert_rows(conn, rows)


async def of_shipment(db: Database, shipment_id: int) -> list[Any]:
    async with db.read() as conn:
        return await repo.of_shipment(conn, shipment_id)


async def of_code(db: Database, code: str) -> list[Any]:
    """A shipment's messages (the caller has checked the user may see the shipment)."""
    async with db.read() as conn:
        return await repo.of_code(conn, code)


async def dead_letters(db: Database) -> list[Any]:
    async with db.read() as conn:
        return await repo.dead_letters(conn)


async def retry(db: Database, message_id: int) -> None:
    async with db.write() as conn:
        if not await repo.retry_dead(conn, message_id, utcnow()):
            raise NotFoundException(
                f"Không có thư chết số {message_id} (đã gửi lại rồi?). "
                f"No dead letter {message_id} (retried already?)."
            )
    db.changed("outbox", [])


def _check_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise BadRequest(f"URL webhook phải là https://… / A webhook URL must be https://… (got {url!r}).")
    return url


def _check_events(events: list[str]) -> list[str]:
    unknown = sorted(set(events) - set(repo.WEBHOOK_EVENTS))
    if unknown or not events:
        raise BadRequest(
            f"Loại sự kiện không hợp lệ: {', '.join(unknown) or '(trống)'}; chọn trong "
            f"{', '.join(repo.WEBHOOK_EVENTS)}. / Unknown event types; choose from the list."
        )
    return sorted(set(events))


async def add_subscription(db: Database, unit_code: str, url: str, events: list[str]) -> tuple[int, str]:
    """A new subscription and its secret (shown once, to give to the receiver)."""
    async with db.write() as conn:
        unit_id = await repo.unit_id_of(conn, unit_code)
        if unit_id is None:
            raise NotFoundException(f"Không có đơn vị {unit_code!r}. / No unit {unit_code!r}.")
        secret = new_secret()
        sid = await repo.add_subscription(
            conn,
            {
                "unit_id": unit_id,
                "url": _check_url(url),
                "event_types": _check_events(events),
                "secret": secret,
                "previous_secret": None,
                "previous_until": None,
                "active": True,
                "created_at": utcnow(),
            },
        )
    return sid, secret


async def rotate_secret(db: Database, sub_id: int, overlap: timedelta = ROTATION_OVERLAP) -> str:
    """A new secret; the old one keeps signing beside it for `overlap`, so the receiver can
    switch without losing a message."""
    async with db.write() as conn:
        sub = await repo.subscription(conn, sub_id)
        if sub is None:
            raise NotFoundException(f"Không có đăng ký webhook {sub_id}. / No webhook subscription {sub_id}.")
        secret = new_secret()
        await repo.update_subscription(
            conn, sub_id, secret=secret, previous_secret=sub.secret, previous_until=utcnow() + overlap
        )
    return secret


async def set_active(db: Database, sub_id: int, active: bool) -> None:
    async with db.write() as conn:
        if not await repo.update_subscription(conn, sub_id, active=active):
            raise NotFoundException(f"Không có đăng ký webhook {sub_id}. / No webhook subscription {sub_id}.")


async def subscriptions(db: Database) -> list[Any]:
    async with db.read() as conn:
        return await repo.subscriptions(conn)


async def set_notify(
    db: Database, unit_code: str, channel: str, templates: dict[str, str], sms_sender: str
) -> None:
    if channel not in ("sms", "zalo", "off"):
        raise BadRequest(
            f"Kênh phải là sms, zalo hoặc off / channel must be sms, zalo or off (got {channel!r})."
        )
    unknown = sorted(set(templates) - set(messages.TOPICS))
    if unknown:
        raise BadRequest(f"Không có loại tin {', '.join(unknown)}; chọn trong {', '.join(messages.TOPICS)}.")
    if len(sms_sender) > 11:
        raise BadRequest(
            "Tên thương hiệu SMS tối đa 11 ký tự. / An SMS brand name has at most 11 characters."
        )
    async with db.write() as conn:
        unit_id = await repo.unit_id_of(conn, unit_code)
        if unit_id is None:
            raise NotFoundException(f"Không có đơn vị {unit_code!r}. / No unit {unit_code!r}.")
        await repo.set_notify(
            conn,
            unit_id,
            {
                "channel": channel,
                "zns_templates": templates,
                "sms_sender": sms_sender,
                "updated_at": utcnow(),
            },
        )


async def counts(db: Database) -> dict[str, int]:
    async with db.read() as conn:
        return await repo.counts(conn)
