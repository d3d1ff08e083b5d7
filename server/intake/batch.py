"""Batch intake from a CSV or XLSX file in the console, for a shop without an integration.

The file is read by the shop's own reader (`server/shop/files.py`, the register import's),
with Vietnamese headers. Every row is checked before anything is written; a bad cell refuses
the whole file with its line and column. The rows are then registered in one transaction,
each claiming its (unit, kind, dossier code) as an API request does, so a row whose dossier
code is already registered (by API, by an earlier file or at the counter) is reported with
its shipment and not registered again.
"""

from __future__ import annotations

import asyncio
import csv
import io
import re
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from functools import lru_cache
from typing import Any

import msgspec
from litestar.exceptions import HTTPException

from shared import codes
from shared.timeutil import utcnow

from ..auth.service import CurrentUser
from ..console import catalog
from ..console.service import VN
from ..db.engine import Database
from ..errors import Unprocessable
from ..keys import ServerKeys
from ..shipments import repository as shipments_repo
from ..shipments import service as shipments
from ..shipments.schemas import ShipmentCreate
from ..shop import files
from ..shop.files import Column, bad_cell
from . import repository
from .service import REPLAY_PIN_HOURS, _seal, fingerprint

VN_DUE = time(17, 0)  # a due date without a time: the end of the working day
MAX_ROWS = 1_000  # each new row hashes its PIN with argon2 (two threads): bench/intake.py

COLUMNS = (
    Column("dossier_code", "Mã hồ sơ", ("ma ho so", "dossier code")),
    Column("kind", "Loại bưu gửi", ("loai buu gui", "loai", "kind"), required=False),
    Column("procedure", "Tên thủ tục", ("ten thu tuc", "thu tuc", "procedure"), required=False),
    Column("field", "Lĩnh vực", ("linh vuc", "field"), required=False),
    Column("name", "Họ tên công dân", ("ho ten cong dan", "ho ten", "ho va ten", "cong dan", "name")),
    Column("phone", "Điện thoại", ("dien thoai", "so dien thoai", "sdt", "phone"), required=False),
    Column("address", "Địa chỉ", ("dia chi", "address")),
    Column("commune", "Xã/phường", ("xa phuong", "xa", "phuong", "commune"), required=False),
    Column(
        "province", "Tỉnh/thành phố", ("tinh thanh pho", "tinh thanh", "tinh", "province"), required=False
    ),
    Column(
        "id_last4", "4 số cuối CCCD", ("4 so cuoi cccd", "so cuoi cccd", "cccd", "id last4"), required=False
    ),
    Column("due", "Hạn trả", ("han tra", "han tra ket qua", "due", "due date")),
    Column(
        "fee", "Phí thu hộ (đồng)", ("phi thu ho dong", "phi thu ho", "phi", "fee", "fee vnd"), required=False
    ),
    Column("parent", "Mã bưu gửi hồ sơ", ("ma buu gui ho so", "ma buu gui", "parent"), required=False),
    Column("components", "Thành phần hồ sơ", ("thanh phan ho so", "components"), required=False),
)
HEADER = {c.key: c.header for c in COLUMNS}
_KINDS = {
    "ket qua": "result",
    "tra ket qua": "result",
    "result": "result",
    "ho so": "submission",
    "nhan ho so": "submission",
    "thu gom ho so": "submission",
    "submission": "submission",
}
_PHONE = re.compile(r"^\+?[0-9 .-]{6,20}$")
EXAMPLE = {
    "dossier_code": "000.00.12.H21-261202-0001",
    "kind": "Kết quả",
    "procedure": "Cấp đổi Giấy chứng nhận quyền sử dụng đất",
    "field": "Đất đai",
    "name": "Nguyễn Thị Bích",
    "phone": "0905123456",
    "address": "12 Trần Hưng Đạo",
    "commune": "Phường Pleiku",
    "province": "Tỉnh Gia Lai",
    "id_last4": "4821",
    "due": "10/12/2026",
    "fee": "0",
    "parent": "",
    "components": "Giấy chứng nhận quyền sử dụng đất",
}


def template(kind: str) -> tuple[bytes, str, str]:
    """The empty template with one example row: (bytes, media type, file name)."""
    headers = [c.header for c in COLUMNS]
    example = [EXAMPLE[c.key] for c in COLUMNS]
    if kind == "csv":
        out = io.StringIO(newline="")
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(headers)
        writer.writerow(example)
        return ("\ufeff" + out.getvalue()).encode(), "text/csv; charset=utf-8", "mau-tiep-nhan.csv"
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "Tiếp nhận"
    sheet.append(headers)
    sheet.append(example)
    for i, h in enumerate(headers, start=1):
        sheet.column_dimensions[sheet.cell(1, i).column_letter].width = max(12, len(h) + 4)
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue(), files.XLSX_TYPE, "mau-tiep-nhan.xlsx"


@lru_cache(maxsize=1)
def _places() -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """Folded name → name, for provinces and for each province's communes."""
    provinces = {files.fold(p["name"]): p["name"] for p in catalog.provinces()}
    for p in catalog.provinces():  # "Gia Lai" as well as "Tỉnh Gia Lai"
        provinces.setdefault(files.fold(p["sort"]), p["name"])
    communes = {p["name"]: {files.fold(c): c for c in p["communes"]} for p in catalog.provinces()}
    return provinces, communes


@dataclass(slots=True)
class Row:
    line: int
    dossier: str
    data: ShipmentCreate


def _text(rec: dict[str, Any], key: str, line: int, *, required: bool = False, limit: int = 200) -> str:
    return files.text_cell(rec.get(key), line, HEADER[key], required=required, limit=limit)


def _row(line: int, rec: dict[str, Any], unit: CurrentUser, unit_name: str) -> Row:
    dossier = _text(rec, "dossier_code", line, required=True, limit=100)
    kind_text = _text(rec, "kind", line) or "Kết quả"
    kind = _KINDS.get(files.fold(kind_text))
    if kind is None:
        raise bad_cell(
            line, HEADER["kind"], f"{kind_text!r}: ghi «Kết quả» hoặc «Hồ sơ» (write result or dossier)."
        )
    phone = _text(rec, "phone", line, limit=20)
    if phone and not _PHONE.match(phone):
        raise bad_cell(line, HEADER["phone"], f"{phone!r} không phải số điện thoại (not a phone number).")
    last4 = _text(rec, "id_last4", line, limit=4)
    if last4 and not re.fullmatch(r"[0-9]{4}", last4):
        raise bad_cell(line, HEADER["id_last4"], "ghi đúng 4 chữ số (write exactly 4 digits).")
    provinces, communes = _places()
    province = _text(rec, "province", line)
    if province:
        if files.fold(province) not in provinces:
            raise bad_cell(
                line,
                HEADER["province"],
                f"{province!r} không phải một trong 34 tỉnh, thành phố (not one of the 34 provinces).",
            )
        province = provinces[files.fold(province)]
    commune = _text(rec, "commune", line)
    if commune:
        known = communes.get(province, {}) if province else {}
        if files.fold(commune) not in known:
            raise bad_cell(
                line,
                HEADER["commune"],
                f"{commune!r} không phải xã, phường của {province or 'tỉnh nào (ghi cột Tỉnh/thành phố)'} "
                "(not a commune or ward of that province).",
            )
        commune = known[files.fold(commune)]
    citizen = {
        "name": _text(rec, "name", line, required=True),
        "phone": phone or None,
        "address": _text(rec, "address", line, required=True, limit=300),
        "commune": commune,
        "province": province,
        "id_last4": last4 or None,
    }
    citizen = {k: v for k, v in citizen.items() if v}
    shop = {"name": unit_name}
    due_day = files.date_cell(rec.get("due"), line, HEADER["due"], required=True)
    assert due_day is not None
    due_at = datetime.combine(due_day, VN_DUE, VN)
    if due_at < utcnow() - timedelta(days=1):
        raise bad_cell(line, HEADER["due"], f"{due_day:%d/%m/%Y} đã qua (the due date has passed).")
    parent = _text(rec, "parent", line, limit=20)
    if parent:
        try:
            parent = codes.normalize(parent)
        except codes.InvalidCode as exc:
            raise bad_cell(line, HEADER["parent"], f"{parent!r}: {exc}") from None
    body: dict[str, Any] = {
        "kind": kind,
        "due_at": due_at,
        "dossier_ref": dossier,
        "procedure": _text(rec, "procedure", line, limit=300),
        "field": _text(rec, "field", line),
        "fee_vnd": files.fee_cell(rec.get("fee"), line, HEADER["fee"]),
        "components": files.components_cell(rec.get("components"), line, HEADER["components"]),
    }
    if parent:
        body["parent"] = parent
    if not parent or kind == "submission":
        body["sender"], body["recipient"] = (shop, citizen) if kind == "result" else (citizen, shop)
    try:
        return Row(line, dossier, msgspec.convert(body, ShipmentCreate))
    except msgspec.ValidationError as exc:
        raise bad_cell(line, HEADER["dossier_code"], f"dòng không hợp lệ ({exc}).") from None


@dataclass(slots=True)
class Registered:
    line: int
    dossier: str
    code: str
    pin: str | None


@dataclass(slots=True)
class Known:
    line: int
    dossier: str
    code: str
    same: bool  # False: registered before with other details (or at the counter)


@dataclass(slots=True)
class BatchResult:
    rows: int
    registered: list[Registered] = field(default_factory=list)
    known: list[Known] = field(default_factory=list)


async def _prepare(db: Database, r: Row) -> shipments.Prepared | HTTPException:
    try:
        return await shipments.prepare(db, r.data)
    except HTTPException as exc:
        return exc


async def import_file(
    db: Database, keys: ServerKeys, base_url: str, user: CurrentUser, body: bytes
) -> BatchResult:
    """Register every row of the file, or none (a 422 naming the first bad line and column)."""
    if user.unit_id is None:
        raise Unprocessable(
            "Chỉ nhân viên của một đơn vị mới nhập được tệp. (Only a unit's staff can import.)"
        )
    async with db.read() as conn:
        unit_name = await shipments_repo.unit_name(conn, user.unit_id)
    rows: list[Row] = []
    seen: dict[tuple[str, str], int] = {}
    for line, rec in files.records(body, COLUMNS):
        if len(rows) >= MAX_ROWS:
            raise files.BadFile(
                f"Quá {MAX_ROWS:,} dòng: chia nhỏ tệp. (More than {MAX_ROWS:,} rows: split the file.)"
            )
        row = _row(line, rec, user, unit_name.rsplit(" (", 1)[0] or (user.unit_code or ""))
        key = (row.data.kind, row.dossier)
        if key in seen:
            raise bad_cell(
                line,
                HEADER["dossier_code"],
                f"mã hồ sơ {row.dossier!r} đã có ở dòng {seen[key]} (already on line {seen[key]}).",
            )
        seen[key] = line
        rows.append(row)
    if not rows:
        raise files.BadFile("Tệp không có dòng nào dưới tiêu đề. (The file has no rows under its header.)")
    result = BatchResult(rows=len(rows))
    known: dict[tuple[str, str], Known] = {}
    async with db.read() as conn:
        for kind in ("result", "submission"):
            wanted = [r.dossier for r in rows if r.data.kind == kind]
            if not wanted:
                continue
            records = await repository.records_for(conn, user.unit_id, kind, wanted)
            by_hand = await repository.registered_by_hand(conn, user.unit_id, kind, wanted)
            for r in rows:
                if r.data.kind != kind:
                    continue
                if r.dossier in records and records[r.dossier].code:
                    same = records[r.dossier].fingerprint == fingerprint(r.data)
                    known[(kind, r.dossier)] = Known(r.line, r.dossier, records[r.dossier].code, same)
                elif r.dossier in by_hand:
                    known[(kind, r.dossier)] = Known(r.line, r.dossier, by_hand[r.dossier], False)
    fresh = [r for r in rows if (r.data.kind, r.dossier) not in known]
    # parents, destinations and the new PINs' argon2 hashes, before the transaction: a few rows
    # at once, so both hashing threads work (server/auth/passwords.py caps them at two)
    prepared: list[tuple[Row, shipments.Prepared]] = []
    for i in range(0, len(fresh), 16):
        chunk = fresh[i : i + 16]
        outcomes = await asyncio.gather(*(_prepare(db, r) for r in chunk))
        for r, outcome in zip(chunk, outcomes, strict=True):
            if isinstance(outcome, HTTPException):
                column = HEADER["parent"] if "parent" in str(outcome.detail) else HEADER["dossier_code"]
                raise bad_cell(r.line, column, str(outcome.detail))
            prepared.append((r, outcome))
    now = utcnow()
    made: list[str] = []
    async with db.write() as conn:  # all rows or none
        for r, p in prepared:
            record_id = await repository.claim(
                conn,
                {
                    "unit_id": user.unit_id,
                    "kind": r.data.kind,
                    "dossier_code": r.dossier,
                    "fingerprint": fingerprint(r.data),
                    "shipment_id": None,
                    "source": "file",
                    "api_key_id": None,
                    "pin_sealed": None,
                    "created_at": now,
                },
            )
            if record_id is None:  # registered by API while the file was being checked
                rec = await repository.record_for(conn, user.unit_id, r.data.kind, r.dossier)
                known[(r.data.kind, r.dossier)] = Known(r.line, r.dossier, rec.code or "", False)
                continue
            created, ship_id = await shipments.insert_prepared(conn, db, keys, base_url, user, p, now)
            await repository.set_shipment(conn, record_id, ship_id, _seal(keys, created.pin))
            result.registered.append(Registered(r.line, r.dossier, created.code, created.pin))
            made.append(created.code)
        await repository.forget_sealed_pins(conn, now - timedelta(hours=REPLAY_PIN_HOURS))
    if made:
        db.changed("registered", made)
    result.known = sorted(known.values(), key=lambda k: k.line)
    return result
