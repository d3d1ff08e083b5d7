"""The one-stop shop's own numbers: its procedure catalogue, its dossier register for a period,
and the three administrative-reform criteria computed from them, scored by its province's rules.

Who may change what: a unit's catalogue and register are its own clerks' and dispatchers'
(and an admin's) to import or edit; any staff member may read a catalogue (the post office
registers dossiers for a shop from it); scoring rules and a unit's province are an admin's.
"""

from __future__ import annotations

import asyncio
import time as clock
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from msgspec import Struct

from shared.timeutil import utcnow

from ..auth.service import CurrentUser
from ..console import catalog
from ..db.engine import Database
from ..errors import BadRequest, Conflict, NotFoundException, PermissionDeniedException, Unprocessable
from . import files, repository
from .schemas import (
    Catalogue,
    CatalogueImported,
    ProcedureIn,
    ProcedureOut,
    RegisterImported,
    RegisterInfo,
    Registers,
    RuleOut,
    RuleSet,
    RulesIn,
)

VN = ZoneInfo("Asia/Ho_Chi_Minh")
EDITORS = frozenset({"clerk", "dispatcher"})
MAX_PERIOD_DAYS = 400
LISTED = 200  # mismatches listed per kind (all are counted)
CRITERIA = ("a", "b", "c")


# ---- whose unit ------------------------------------------------------------------------------


async def _unit(db: Database, code: str) -> Any:
    async with db.read() as conn:
        row = await repository.unit_by_code(conn, code)
    if row is None:
        raise NotFoundException(f"Không có đơn vị {code!r}. (No unit {code!r}.)")
    return row


async def editable_unit(db: Database, user: CurrentUser, code: str) -> Any:
    """The unit, if this user may change its catalogue and register: 403 otherwise."""
    unit = await _unit(db, code)
    if user.role != "admin" and not (user.role in EDITORS and user.unit_id == unit.id):
        raise PermissionDeniedException(
            f"Chỉ cán bộ của {unit.code} (hoặc quản trị) được sửa danh mục và sổ theo dõi của đơn vị. "
            f"(Only {unit.code}'s own staff or an admin may change its catalogue and register.)"
        )
    if unit.kind != "one_stop_shop":
        raise Unprocessable(
            f"{unit.code} là bưu cục, không có danh mục thủ tục. "
            f"({unit.code} is a post office; only a one-stop shop has a procedure catalogue and register.)"
        )
    return unit


# ---- the catalogue ---------------------------------------------------------------------------


def _procedure_out(r: Any) -> ProcedureOut:
    return ProcedureOut(
        code=r.code,
        name=r.name,
        field=r.field,
        by_post=bool(r.by_post),
        components=list(r.components or []),
        fee_vnd=int(r.fee_vnd),
    )


async def catalogue(db: Database, unit_code: str) -> Catalogue:
    unit = await _unit(db, unit_code)
    async with db.read() as conn:
        rows = await repository.procedures_of(conn, unit.id)
    return Catalogue(unit=unit.code, procedures=[_procedure_out(r) for r in rows])


async def procedure_for_registration(db: Database, unit_code: str, code: str) -> ProcedureOut:
    """The catalogue entry a registration picked: its name, field, components and fee."""
    unit = await _unit(db, unit_code)
    async with db.read() as conn:
        row = await repository.procedure(conn, unit.id, code)
    if row is None:
        raise Unprocessable(
            f"Thủ tục {code!r} không có trong danh mục của {unit.code}; chọn «Khác» để ghi tay. "
            f"(Procedure {code!r} is not in {unit.code}'s catalogue; pick “other” to type it.)"
        )
    return _procedure_out(row)


def parse_catalogue(body: bytes) -> list[dict[str, Any]]:
    """Every row of a catalogue file, checked; the first bad cell refuses the file."""
    cols = {c.key: c.header for c in files.CATALOGUE}
    seen: dict[str, int] = {}
    out: list[dict[str, Any]] = []
    now = utcnow()
    for line, rec in files.records(body, files.CATALOGUE):
        code = files.text_cell(rec["code"], line, cols["code"], required=True, limit=100)
        if code in seen:
            raise files.bad_cell(
                line, cols["code"], f"mã {code!r} đã có ở dòng {seen[code]} (already on line {seen[code]})."
            )
        seen[code] = line
        out.append(
            {
                "code": code,
                "name": files.text_cell(rec["name"], line, cols["name"], required=True, limit=500),
                "field": files.text_cell(rec.get("field"), line, cols["field"], required=False, limit=200),
                "by_post": files.bool_cell(rec.get("by_post"), line, cols["by_post"]),
                "components": files.components_cell(rec.get("components"), line, cols["components"]),
                "fee_vnd": files.fee_cell(rec.get("fee"), line, cols["fee"]),
                "updated_at": now,
            }
        )
    if not out:
        raise files.BadFile("Tệp chỉ có dòng tiêu đề. (The file has a header row and nothing under it.)")
    return out


async def import_catalogue(db: Database, user: CurrentUser, unit_code: str, body: bytes) -> CatalogueImported:
    """The file replaces the unit's whole catalogue, in one transaction."""
    unit = await editable_unit(db, user, unit_code)
    rows = await asyncio.to_thread(parse_catalogue, body)
    async with db.write() as conn:
        before = len(await repository.procedure_codes(conn, unit.id))
        await repository.replace_procedures(conn, unit.id, [{**r, "unit_id": unit.id} for r in rows])
    return CatalogueImported(unit=unit.code, procedures=len(rows), replaced=before)


async def save_procedure(
    db: Database, user: CurrentUser, unit_code: str, code: str, data: ProcedureIn
) -> bool:
    unit = await editable_unit(db, user, unit_code)
    code = code.strip()
    if not code or len(code) > 100:
        raise BadRequest("Mã thủ tục: 1–100 ký tự. (The procedure code takes 1–100 characters.)")
    row = {
        "code": code,
        "name": data.name.strip(),
        "field": data.field.strip(),
        "by_post": data.by_post,
        "components": [c.strip() for c in data.components if c.strip()],
        "fee_vnd": data.fee_vnd,
        "updated_at": utcnow(),
    }
    async with db.write() as conn:
        return await repository.upsert_procedure(conn, unit.id, row)


async def delete_procedure(db: Database, user: CurrentUser, unit_code: str, code: str) -> None:
    unit = await editable_unit(db, user, unit_code)
    async with db.write() as conn:
        if not await repository.delete_procedure(conn, unit.id, code):
            raise NotFoundException(f"Không có thủ tục {code!r} trong danh mục. (No procedure {code!r}.)")


# ---- the dossier register --------------------------------------------------------------------


def period(start_text: str | None, end_text: str | None) -> tuple[date, date]:
    try:
        start = date.fromisoformat((start_text or "").strip())
        end = date.fromisoformat((end_text or "").strip())
    except ValueError:
        raise BadRequest(
            "Cho kỳ của sổ: `from` và `to` là ngày, ví dụ from=2026-01-01&to=2026-09-30. "
            "(Give the register's period as dates, e.g. from=2026-01-01&to=2026-09-30.)"
        ) from None
    if start > end:
        raise BadRequest("`from` phải trước hoặc bằng `to`. (`from` must not be after `to`.)")
    if (end - start).days >= MAX_PERIOD_DAYS:
        raise BadRequest(
            f"Một kỳ dài tối đa {MAX_PERIOD_DAYS} ngày. (A period covers at most {MAX_PERIOD_DAYS} days.)"
        )
    return start, end


def parse_register(
    body: bytes, start: date, end: date, catalogue_fields: dict[str, str]
) -> list[dict[str, Any]]:
    """Every row of a register file, checked against the period and the unit's catalogue."""
    cols = {c.key: c.header for c in files.REGISTER}
    seen: dict[str, int] = {}
    out: list[dict[str, Any]] = []
    text, day, channel = files.text_cell, files.date_cell, files.channel_cell
    for line, rec in files.records(body, files.REGISTER):
        dossier = text(rec["dossier_code"], line, cols["dossier_code"], required=True, limit=100)
        if dossier in seen:
            raise files.bad_cell(
                line,
                cols["dossier_code"],
                f"mã hồ sơ {dossier!r} đã có ở dòng {seen[dossier]} (already on line {seen[dossier]}).",
            )
        seen[dossier] = line
        proc = text(rec["procedure_code"], line, cols["procedure_code"], required=True, limit=100)
        if proc not in catalogue_fields:
            raise files.bad_cell(
                line,
                cols["procedure_code"],
                f"thủ tục {proc!r} không có trong danh mục của đơn vị; nhập danh mục trước "
                "(not in the unit's catalogue: import the catalogue first).",
            )
        field = (
            text(rec.get("field"), line, cols["field"], required=False, limit=200) or catalogue_fields[proc]
        )
        received = day(rec["received_on"], line, cols["received_on"], required=True)
        assert received is not None
        if not start <= received <= end:
            raise files.bad_cell(
                line,
                cols["received_on"],
                f"ngày {received:%d/%m/%Y} nằm ngoài kỳ {start:%d/%m/%Y} – {end:%d/%m/%Y} "
                "(outside the period).",
            )
        received_channel = channel(rec["received_channel"], line, cols["received_channel"], required=True)
        returned = day(rec.get("returned_on"), line, cols["returned_on"], required=False)
        returned_channel = channel(
            rec.get("returned_channel"), line, cols["returned_channel"], required=False
        )
        if returned is not None and returned < received:
            raise files.bad_cell(
                line,
                cols["returned_on"],
                f"ngày trả {returned:%d/%m/%Y} trước ngày tiếp nhận (before the date received).",
            )
        if (returned is None) != (returned_channel is None):
            missing = cols["returned_channel"] if returned_channel is None else cols["returned_on"]
            raise files.bad_cell(
                line,
                missing,
                "ghi cả ngày trả và hình thức trả, hoặc để trống cả hai (give both or neither).",
            )
        out.append(
            {
                "line": line,
                "dossier_code": dossier,
                "procedure_code": proc,
                "field": field,
                "received_on": received,
                "received_channel": received_channel,
                "returned_on": returned,
                "returned_channel": returned_channel,
            }
        )
    if not out:
        raise files.BadFile("Tệp chỉ có dòng tiêu đề. (The file has a header row and nothing under it.)")
    return out


async def import_register(
    db: Database, user: CurrentUser, unit_code: str, start: date, end: date, body: bytes, filename: str = ""
) -> RegisterImported:
    """The register of [start, end]: replaces that period's earlier import atomically; a period
    overlapping another import (but not the same) is refused, so no dossier is counted twice."""
    began = clock.perf_counter()
    unit = await editable_unit(db, user, unit_code)
    async with db.read() as conn:
        fields = await repository.procedure_codes(conn, unit.id)
        overlapping = await repository.overlapping_imports(conn, unit.id, start, end)
    others = [o for o in overlapping if (o.period_start, o.period_end) != (start, end)]
    if others:
        o = others[0]
        raise Conflict(
            f"Kỳ {start:%d/%m/%Y} – {end:%d/%m/%Y} chồng lên sổ đã nhập {o.period_start:%d/%m/%Y} – "
            f"{o.period_end:%d/%m/%Y}; nhập lại đúng kỳ đó để thay. (The period overlaps the register "
            f"already imported for {o.period_start} – {o.period_end}; "
            "re-import that exact period to replace it.)"
        )
    if not fields:
        raise Unprocessable(
            f"{unit.code} chưa có danh mục thủ tục; nhập danh mục trước. "
            f"({unit.code} has no procedure catalogue yet: import it first.)"
        )
    rows = await asyncio.to_thread(parse_register, body, start, end, fields)
    meta = {"filename": filename[:200], "imported_by": user.id, "imported_at": utcnow()}
    async with db.write() as conn:
        replaced = await repository.replace_register(conn, unit.id, start, end, meta, rows)
    return RegisterImported(
        unit=unit.code,
        period_start=start,
        period_end=end,
        rows=len(rows),
        received_by_post=sum(1 for r in rows if r["received_channel"] == "post"),
        returned_by_post=sum(1 for r in rows if r["returned_channel"] == "post"),
        replaced=replaced,
        seconds=round(clock.perf_counter() - began, 2),
    )


async def registers(db: Database, unit_code: str) -> Registers:
    unit = await _unit(db, unit_code)
    async with db.read() as conn:
        rows = await repository.imports_of(conn, unit.id)
    return Registers(
        unit=unit.code,
        registers=[
            RegisterInfo(r.period_start, r.period_end, r.rows, r.filename, r.imported_at) for r in rows
        ],
    )


# ---- scoring rules ----------------------------------------------------------------------------


def _hundredths(text: str) -> int:
    return int(Decimal(text.replace(",", ".")) * 100)


def _shown(hundredths: int) -> str:
    return (
        f"{Decimal(hundredths) / 100:f}".rstrip("0").rstrip(".")
        if hundredths % 100
        else str(hundredths // 100)
    )


def _province(name: str) -> str:
    name = name.strip()
    if name not in catalog.province_names():
        raise Unprocessable(
            f"{name!r} không phải một trong 34 tỉnh, thành phố (từ 01/7/2025), ví dụ «Tỉnh Quảng Ninh». "
            f"({name!r} is not one of the 34 provinces.)"
        )
    return name


async def set_rules(db: Database, user: CurrentUser, province: str, data: RulesIn) -> RuleSet:
    province = _province(province)
    rows: list[dict[str, Any]] = []
    seen: set[tuple[str, int]] = set()
    for r in data.rules:
        bp = _hundredths(r.at_least_pct)
        if bp > 10_000:
            raise Unprocessable(f"Ngưỡng {r.at_least_pct} % vượt 100 %. (A threshold is at most 100 %.)")
        if (r.criterion, bp) in seen:
            raise Unprocessable(
                f"Tiêu chí {r.criterion} có hai mức ≥ {r.at_least_pct} %. (Two rules for one threshold.)"
            )
        seen.add((r.criterion, bp))
        rows.append(
            {
                "criterion": r.criterion,
                "threshold_bp": bp,
                "points_x100": _hundredths(r.points),
                "created_by": user.id,
                "created_at": utcnow(),
            }
        )
    async with db.write() as conn:
        await repository.replace_rules(conn, province, data.effective_from, rows)
    return RuleSet(
        province=province,
        effective_from=data.effective_from,
        rules=[RuleOut(r["criterion"], _shown(r["threshold_bp"]), _shown(r["points_x100"])) for r in rows],
    )


async def rule_sets(db: Database) -> list[RuleSet]:
    async with db.read() as conn:
        rows = await repository.all_rules(conn)
    sets: dict[tuple[str, date], RuleSet] = {}
    for r in rows:
        key = (r.province, r.effective_from)
        s = sets.setdefault(key, RuleSet(province=r.province, effective_from=r.effective_from, rules=[]))
        s.rules.append(RuleOut(r.criterion, _shown(r.threshold_bp), _shown(r.points_x100)))
    return list(sets.values())


async def set_province(db: Database, unit_code: str, province: str) -> str:
    unit = await _unit(db, unit_code)
    province = _province(province)
    async with db.write() as conn:
        await repository.set_province(conn, unit.id, province)
    return province


async def provinces(db: Database, unit_ids: list[int]) -> dict[int, str]:
    async with db.read() as conn:
        return await repository.provinces_of(conn, unit_ids)


# ---- the three criteria ----------------------------------------------------------------------


class Criterion(Struct):
    key: str  # a | b | c
    numerator: int
    denominator: int
    pct: float | None  # the share in per cent, to 2 places (shown; points are decided on the exact share)
    points: float | None  # None: no rule in force for the province
    rule: str  # the rule in force in words ("" when none)


class PostWithoutShipment(Struct):
    line: int
    dossier_code: str
    procedure_code: str
    received_channel: str
    returned_channel: str | None


class DeliveredNotPost(Struct):
    code: str
    kind: str
    dossier_ref: str
    delivered_at: datetime | None
    register_received: str | None  # None: the register does not list this dossier
    register_returned: str | None


class Mismatches(Struct):
    post_without_shipment: int
    post_without_shipment_rows: list[PostWithoutShipment]
    delivered_not_post: int
    delivered_not_post_rows: list[DeliveredNotPost]


class Reform(Struct):
    """The three criteria of one unit for the report's period, from its own register."""

    register: bool  # False: no register imported for the period; nothing below is computed
    periods: list[str]  # the imported registers inside the window, "2026-01-01/2026-09-30"
    covers_window: bool  # the registers cover every day of the report's window
    province: str | None
    rules_from: date | None
    criteria: list[Criterion]
    total_points: float | None
    mismatches: Mismatches | None


def _points(rules: list[Any], key: str, num: int, den: int) -> tuple[float | None, str]:
    """Points for num/den under the criterion's rules (the highest threshold reached), and the rule."""
    mine = sorted((r for r in rules if r.criterion == key), key=lambda r: -r.threshold_bp)
    if not mine:
        return None, ""
    words = "; ".join(f"≥ {_shown(r.threshold_bp)} % → {_shown(r.points_x100)}" for r in mine)
    earned = 0
    for r in mine:
        # exact: num/den >= threshold_bp/10000, in integers
        if den and num * 10_000 >= r.threshold_bp * den:
            earned = r.points_x100
            break
    else:
        if not den and mine[-1].threshold_bp == 0:
            earned = mine[-1].points_x100
    return earned / 100, f"{words}; < {_shown(mine[-1].threshold_bp)} % → 0"


def _pct2(num: int, den: int) -> float | None:
    return round(100.0 * num / den, 2) if den else None


def local_days(start: datetime, end: datetime) -> tuple[date, date]:
    """The Vietnamese days a window [start, end) covers (its last day is the one before `end`)."""
    return start.astimezone(VN).date(), (end.astimezone(VN) - timedelta(microseconds=1)).date()


async def reform(db: Database, unit: Any, start: datetime, end: datetime) -> Reform | None:
    """The criteria of one unit for the window; None for a post office (they are a shop's)."""
    if unit.kind != "one_stop_shop":
        return None
    first, last = local_days(start, end)
    async with db.read() as conn:
        imports = await repository.imports_within(conn, [unit.id], first, last)
        province = await repository.province_of(conn, unit.id)
        if not imports:
            return Reform(False, [], False, province, None, [], None, None)
        ids = [i.id for i in imports]
        counts = await repository.register_counts(conn, ids, unit.id)
        rules = await repository.rules_in_force(conn, province, last) if province else []
        p_start = min(i.period_start for i in imports)
        p_end = max(i.period_end for i in imports)
        lo = datetime.combine(p_start, time(0), VN)
        hi = datetime.combine(p_end + timedelta(days=1), time(0), VN)
        n1, rows1 = await repository.post_rows_without_shipment(conn, ids, unit.id, LISTED)
        n2, rows2 = await repository.delivered_not_in_register(conn, ids, unit.id, lo, hi, LISTED)
    days = sum((i.period_end - i.period_start).days + 1 for i in imports)
    figures = {
        "a": (counts["procedures_with_post"], counts["procedures"]),
        "b": (counts["received_by_post"], counts["total"]),
        "c": (counts["returned_by_post"], counts["total"]),
    }
    criteria = []
    for key in CRITERIA:
        num, den = figures[key]
        points, rule = _points(rules, key, num, den)
        criteria.append(Criterion(key, num, den, _pct2(num, den), points, rule))
    scored = [c.points for c in criteria if c.points is not None]
    return Reform(
        register=True,
        periods=sorted(f"{i.period_start.isoformat()}/{i.period_end.isoformat()}" for i in imports),
        covers_window=days >= (last - first).days + 1,
        province=province,
        rules_from=rules[0].effective_from if rules else None,
        criteria=criteria,
        total_points=round(sum(scored), 2) if scored else None,
        mismatches=Mismatches(
            post_without_shipment=n1,
            post_without_shipment_rows=[
                PostWithoutShipment(
                    r.line, r.dossier_code, r.procedure_code, r.received_channel, r.returned_channel
                )
                for r in rows1
            ],
            delivered_not_post=n2,
            delivered_not_post_rows=[
                DeliveredNotPost(
                    r.code, r.kind, r.dossier_ref, r.closed_at, r.register_received, r.register_returned
                )
                for r in rows2
            ],
        ),
    )


@dataclass(frozen=True, slots=True)
class ReportScope:
    unit_code: str | None


def report_scope(user: CurrentUser | None, unit_code: str | None) -> ReportScope:
    """Which unit's report this user may read: a one-stop shop's clerk its own unit's only."""
    if user is None or user.role != "clerk":
        return ReportScope(unit_code)
    if user.unit_kind != "one_stop_shop" or (unit_code and unit_code != user.unit_code):
        raise PermissionDeniedException(
            "Cán bộ Một cửa chỉ xem báo cáo của đơn vị mình. (A clerk sees only their own unit's report.)"
        )
    return ReportScope(user.unit_code)
