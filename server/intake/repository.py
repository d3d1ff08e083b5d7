"""All SQL of intake: API keys and the idempotency records of dossiers registered by a
unit's software or from a file."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from ..db.models import api_keys, intake_records, shipments, units, users
from ..db.results import inserted_id

# ---- API keys ----------------------------------------------------------------------------------


async def insert_key(conn: AsyncConnection, values: dict[str, Any]) -> int:
    return inserted_id(await conn.execute(insert(api_keys).values(**values)))


async def insert_key_user(conn: AsyncConnection, values: dict[str, Any]) -> int:
    return inserted_id(await conn.execute(insert(users).values(**values)))


async def key_by_prefix(conn: AsyncConnection, prefix: str) -> Any:
    """The key with its account and unit (as CurrentUser needs them), or None."""
    k = api_keys.c
    query = (
        select(
            k.id.label("key_id"),
            k.secret_hash,
            k.revoked_at,
            users.c.id,
            users.c.username,
            users.c.role,
            users.c.unit_id,
            users.c.full_name,
            users.c.active,
            units.c.code.label("unit_code"),
            units.c.kind.label("unit_kind"),
        )
        .select_from(api_keys.join(users, users.c.id == k.user_id).join(units, units.c.id == k.unit_id))
        .where(k.prefix == prefix)
    )
    return (await conn.execute(query)).first()


async def revoke_key(conn: AsyncConnection, prefix: str, now: datetime) -> Any:
    """Mark the key revoked and disable its account; the row as it was, or None."""
    k = api_keys.c
    row = (await conn.execute(select(k.id, k.user_id, k.revoked_at).where(k.prefix == prefix))).first()
    if row is None:
        return None
    if row.revoked_at is None:
        await conn.execute(update(api_keys).where(k.id == row.id).values(revoked_at=now))
        await conn.execute(update(users).where(users.c.id == row.user_id).values(active=False))
    return row


async def list_keys(conn: AsyncConnection) -> list[Any]:
    k = api_keys.c
    query = (
        select(k.prefix, k.name, k.created_at, k.revoked_at, units.c.code.label("unit_code"))
        .select_from(api_keys.join(units, units.c.id == k.unit_id))
        .order_by(k.id)
    )
    return list((await conn.execute(query)).all())


async def unit_row(conn: AsyncConnection, code: str) -> Any:
    return (
        await conn.execute(select(units.c.id, units.c.code, units.c.kind).where(units.c.code == code))
    ).first()


# ---- idempotency records -----------------------------------------------------------------------


async def record_for(conn: AsyncConnection, unit_id: int, kind: str, dossier: str) -> Any:
    """The record of this dossier code with its shipment's code, or None."""
    r = intake_records.c
    query = (
        select(r.id, r.fingerprint, r.shipment_id, r.pin_sealed, r.created_at, shipments.c.code)
        .select_from(intake_records.outerjoin(shipments, shipments.c.id == r.shipment_id))
        .where(r.unit_id == unit_id, r.kind == kind, r.dossier_code == dossier)
    )
    return (await conn.execute(query)).first()


async def claim(conn: AsyncConnection, values: dict[str, Any]) -> int | None:
    """Insert the record unless (unit, kind, dossier code) has one: its id, or None when taken.

    INSERT … ON CONFLICT DO NOTHING: on PostgreSQL a second transaction claiming the same
    code waits on the unique index until the first commits (then finds it taken) or rolls
    back (then claims it); on SQLite the single writer serializes them."""
    r = intake_records.c
    ins = (pg_insert if conn.dialect.name == "postgresql" else sqlite_insert)(intake_records)
    stmt = (
        ins.values(**values)
        .on_conflict_do_nothing(index_elements=[r.unit_id, r.kind, r.dossier_code])
        .returning(r.id)
    )
    got = await conn.scalar(stmt)
    return None if got is None else int(got)


async def set_shipment(
    conn: AsyncConnection, record_id: int, shipment_id: int, pin_sealed: bytes | None
) -> None:
    await conn.execute(
        update(intake_records)
        .where(intake_records.c.id == record_id)
        .values(shipment_id=shipment_id, pin_sealed=pin_sealed)
    )


async def forget_sealed_pins(conn: AsyncConnection, before: datetime) -> None:
    """Sealed PINs older than the replay window are emptied (a partial index finds them)."""
    r = intake_records.c
    await conn.execute(
        update(intake_records).where(r.pin_sealed.is_not(None), r.created_at < before).values(pin_sealed=None)
    )


async def registered_by_hand(
    conn: AsyncConnection, unit_id: int, kind: str, dossiers: list[str]
) -> dict[str, str]:
    """{dossier code: shipment code} of the unit's shipments of that kind with these dossier
    codes (registered at the counter, without an intake record)."""
    s = shipments.c
    out: dict[str, str] = {}
    for i in range(0, len(dossiers), 500):
        chunk = dossiers[i : i + 500]
        query = select(s.dossier_ref, s.code).where(
            s.unit_id == unit_id, s.kind == kind, s.dossier_ref.in_(chunk), s.state != "cancelled"
        )
        for row in (await conn.execute(query)).all():
            out.setdefault(row.dossier_ref, row.code)
    return out


async def records_for(conn: AsyncConnection, unit_id: int, kind: str, dossiers: list[str]) -> dict[str, Any]:
    """{dossier code: record with its shipment code} for these codes."""
    r = intake_records.c
    out: dict[str, Any] = {}
    for i in range(0, len(dossiers), 500):
        chunk = dossiers[i : i + 500]
        query = (
            select(r.dossier_code, r.fingerprint, shipments.c.code)
            .select_from(intake_records.outerjoin(shipments, shipments.c.id == r.shipment_id))
            .where(r.unit_id == unit_id, r.kind == kind, r.dossier_code.in_(chunk))
        )
        for row in (await conn.execute(query)).all():
            out[row.dossier_code] = row
    return out


async def drop_record(conn: AsyncConnection, record_id: int) -> None:
    await conn.execute(delete(intake_records).where(intake_records.c.id == record_id))
