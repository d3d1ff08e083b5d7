"""Fees collected on behalf (thu hộ): what each courier owes, the cashier's signed remittances,
the per-courier per-day sheet and the monthly statement per agency (bảng kê thu hộ).

Money is int VND throughout. The cashier is a clerk of the courier's own post office (or an
admin): a courier of another unit is not found for them (404).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import msgspec
from sqlalchemy.exc import IntegrityError

from shared import codes
from shared.i18n import vnd
from shared.jcs import canonicalize
from shared.timeutil import as_utc, to_wire, utcnow

from ..auth.service import CurrentUser
from ..console.service import VN
from ..custody import attachments as attachment_store
from ..db.engine import Database
from ..errors import BadRequest, Conflict, NotFoundException, PermissionDeniedException, Unprocessable
from ..shipments import repository as shipments_repo
from . import repository
from .repository import Fee

CASHIERS = ("clerk", "admin")
VIEWERS = ("clerk", "dispatcher", "admin", "auditor")
SEE_ALL = ("admin", "auditor")
LATE_AFTER = timedelta(days=1)  # cash still with the courier this long after pickup is flagged
MAX_ITEMS = 500
MAX_REASON = 500
MAX_AMOUNT = 10**12
MAX_DAYS = 62
SIGNATURE_LIMITS = {"image/png": 2 * 1024 * 1024, "application/json": 1024 * 1024}
RECORD_VERSION = 1


def local_day(dt: datetime) -> date:
    return as_utc(dt).astimezone(VN).date()


def day_start(day: date) -> datetime:
    return datetime.combine(day, time(0), VN)


def _shown(full_name: str | None, username: str) -> str:
    return full_name or username


# ---- who may act for which courier --------------------------------------------------------


async def _courier(conn: Any, user: CurrentUser, courier_id: int) -> Any:
    row = await repository.courier(conn, courier_id)
    if row is None or (user.role not in SEE_ALL and (user.unit_id is None or row.unit_id != user.unit_id)):
        raise NotFoundException(f"No courier {courier_id} at your unit.")
    return row


async def _couriers_seen(conn: Any, user: CurrentUser) -> list[Any]:
    if user.role in SEE_ALL:
        return await repository.couriers_of(conn, None)
    if user.unit_id is None:
        return []
    return await repository.couriers_of(conn, user.unit_id)


# ---- what a courier owes ------------------------------------------------------------------


@dataclass(slots=True)
class Owed:
    code: str
    grouped: str
    dossier_ref: str
    procedure: str
    fee_vnd: int
    collected_at: datetime
    late: bool

    @property
    def fee(self) -> str:
        return vnd(self.fee_vnd)

    @property
    def collected(self) -> str:
        return as_utc(self.collected_at).astimezone(VN).strftime("%d/%m/%Y %H:%M")


@dataclass(slots=True)
class CourierOwes:
    courier_id: int
    courier_name: str
    unit_id: int | None
    items: list[Owed]

    @property
    def total_vnd(self) -> int:
        return sum(i.fee_vnd for i in self.items)


async def owed(db: Database, user: CurrentUser, courier_id: int) -> CourierOwes:
    """The fees the courier collected that no remittance covers yet, oldest first."""
    now = utcnow()
    async with db.read() as conn:
        c = await _courier(conn, user, courier_id)
        fees = await repository.fees_of_couriers(conn, [courier_id], now + timedelta(days=1))
    items = [
        Owed(
            f.code,
            codes.group(f.code),
            f.dossier_ref,
            f.procedure,
            f.fee_vnd,
            f.collected_at,
            f.collected_at < now - LATE_AFTER,
        )
        for f in fees
        if f.remittance_id is None
    ]
    return CourierOwes(c.id, _shown(c.full_name, c.username), c.unit_id, items)


# ---- the remittance -------------------------------------------------------------------------


class RemittanceRecord(msgspec.Struct, frozen=True, kw_only=True):
    """The record the hash covers: canonical JSON (RFC 8785) of exactly these fields."""

    v: int
    type: str
    id: str
    unit: str
    cashier: str
    courier: str
    items: list[dict[str, Any]]  # [{"shipment": code, "fee_vnd": int}], by code
    expected_vnd: int
    amount_vnd: int
    difference_vnd: int
    reason: str
    signature: str  # sha256 of the courier's signature PNG
    strokes: str | None  # sha256 of the strokes JSON
    recorded_at: str


def record_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def _normalize_codes(texts: Iterable[str]) -> list[str]:
    out: list[str] = []
    for text in texts:
        try:
            code = codes.normalize(text)
        except codes.InvalidCode as exc:
            raise BadRequest(f"{text!r}: {exc}") from None
        if code in out:
            raise BadRequest(f"Shipment {codes.group(code)} is listed twice.")
        out.append(code)
    if not out:
        raise BadRequest("Tick at least one shipment whose fee the courier hands over.")
    if len(out) > MAX_ITEMS:
        raise BadRequest(f"At most {MAX_ITEMS} shipments per remittance; this one lists {len(out)}.")
    return out


def check_amount(amount_vnd: int, expected: int, reason: str) -> None:
    if amount_vnd != expected and not reason:
        diff = amount_vnd - expected
        raise Unprocessable(
            f"The amount {vnd(amount_vnd)} is {vnd(abs(diff))} {'short of' if diff < 0 else 'more than'} "
            f"the fees of these shipments ({vnd(expected)}): correct the amount, or give the reason "
            "for the difference (difference_reason)."
        )


async def remit(
    db: Database,
    root: Path,
    user: CurrentUser,
    courier_id: int,
    ship_texts: list[str],
    amount_vnd: int,
    reason: str,
    signature_png: bytes,
    strokes_json: bytes,
) -> int:
    """Record a signed remittance; returns its id. Changes nothing when any rule fails."""
    if user.role not in CASHIERS:
        raise PermissionDeniedException("Only a clerk (the post office's cashier) records remittances.")
    wanted = _normalize_codes(ship_texts)
    if type(amount_vnd) is not int or not 0 <= amount_vnd <= MAX_AMOUNT:
        raise BadRequest("amount_vnd is the cash counted, a whole number of đồng from 0.")
    reason = reason.strip()
    if len(reason) > MAX_REASON:
        raise BadRequest(f"The difference reason is at most {MAX_REASON} characters.")
    async with db.read() as conn:
        c = await _courier(conn, user, courier_id)
        if c.unit_id is None:
            raise Unprocessable("This courier belongs to no post office; give them a unit first.")
        unit = await repository.unit_by_id(conn, c.unit_id)
        fees = {f.code: f for f in await repository.fees_of_shipments(conn, courier_id, wanted)}
    strangers = [x for x in wanted if x not in fees]
    if strangers:
        raise Unprocessable(
            "No fee collected by this courier for: "
            f"{', '.join(codes.group(x) for x in strangers[:5])}. Only shipments whose fee this "
            "courier recorded at pickup can be remitted."
        )
    done = [fees[x] for x in wanted if fees[x].remittance_id is not None]
    if done:
        raise Conflict(
            f"Already remitted: {', '.join(f'{codes.group(f.code)} (#{f.remittance_id})' for f in done[:5])}."
        )
    expected = sum(fees[x].fee_vnd for x in wanted)
    check_amount(amount_vnd, expected, reason)
    attachment_store.check_content("image/png", signature_png, SIGNATURE_LIMITS)
    attachment_store._check_image(signature_png, "image/png")
    sig = hashlib.sha256(signature_png).hexdigest()
    strokes = None
    if strokes_json:
        attachment_store.check_content("application/json", strokes_json, SIGNATURE_LIMITS)
        strokes = hashlib.sha256(strokes_json).hexdigest()
    now = utcnow()
    record = RemittanceRecord(
        v=RECORD_VERSION,
        type="remittance",
        id=str(uuid.uuid4()),
        unit=unit.code,
        cashier=user.actor,
        courier=f"courier:{courier_id}",
        items=[{"shipment": x, "fee_vnd": fees[x].fee_vnd} for x in sorted(wanted)],
        expected_vnd=expected,
        amount_vnd=amount_vnd,
        difference_vnd=amount_vnd - expected,
        reason=reason,
        signature=sig,
        strokes=strokes,
        recorded_at=to_wire(now),
    )
    body = canonicalize(msgspec.to_builtins(record))
    await attachment_store.store(db, root, sig, "image/png", signature_png, user.id)
    if strokes is not None:
        await attachment_store.store(db, root, strokes, "application/json", strokes_json, user.id)
    try:
        async with db.write() as conn:
            rid = await repository.insert_remittance(
                conn,
                {
                    "record_id": record.id,
                    "unit_id": c.unit_id,
                    "cashier_id": user.id,
                    "courier_id": courier_id,
                    "expected_vnd": expected,
                    "amount_vnd": amount_vnd,
                    "reason": reason,
                    "signature": sig,
                    "strokes": strokes,
                    "hash": record_hash(body),
                    "body": body.decode(),
                    "created_at": now,
                },
                [{"shipment_id": fees[x].shipment_id, "fee_vnd": fees[x].fee_vnd} for x in wanted],
            )
    except IntegrityError:
        raise Conflict(
            "One of these shipments was remitted a moment ago by another request; reload the list "
            "and record the rest."
        ) from None
    db.changed("remittance", wanted)
    return rid


@dataclass(slots=True)
class RemittanceView:
    id: int
    unit_code: str
    cashier_name: str
    courier_id: int
    courier_name: str
    expected_vnd: int
    amount_vnd: int
    reason: str
    signature: str
    hash: str
    body: str
    created_at: datetime
    record: dict[str, Any]

    @property
    def difference_vnd(self) -> int:
        return self.amount_vnd - self.expected_vnd

    @property
    def flag(self) -> str | None:
        d = self.difference_vnd
        return None if d == 0 else ("short" if d < 0 else "over")

    @property
    def created(self) -> str:
        return as_utc(self.created_at).astimezone(VN).strftime("%d/%m/%Y %H:%M")


async def remittance(db: Database, user: CurrentUser, remittance_id: int) -> RemittanceView:
    async with db.read() as conn:
        r = await repository.remittance(conn, remittance_id)
        if r is None or (user.role not in SEE_ALL and r.unit_id != user.unit_id):
            raise NotFoundException(f"No remittance {remittance_id} at your unit.")
    return RemittanceView(
        id=r.id,
        unit_code=r.unit_code,
        cashier_name=_shown(r.cashier_name, r.cashier_login),
        courier_id=r.courier_id,
        courier_name=_shown(r.courier_name, r.courier_login),
        expected_vnd=r.expected_vnd,
        amount_vnd=r.amount_vnd,
        reason=r.reason,
        signature=r.signature,
        hash=r.hash,
        body=r.body,
        created_at=r.created_at,
        record=msgspec.json.decode(r.body),
    )


# ---- the per-courier, per-day sheet -------------------------------------------------------


@dataclass(slots=True)
class DayRow:
    courier_id: int
    courier_name: str
    day: date
    collected_n: int
    collected_vnd: int
    remitted_vnd: int
    difference_vnd: int  # of the day's remittances: amount − fees covered
    outstanding_n: int
    outstanding_vnd: int  # still with the courier at the end of the day (or now, for today)
    late_n: int  # of those, collected more than LATE_AFTER before
    flags: list[str] = field(default_factory=list)  # short | over | late


@dataclass(slots=True)
class DaySheet:
    start: date
    end: date  # inclusive
    rows: list[DayRow]
    couriers: list[Any]


def parse_day(text: str | None, name: str, default: date) -> date:
    if not text:
        return default
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise BadRequest(f"{name}: give a date like 2026-12-01.") from None


def sheet_rows(
    couriers: list[Any], fees: list[Fee], remits: list[Any], start: date, end: date, now: datetime
) -> list[DayRow]:
    """Pure: the rows from the fees and remittances read."""
    rows: list[DayRow] = []
    for c in couriers:
        mine = [f for f in fees if f.courier_id == c.id]
        paid = [r for r in remits if r.courier_id == c.id]
        day = end
        while day >= start:
            until = min(day_start(day + timedelta(days=1)), now)
            collected = [f for f in mine if local_day(f.collected_at) == day]
            today_paid = [r for r in paid if local_day(r.created_at) == day]
            out = [
                f
                for f in mine
                if f.collected_at < until and (f.remitted_at is None or f.remitted_at >= until)
            ]
            late = [f for f in out if f.collected_at < until - LATE_AFTER]
            diff = sum(r.amount_vnd - r.expected_vnd for r in today_paid)
            if collected or today_paid or out:
                flags = []
                if any(r.amount_vnd < r.expected_vnd for r in today_paid):
                    flags.append("short")
                if any(r.amount_vnd > r.expected_vnd for r in today_paid):
                    flags.append("over")
                if late:
                    flags.append("late")
                rows.append(
                    DayRow(
                        courier_id=c.id,
                        courier_name=_shown(c.full_name, c.username),
                        day=day,
                        collected_n=len(collected),
                        collected_vnd=sum(f.fee_vnd for f in collected),
                        remitted_vnd=sum(r.amount_vnd for r in today_paid),
                        difference_vnd=diff,
                        outstanding_n=len(out),
                        outstanding_vnd=sum(f.fee_vnd for f in out),
                        late_n=len(late),
                        flags=flags,
                    )
                )
            day -= timedelta(days=1)
    rows.sort(key=lambda r: (-r.day.toordinal(), r.courier_name))
    return rows


async def day_sheet(
    db: Database, user: CurrentUser, start_text: str | None, end_text: str | None
) -> DaySheet:
    now = utcnow()
    today = local_day(now)
    end = parse_day(end_text, "to", today)
    start = parse_day(start_text, "from", end - timedelta(days=6))
    if start > end:
        raise BadRequest("`from` must not be after `to`.")
    if (end - start).days >= MAX_DAYS:
        raise BadRequest(f"The sheet covers at most {MAX_DAYS} days; ask for a shorter range.")
    until = min(day_start(end + timedelta(days=1)), now + timedelta(days=1))
    async with db.read() as conn:
        couriers = await _couriers_seen(conn, user)
        ids = [c.id for c in couriers]
        fees = await repository.fees_of_couriers(conn, ids, until, since=day_start(start))
        remits = await repository.remittances_of(conn, ids, until, since=day_start(start))
    return DaySheet(start, end, sheet_rows(couriers, fees, remits, start, end, now), couriers)


# ---- the monthly statement per agency (bảng kê thu hộ) --------------------------------------


@dataclass(slots=True)
class StatementLine:
    n: int
    code: str
    dossier_ref: str
    procedure: str
    courier: str
    collected_on: date
    fee_vnd: int
    remittance_id: int | None
    remitted_on: date | None
    at_counter: bool = False  # taken at the counter by a clerk (issue 18), not by a courier


def _collector(f: Fee, couriers: dict[int, str], clerks: dict[str, Any]) -> str:
    if f.at_counter:
        clerk = clerks.get(f"clerk:{f.courier_id}")
        return f"Tại quầy: {clerk.shown if clerk else f'clerk:{f.courier_id}'}"
    return couriers.get(f.courier_id, f"courier:{f.courier_id}")


@dataclass(slots=True)
class Statement:
    agency_code: str
    agency_name: str
    month: str  # YYYY-MM
    lines: list[StatementLine]
    made_at: datetime

    @property
    def total_vnd(self) -> int:
        return sum(x.fee_vnd for x in self.lines)

    @property
    def remitted_vnd(self) -> int:
        # a fee taken at the counter went into the post office's till there and then
        return sum(x.fee_vnd for x in self.lines if x.remittance_id is not None or x.at_counter)

    @property
    def outstanding_vnd(self) -> int:
        return self.total_vnd - self.remitted_vnd

    @property
    def month_vn(self) -> str:
        y, m = self.month.split("-")
        return f"{m}/{y}"


def parse_month(text: str | None, now: datetime) -> tuple[str, datetime, datetime]:
    if not text:
        d = local_day(now)
        text = f"{d.year:04d}-{d.month:02d}"
    try:
        first = date.fromisoformat(f"{text}-01")
    except ValueError:
        raise BadRequest(f"month: give a month like 2026-12; got {text!r}.") from None
    nxt = date(first.year + (first.month == 12), first.month % 12 + 1, 1)
    return f"{first.year:04d}-{first.month:02d}", day_start(first), day_start(nxt)


async def statement(
    db: Database, user: CurrentUser, agency_code: str | None, month_text: str | None
) -> Statement:
    now = utcnow()
    month, start, end = parse_month(month_text, now)
    if not agency_code:
        raise BadRequest("agency: choose the one-stop shop the statement is for.")
    async with db.read() as conn:
        agency = await repository.unit_by_code(conn, agency_code)
        if agency is None or agency.kind != "one_stop_shop":
            raise NotFoundException(f"No agency (one-stop shop) {agency_code!r}.")
        if user.role not in SEE_ALL and user.unit_id is None:
            raise PermissionDeniedException("Only staff of a unit see its statements.")
        if user.role not in SEE_ALL and await _is_other_agency(conn, user, agency.id):
            raise PermissionDeniedException("A one-stop shop's staff see their own agency's statement only.")
        fees = await repository.fees_for_agency(conn, user, agency.id, start, end)
        names = {c.id: _shown(c.full_name, c.username) for c in await repository.couriers_of(conn, None)}
        clerks = await shipments_repo.user_names(
            conn, [f"clerk:{f.courier_id}" for f in fees if f.at_counter]
        )
    lines = [
        StatementLine(
            n=i,
            code=f.code,
            dossier_ref=f.dossier_ref,
            procedure=f.procedure,
            courier=_collector(f, names, clerks),
            collected_on=local_day(f.collected_at),
            fee_vnd=f.fee_vnd,
            remittance_id=f.remittance_id,
            # a fee taken at the counter is in the post office's till the same day
            remitted_on=local_day(f.remitted_at or f.collected_at) if f.remitted_at or f.at_counter else None,
            at_counter=f.at_counter,
        )
        for i, f in enumerate(fees, start=1)
    ]
    return Statement(agency.code, agency.name, month, lines, now)


async def _is_other_agency(conn: Any, user: CurrentUser, agency_id: int) -> bool:
    mine = await repository.unit_by_id(conn, user.unit_id) if user.unit_id is not None else None
    return mine is not None and mine.kind == "one_stop_shop" and mine.id != agency_id


async def agencies(db: Database) -> list[Any]:
    async with db.read() as conn:
        return await repository.agencies(conn)
