"""All SQL of the auth area: units, users, tokens, devices, and the attempt counters that
cap password and PIN guessing (the citizen area counts its PIN tries here too)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, delete, func, insert, literal, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from ..db.engine import Database
from ..db.models import api_tokens, attempt_counters, devices, units, users
from ..db.results import inserted_id


class Duplicate(Exception):
    """A unique column already holds this value."""


_USER_COLUMNS = (
    users.c.id,
    users.c.username,
    users.c.role,
    users.c.unit_id,
    users.c.full_name,
    units.c.code.label("unit_code"),
    units.c.kind.label("unit_kind"),
)


async def insert_unit(db: Database, code: str, name: str, kind: str, now: datetime) -> int:
    try:
        async with db.write() as conn:
            result = await conn.execute(insert(units).values(code=code, name=name, kind=kind, created_at=now))
            return inserted_id(result)
    except IntegrityError:
        raise Duplicate(code) from None


async def unit_id_for_code(db: Database, code: str) -> int | None:
    async with db.read() as conn:
        uid = await conn.scalar(select(units.c.id).where(units.c.code == code))
    return None if uid is None else int(uid)


async def insert_user(db: Database, values: dict[str, Any]) -> int:
    try:
        async with db.write() as conn:
            result = await conn.execute(insert(users).values(**values))
            return inserted_id(result)
    except IntegrityError:
        raise Duplicate(values["username"]) from None


async def login_row(db: Database, username: str) -> Any:
    """The account with its password hash and active flag, or None."""
    async with db.read() as conn:
        return (
            await conn.execute(
                select(*_USER_COLUMNS, users.c.password_hash, users.c.active)
                .select_from(users.outerjoin(units, units.c.id == users.c.unit_id))
                .where(users.c.username == username)
            )
        ).first()


async def insert_token(db: Database, token_hash: str, user_id: int, now: datetime, ttl_s: int) -> None:
    async with db.write() as conn:
        await conn.execute(delete(api_tokens).where(api_tokens.c.expires_at < now))
        await conn.execute(
            insert(api_tokens).values(
                token_hash=token_hash,
                user_id=user_id,
                created_at=now,
                expires_at=now + timedelta(seconds=ttl_s),
            )
        )


async def delete_token(db: Database, token_hash: str) -> None:
    async with db.write() as conn:
        await conn.execute(delete(api_tokens).where(api_tokens.c.token_hash == token_hash))


async def token_row(db: Database, token_hash: str) -> Any:
    """The token's user (as _USER_COLUMNS), the account's active flag and the expiry, or None."""
    async with db.read() as conn:
        return (
            await conn.execute(
                select(*_USER_COLUMNS, users.c.active, api_tokens.c.expires_at)
                .select_from(
                    api_tokens.join(users, users.c.id == api_tokens.c.user_id).outerjoin(
                        units, units.c.id == users.c.unit_id
                    )
                )
                .where(api_tokens.c.token_hash == token_hash)
            )
        ).first()


async def enroll_device_key(
    db: Database,
    user_id: int,
    public_key: str,
    label: str,
    now: datetime,
    on_new: Callable[[AsyncConnection, int, datetime], Awaitable[object]] | None = None,
) -> int | None:
    """The device id for this key (new or this account's own), None if it is another's or revoked;
    `on_new` runs in the same transaction when the key is new."""
    async with db.write() as conn:
        existing = (
            await conn.execute(
                select(devices.c.id, devices.c.user_id, devices.c.revoked_at).where(
                    devices.c.public_key == public_key
                )
            )
        ).first()
        if existing is not None:
            if existing.user_id != user_id or existing.revoked_at is not None:
                return None
            return int(existing.id)
        result = await conn.execute(
            insert(devices).values(user_id=user_id, public_key=public_key, label=label, created_at=now)
        )
        device_id = inserted_id(result)
        if on_new is not None:
            await on_new(conn, device_id, now)
        return device_id


async def all_units(db: Database) -> list[dict[str, Any]]:
    async with db.read() as conn:
        rows = (await conn.execute(select(units).order_by(units.c.code))).all()
    return [dict(r._mapping) for r in rows]


# --- attempt counters ---------------------------------------------------------------------


async def take_attempt(
    conn: AsyncConnection, key: str, now: datetime, window: timedelta
) -> tuple[int, datetime]:
    """Count one try under `key` and return (tries in this window including it, window start).

    One INSERT … ON CONFLICT DO UPDATE … RETURNING: on PostgreSQL the row stays locked until
    the transaction ends, on SQLite the single writer serializes it, so two parallel tries
    never read the same count. A window older than `window` starts afresh.
    """
    c = attempt_counters.c
    ins = (pg_insert if conn.dialect.name == "postgresql" else sqlite_insert)(attempt_counters)
    expired = c.window_start <= literal(now - window, c.window_start.type)
    stmt = (
        ins.values(key=key, count=1, window_start=now)
        .on_conflict_do_update(
            index_elements=[c.key],
            set_={
                "count": case((expired, 1), else_=c.count + 1),
                "window_start": case((expired, literal(now, c.window_start.type)), else_=c.window_start),
            },
        )
        .returning(c.count, c.window_start)
    )
    count, window_start = (await conn.execute(stmt)).one()
    return int(count), window_start


async def give_back_attempt(conn: AsyncConnection, key: str) -> None:
    """Undo take_attempt: the try was refused before the check, or the secret was right."""
    c = attempt_counters.c
    await conn.execute(update(attempt_counters).where(c.key == key, c.count > 0).values(count=c.count - 1))
    # a counter back at zero is no row at all: a right password leaves the table as it was
    await conn.execute(delete(attempt_counters).where(c.key == key, c.count <= 0))


async def prune_attempts(conn: AsyncConnection, before: datetime) -> None:
    """Drop counters whose window ended long ago: they no longer limit anything."""
    await conn.execute(delete(attempt_counters).where(attempt_counters.c.window_start < before))


async def attempt_count(db: Database, key: str) -> int:
    async with db.read() as conn:
        n = await conn.scalar(
            select(func.coalesce(func.max(attempt_counters.c.count), 0)).where(attempt_counters.c.key == key)
        )
    return int(n or 0)
