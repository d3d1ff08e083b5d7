"""The console's side of intake (issue 17 items 4 and 5): the citizen's receipt with the PIN
right after registering and reprinted without it, and batch registration from CSV/XLSX."""

from __future__ import annotations

import io
import re
from datetime import timedelta

import pypdfium2 as pdfium
from openpyxl import load_workbook
from sqlalchemy import func, select

from server.db.models import intake_records, shipments
from server.intake import service as intake
from shared import codes
from shared.timeutil import utcnow
from tests.api.conftest import table_counts
from tests.api.test_console import console_login, csrf
from tests.api.test_console_clerk import FORM


def _text(pdf: bytes) -> str:
    raw = "".join(p.get_textpage().get_text_range() for p in pdfium.PdfDocument(pdf))
    return " ".join(raw.split())


async def _register(client) -> tuple[str, str, str]:
    await console_login(client, "clerk")
    page = await client.get("/console/register")
    due = (utcnow() + timedelta(days=5)).date().isoformat()
    r = await client.post(
        "/console/register", data={**FORM, "dest_unit": "", "due_date": due, "_csrf_token": csrf(page.text)}
    )
    assert r.status_code == 200
    code = re.search(r'href="/console/shipments/(\d{13})/label.pdf"', r.text).group(1)
    pin = re.search(r'id="pin">(\d{6})<', r.text).group(1)
    return code, pin, r.text


async def test_receipt_with_the_pin_after_registering_and_reprinted_without(api):
    client = api.client
    code, pin, page = await _register(client)
    assert f'action="/console/shipments/{code}/receipt.pdf"' in page and f'name="pin" value="{pin}"' in page
    assert f'href="/console/shipments/{code}/receipt.pdf" id="receipt-reprint"' in page
    r = await client.post(
        f"/console/shipments/{code}/receipt.pdf", data={"pin": pin, "_csrf_token": csrf(page)}
    )
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    text = _text(r.content)
    assert f"Mã PIN tra cứu và xác nhận: {pin}" in text and "PHIẾU GỬI HỒ SƠ" in text
    # later: the shipment page links the reprint, which has no PIN
    detail = await client.get(f"/console/shipments/{code}")
    assert f'href="/console/shipments/{code}/receipt.pdf" id="receipt-reprint"' in detail.text
    r = await client.get(f"/console/shipments/{code}/receipt.pdf")
    assert r.status_code == 200
    again = _text(r.content)
    assert pin not in again and "Bản in lại: không có mã PIN" in again and code[:4] in again
    # a wrong PIN is a try against the PIN's limit, and prints nothing
    wrong = f"{(int(pin) + 1) % 10**6:06d}"
    r = await client.post(
        f"/console/shipments/{code}/receipt.pdf", data={"pin": wrong, "_csrf_token": csrf(page)}
    )
    assert r.status_code == 400 and "application/pdf" not in r.headers["content-type"]
    r = await client.post(
        f"/console/shipments/{code}/receipt.pdf", data={"pin": "12", "_csrf_token": csrf(page)}
    )
    assert r.status_code == 400 and "6 chữ số" in r.text
    # another unit's clerk may not print it
    client.cookies.clear()
    await console_login(client, "shopclerk")
    assert (await client.get(f"/console/shipments/{code}/receipt.pdf")).status_code == 403


# ---- batch intake ----------------------------------------------------------------------------

HEADER = (
    "Mã hồ sơ,Loại bưu gửi,Tên thủ tục,Lĩnh vực,Họ tên công dân,Điện thoại,Địa chỉ,Xã/phường,"
    "Tỉnh/thành phố,4 số cuối CCCD,Hạn trả,Phí thu hộ (đồng)\r\n"
)


def _csv(*rows: str) -> bytes:
    return ("\ufeff" + HEADER + "".join(r + "\r\n" for r in rows)).encode()


def _due() -> str:
    return (utcnow() + timedelta(days=7)).strftime("%d/%m/%Y")


def _row(dossier: str, name: str = "Nguyễn Thị Bích", **over: str) -> str:
    cells = {
        "kind": "Kết quả",
        "procedure": "Cấp đổi Giấy chứng nhận quyền sử dụng đất",
        "field": "Đất đai",
        "phone": "0905123456",
        "address": "12 Trần Hưng Đạo",
        "commune": "Phường Pleiku",
        "province": "Gia Lai",
        "id_last4": "4821",
        "due": _due(),
        "fee": "0",
        **over,
    }
    order = (
        "kind",
        "procedure",
        "field",
        "phone",
        "address",
        "commune",
        "province",
        "id_last4",
        "due",
        "fee",
    )
    return ",".join(
        [dossier, cells["kind"], cells["procedure"], cells["field"], name] + [cells[k] for k in order[3:]]
    )


KNOWN_GOOD_CODE = codes.new_code()  # a right check digit, and no shipment has it
# one digit changed: the Damm check digit catches every single-digit error
BAD_CODE = KNOWN_GOOD_CODE[:-1] + str((int(KNOWN_GOOD_CODE[-1]) + 1) % 10)


def _csv_with_parent(parent: str) -> bytes:
    head = HEADER.replace("\r\n", ",Mã bưu gửi hồ sơ\r\n")
    return ("\ufeff" + head + _row("HS-P") + f",{parent}\r\n").encode()


async def _upload(client, body: bytes, name: str = "hom-nay.csv"):
    page = await client.get("/console/intake")
    assert page.status_code == 200
    return await client.post(
        "/console/intake", files={"file": (name, body)}, data={"_csrf_token": csrf(page.text)}
    )


async def _counts(db) -> tuple[int, int]:
    async with db.read() as conn:
        return (
            int(await conn.scalar(select(func.count()).select_from(shipments))),
            int(await conn.scalar(select(func.count()).select_from(intake_records))),
        )


async def test_batch_good_file_then_again_then_with_new_rows(api, db):
    client = api.client
    await console_login(client, "shopclerk")
    body = _csv(_row("HS-001"), _row("HS-002", "Trần Văn Nam"), _row("HS-003", kind="Hồ sơ"))
    r = await _upload(client, body)
    assert r.status_code == 200, r.text[-600:]
    assert "Đã đăng ký 3 bưu gửi" in r.text
    codes = re.findall(r'<a href="/console/shipments/(\d{13})">', r.text)
    pins = re.findall(r'name="pin" value="(\d{6})"', r.text)
    assert len(set(codes)) == 3 and len(pins) == 3
    assert await _counts(db) == (3, 3)
    detail = await api.shipment(codes[0])
    assert detail["unit"] == "TTHCC-GL" and detail["recipient"]["province"] == "Tỉnh Gia Lai"
    assert detail["sender"]["name"] == "Trung tâm Phục vụ hành chính công tỉnh Gia Lai"
    assert detail["kind"] == "result" and detail["due_at"].startswith(
        (utcnow() + timedelta(days=7)).strftime("%Y-%m-%d")
    )
    sub = next(s for s in [await api.shipment(c) for c in codes] if s["dossier_ref"] == "HS-003")
    assert sub["kind"] == "submission" and sub["sender"]["name"] == "Nguyễn Thị Bích"
    # the same file again: nothing new, each row reported with its shipment
    r = await _upload(client, body)
    assert r.status_code == 200 and "Đã đăng ký 0 bưu gửi" in r.text
    assert r.text.count("cùng nội dung") == 3 and await _counts(db) == (3, 3)
    # one new row, one changed row, and one registered at the counter in between
    await api.create_shipment("result", user="shopclerk", dossier_ref="HS-COUNTER")
    r = await _upload(
        client,
        _csv(_row("HS-001"), _row("HS-002", "Trần Văn Nam", fee="5000"), _row("HS-004"), _row("HS-COUNTER")),
    )
    assert r.status_code == 200 and "Đã đăng ký 1 bưu gửi" in r.text
    assert r.text.count("khác nội dung") == 2 and await _counts(db) == (5, 4)
    # an API key of the unit repeating a row's dossier code gets the file's shipment
    key = (await intake.create_key(db, "TTHCC-GL", "thử")).key
    row = await client.get(f"/api/v1/shipments/{codes[0]}", headers={"X-API-Key": key})
    assert row.status_code == 200


async def test_batch_xlsx_and_the_templates(api, db):
    client = api.client
    await console_login(client, "shopclerk")
    r = await client.get("/console/intake/template.xlsx")
    assert r.status_code == 200 and "attachment" in r.headers["content-disposition"]
    book = load_workbook(io.BytesIO(r.content))
    header = [c.value for c in book.active[1]]
    assert header[0] == "Mã hồ sơ" and "Hạn trả" in header and "Họ tên công dân" in header
    csv_template = await client.get("/console/intake/template.csv")
    assert csv_template.content.startswith("\ufeffMã hồ sơ".encode())
    # the template itself, its example row given a due date ahead, imports as one shipment
    sheet = book.active
    due_col = header.index("Hạn trả") + 1
    sheet.cell(2, due_col).value = utcnow().date() + timedelta(days=3)  # a real date cell
    sheet.append(
        [
            "HS-X2",
            "Kết quả",
            None,
            None,
            "Lê Văn Tám",
            905123457,
            "3 Lê Lợi",
            None,
            None,
            None,
            utcnow().date() + timedelta(days=3),
        ]
    )
    out = io.BytesIO()
    book.save(out)
    r = await _upload(client, out.getvalue(), "mau.xlsx")
    assert r.status_code == 200, r.text[-600:]
    assert "Đã đăng ký 2 bưu gửi" in r.text and await _counts(db) == (2, 2)


async def test_batch_bad_files_keep_nothing(api, db):
    client = api.client
    await console_login(client, "shopclerk")
    before = await table_counts(db)
    bad = {
        "bad date": (_csv(_row("HS-1"), _row("HS-2", due="31/02/2026")), 3, "Hạn trả"),
        "past date": (_csv(_row("HS-1", due="01/01/2020")), 2, "Hạn trả"),
        "no name": (_csv(_row("HS-1"), _row("HS-2", name="")), 3, "Họ tên công dân"),
        "bad province": (_csv(_row("HS-1", province="Atlantis")), 2, "Tỉnh/thành phố"),
        "bad commune": (_csv(_row("HS-1", commune="Phường Không Có")), 2, "Xã/phường"),
        "bad phone": (_csv(_row("HS-1", phone="gọi tôi")), 2, "Điện thoại"),
        "bad kind": (_csv(_row("HS-1", kind="Bưu phẩm")), 2, "Loại bưu gửi"),
        "fraction fee": (_csv(_row("HS-1", fee='"12,5"')), 2, "Phí thu hộ (đồng)"),
        "twice in file": (_csv(_row("HS-1"), _row("HS-1")), 3, "Mã hồ sơ"),
        "no dossier code": (_csv(_row("")), 2, "Mã hồ sơ"),
        "bad parent": (_csv_with_parent(BAD_CODE), 2, "Mã bưu gửi hồ sơ"),
        "unknown parent": (_csv_with_parent(KNOWN_GOOD_CODE), 2, "Mã bưu gửi hồ sơ"),
    }
    for what, (body, line, column) in bad.items():
        r = await _upload(client, body)
        assert r.status_code == 422, (what, r.status_code, r.text[-400:])
        assert f"Dòng {line}, cột «{column}»" in r.text, (what, r.text[-600:])
        assert "Không dữ liệu nào của tệp được lưu" in r.text, what
    for what, body, status, words in (
        ("no header", "Tên,Tuổi\r\nA,1\r\n".encode(), 422, "thiếu cột"),
        ("empty", b"", 422, "Tệp trống"),
        (
            "latin-1",
            HEADER.encode("cp1258", errors="replace") + "Hồ".encode("cp1258", errors="replace") + b"\xe0\r\n",
            422,
            "UTF-8",
        ),
        ("not xlsx", b"PK\x03\x04garbage", 422, "XLSX"),
        ("only a header", _csv(), 422, "không có dòng nào"),
    ):
        r = await _upload(client, body)
        assert r.status_code == status and words in r.text, (what, r.status_code, r.text[-400:])
    r = await client.post(
        "/console/intake", data={"_csrf_token": csrf((await client.get("/console/intake")).text)}
    )
    assert r.status_code == 400 and "Chọn một tệp" in r.text
    assert await table_counts(db) == before


async def test_batch_is_for_a_units_staff(api):
    client = api.client
    await console_login(client, "admin")
    assert (await client.get("/console/intake")).status_code == 403
