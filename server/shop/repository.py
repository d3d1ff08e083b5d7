"""All SQL of the one-stop shop's area: procedures, registers and their rows, scoring rules,
and the register matched to shipments by dossier code."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, delete, distinct, exists, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from ..db.models import (
    procedures,
    register_imports,
    register_rows,
    scoring_rules,
    shipments,
    unit_provinces,
    units,
)

INSERT_CHUNK = 5_000  # rows per executemany call


async def unit_by_code(conn: AsyncConnection, code: str) -> Any:
    return (
        await conn.execute(
            select(units.c.id, units.c.code, units.c.name, units.c.kind).where(units.c.code == code)
        )
    ).first()


async def unit_by_id(conn: AsyncConnection, unit_id: int) -> Any:
    return (
        await conn.execute(
            select(units.c.id, units.c.code, units.c.name, units.c.kind).where(units.c.id == unit_id)
        )
    ).first()


# ---- procedures ------------------------------------------------------------------------------


async def procedures_of(conn: AsyncConnection, unit_id: int) -> list[Any]:
    query = (
        select(procedures)
        .where(procedures.c.unit_id == unit_id)
        .order_by(procedures.c.field, procedures.c.code)
    )
    return list((await conn.execute(query)).all())


async def procedure(conn: AsyncConnection, unit_id: int, code: str) -> Any:
    query = select(procedures).where(procedures.c.unit_id == unit_id, procedures.c.code == code)
    return (await conn.execute(query)).first()


async def procedure_codes(conn: AsyncConnection, unit_id: int) -> dict[str, str]:
    """code -> field of the unit's catalogue."""
    query = select(procedures.c.code, procedures.c.field).where(procedures.c.unit_id == unit_id)
    return {r.code: r.field for r in (await conn.execute(query)).all()}


async def replace_procedures(conn: AsyncConnection, unit_id: int, rows: list[dict[str, Any]]) -> None:
    await conn.execute(delete(procedures).where(procedures.c.unit_id == unit_id))
    for i in range(0, len(rows), INSERT_CHUNK):
        await conn.execute(insert(procedures), rows[i : i + INSERT_CHUNK])


async def upsert_procedure(conn: AsyncConnection, unit_id: int, row: dict[str, Any]) -> bool:
    """True when it was new."""
    found = await conn.execute(
        update(procedures)
        .where(procedures.c.unit_id == unit_id, procedures.c.code == row["code"])
        .values(**row)
    )
    if found.rowcount:
        return False
    await conn.execute(insert(procedures).values(unit_id=unit_id, **row))
    return True


async def delete_procedure(conn: AsyncConnection, unit_id: int, code: str) -> int:
    result = await conn.execute(
        delete(procedures).where(procedures.c.unit_id == unit_id, procedures.c.code == code)
    )
    return int(result.rowcount or 0)


# ---- registers -------------------------------------------------------------------------------


async def imports_of(conn: AsyncConnection, unit_id: int) -> list[Any]:
    query = (
        select(register_imports)
        .where(register_imports.c.unit_id == unit_id)
        .order_by(register_imports.c.period_start.desc())
    )
    return list((await conn.execute(query)).all())


async def overlapping_imports(conn: AsyncConnection, unit_id: int, start: date, end: date) -> list[Any]:
    query = select(register_imports).where(
        register_imports.c.unit_id == unit_id,
        register_imports.c.period_start <= end,
        register_imports.c.period_end >= start,
    )
    return list((await conn.execute(query)).all())


async def replace_register(
    conn: AsyncConnection,
    unit_id: int,
    start: date,
    end: date,
    meta: dict[str, Any],
    rows: list[dict[str, Any]],
) -> bool:
    """Drop the unit's register of exactly this period (if any) and write this one, in the
    caller's one transaction. True when one was replaced."""
    old = (
        await conn.execute(
            select(register_imports.c.id).where(
                register_imports.c.unit_id == unit_id,
                register_imports.c.period_start == start,
                register_imports.c.period_end == end,
            )
        )
    ).scalar()
    if old is not None:
        await conn.execute(delete(register_rows).where(register_rows.c.import_id == old))
        await conn.execute(delete(register_imports).where(register_imports.c.id == old))
    new_id = (
        await conn.execute(
            insert(register_imports)
            .values(unit_id=unit_id, period_start=start, period_end=end, rows=len(rows), **meta)
            .returning(register_imports.c.id)
        )
    ).scalar_one()
    for i in range(0, len(rows), INSERT_CHUNK):
        chunk = [{**r, "import_id": new_id} for r in rows[i : i + INSERT_CHUNK]]
        await conn.execute(insert(register_rows), chunk)
    return old is not None


async def imports_within(conn: AsyncConnection, unit_ids: list[int], start: date, end: date) -> list[Any]:
    """The registers whose period lies inside [start, end]."""
    query = select(register_imports).where(
        register_imports.c.unit_id.in_(unit_ids),
        register_imports.c.period_start >= start,
        register_imports.c.period_end <= end,
    )
    return list((await conn.execute(query)).all())


async def register_counts(conn: AsyncConnection, import_ids: list[int], unit_id: int) -> Any:
    """All dossiers, those received by post, those returned by post, and the catalogue's
    procedures with a dossier received or returned by post."""
    r = register_rows.c
    by_post = or_(r.received_channel == "post", r.returned_channel == "post")
    one = func.count()
    total = (await conn.execute(select(one).where(r.import_id.in_(import_ids)))).scalar_one()
    received = (
        await conn.execute(select(one).where(r.import_id.in_(import_ids), r.received_channel == "post"))
    ).scalar_one()
    returned = (
        await conn.execute(select(one).where(r.import_id.in_(import_ids), r.returned_channel == "post"))
    ).scalar_one()
    in_catalogue = exists().where(procedures.c.unit_id == unit_id, procedures.c.code == r.procedure_code)
    with_post = (
        await conn.execute(
            select(func.count(distinct(r.procedure_code))).where(
                r.import_id.in_(import_ids), by_post, in_catalogue
            )
        )
    ).scalar_one()
    catalogue = (
        await conn.execute(select(one).select_from(procedures).where(procedures.c.unit_id == unit_id))
    ).scalar_one()
    return {
        "total": int(total),
        "received_by_post": int(received),
        "returned_by_post": int(returned),
        "procedures_with_post": int(with_post),
        "procedures": int(catalogue),
    }


async def post_rows_without_shipment(
    conn: AsyncConnection, import_ids: list[int], unit_id: int, limit: int
) -> tuple[int, list[Any]]:
    """Register rows saying "by post" that no HoSo shipment of the unit answers: received by
    post with no submission addressed to the unit, returned by post with no result it registered."""
    r, s = register_rows.c, shipments.c
    no_submission = ~exists().where(
        s.dest_unit_id == unit_id, s.dossier_ref == r.dossier_code, s.kind == "submission"
    )
    no_result = ~exists().where(s.unit_id == unit_id, s.dossier_ref == r.dossier_code, s.kind == "result")
    cond = and_(
        r.import_id.in_(import_ids),
        or_(
            and_(r.received_channel == "post", no_submission),
            and_(r.returned_channel == "post", no_result),
        ),
    )
    count = (await conn.execute(select(func.count()).where(cond))).scalar_one()
    query = (
        select(r.line, r.dossier_code, r.procedure_code, r.received_channel, r.returned_channel)
        .where(cond)
        .order_by(r.line)
        .limit(limit)
    )
    return int(count), list((await conn.execute(query)).all())


async def delivered_not_in_register(
    conn: AsyncConnection,
    import_ids: list[int],
    unit_id: int,
    start: datetime,
    end: datetime,
    limit: int,
) -> tuple[int, list[Any]]:
    """HoSo shipments delivered in the period (closed in [start, end)) for the unit whose dossier
    the register does not show by post: a submission delivered to it that the register says was
    received otherwise, a result it sent home that the register says was returned otherwise, or
    one the register does not list at all."""
    r, s = register_rows.c, shipments.c
    said_received = exists().where(
        r.import_id.in_(import_ids), r.dossier_code == s.dossier_ref, r.received_channel == "post"
    )
    said_returned = exists().where(
        r.import_id.in_(import_ids), r.dossier_code == s.dossier_ref, r.returned_channel == "post"
    )
    cond = and_(
        s.state == "delivered",
        s.closed_at >= start,
        s.closed_at < end,
        or_(
            and_(s.kind == "submission", s.dest_unit_id == unit_id, ~said_received),
            and_(s.kind == "result", s.unit_id == unit_id, ~said_returned),
        ),
    )
    count = (await conn.execute(select(func.count()).select_from(shipments).where(cond))).scalar_one()
    received = (
        select(r.received_channel)
        .where(r.import_id.in_(import_ids), r.dossier_code == s.dossier_ref)
        .limit(1)
        .scalar_subquery()
    )
    returned = (
        select(r.returned_channel)
        .where(r.import_id.in_(import_ids), r.dossier_code == s.dossier_ref)
        .limit(1)
        .scalar_subquery()
    )
    query = (
        select(
            s.code,
            s.kind,
            s.dossier_ref,
            s.closed_at,
            received.label("register_received"),
            returned.label("register_returned"),
        )
        .where(cond)
        .order_by(s.closed_at, s.id)
        .limit(limit)
    )
    return int(count), list((await conn.execute(query)).all())


# ---- provinces and scoring rules ---------------------------------------------------------------


async def province_of(conn: AsyncConnection, unit_id: int) -> str | None:
    query = select(unit_provinces.c.province).where(unit_provinces.c.unit_id == unit_id)
    return (await conn.execute(query)).scalar()


async def provinces_of(conn: AsyncConnection, unit_ids: list[int]) -> dict[int, str]:
    query = select(unit_provinces).where(unit_provinces.c.unit_id.in_(unit_ids))
    return {r.unit_id: r.province for r in (await conn.execute(query)).all()}


async def set_province(conn: AsyncConnection, unit_id: int, province: str) -> None:
    await conn.execute(delete(unit_provinces).where(unit_provinces.c.unit_id == unit_id))
    await conn.execute(insert(unit_provinces).values(unit_id=unit_id, province=province))


async def replace_rules(
    conn: AsyncConnection, province: str, effective_from: date, rows: list[dict[str, Any]]
) -> None:
    await conn.execute(
        delete(scoring_rules).where(
            scoring_rules.c.province == province, scoring_rules.c.effective_from == effective_from
        )
    )
    if rows:
        await conn.execute(
            insert(scoring_rules),
            [{**r, "province": province, "effective_from": effective_from} for r in rows],
        )


async def rules_in_force(conn: AsyncConnection, province: str, on: date) -> list[Any]:
    """The province's rule set with the latest `effective_from` on or before `on`."""
    since = (
        await conn.execute(
            select(func.max(scoring_rules.c.effective_from)).where(
                scoring_rules.c.province == province, scoring_rules.c.effective_from <= on
            )
        )
    ).scalar()
    if since is None:
        return []
    query = (
        select(scoring_rules)
        .where(scoring_rules.c.province == province, scoring_rules.c.effective_from == since)
        .order_by(scoring_rules.c.criterion, scoring_rules.c.threshold_bp.desc())
    )
    return list((await conn.execute(query)).all())


async def all_rules(conn: AsyncConnection) -> list[Any]:
    query = select(scoring_rules).order_by(
        scoring_rules.c.province,
        scoring_rules.c.effective_from.desc(),
        scoring_rules.c.criterion,
        scoring_rules.c.threshold_bp.desc(),
    )
    return list((await conn.execute(query)).all())
