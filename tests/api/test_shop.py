"""The one-stop shop's numbers (issue 15): its catalogue and dossier register imported, the three
criteria with numerator and denominator scored by the province's rules, the register matched to
HoSo's shipments, and the report as CSV and XLSX. Fixture files are made here, in the test."""

from __future__ import annotations

import csv
import io
import re
from datetime import date, timedelta

from openpyxl import Workbook, load_workbook

from server.reports.service import VN
from shared.timeutil import utcnow
from tests.api.conftest import table_counts
from tests.api.test_console import console_login
from tests.api.test_reports import CLERK_TO_SHOP, _journey
from tests.conftest import PASSWORD

CAT_HEADER = [
    "Mã thủ tục",
    "Tên thủ tục",
    "Lĩnh vực",
    "Qua bưu chính",
    "Thành phần hồ sơ",
    "Phí, lệ phí (đồng)",
]
REG_HEADER = [
    "Mã hồ sơ",
    "Mã thủ tục",
    "Lĩnh vực",
    "Ngày tiếp nhận",
    "Hình thức tiếp nhận",
    "Ngày trả kết quả",
    "Hình thức trả kết quả",
]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def csv_bytes(rows: list[list[object]], bom: bool = True, delimiter: str = ",") -> bytes:
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator="\r\n").writerows(rows)
    return (("\ufeff" if bom else "") + out.getvalue()).encode()


def xlsx_bytes(rows: list[list[object]]) -> bytes:
    book = Workbook(write_only=True)
    sheet = book.create_sheet("Danh mục")
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def proc_code(i: int) -> str:
    return f"1.{i:06d}.000.00.00.H40"


async def put_file(api, path: str, user: str, body: bytes, content_type: str = "text/csv"):
    return await api.call("PUT", path, user, content=body, headers={"Content-Type": content_type})


async def make_ha_long(api) -> None:
    r = await api.call(
        "POST",
        "/api/v1/units",
        "admin",
        json={"code": "TTHCC-HL", "name": "Trung tâm Hành chính công TP Hạ Long", "kind": "one_stop_shop"},
    )
    assert r.status_code in (200, 201), r.text
    r = await api.call(
        "POST",
        "/api/v1/users",
        "admin",
        json={"username": "hlclerk", "password": PASSWORD, "role": "clerk", "unit": "TTHCC-HL"},
    )
    assert r.status_code in (200, 201), r.text


async def test_ha_long_figures_end_to_end(api):
    """299 procedures (29 with postal traffic), 44,865 dossiers, none received by post and 120
    results returned by post: 29/299, 0/44,865 and 120/44,865 = 0.27 %, all scored 0 points."""
    await make_ha_long(api)
    fields = ["Tư pháp - Hộ tịch", "Đất đai", "Xây dựng", "Đăng ký kinh doanh"]
    catalogue = [CAT_HEADER] + [
        [
            proc_code(i),
            f"Thủ tục số {i}",
            fields[i % 4],
            "Có",
            "Tờ khai\nBản sao CCCD",
            50_000 if i % 2 else 0,
        ]
        for i in range(299)
    ]
    r = await put_file(api, "/api/v1/units/TTHCC-HL/procedures", "hlclerk", xlsx_bytes(catalogue), XLSX)
    assert r.status_code == 200, r.text
    assert r.json()["procedures"] == 299
    # 44,865 dossiers over nine months; procedures 0-28 carry the 120 returned by post
    rows: list[list[object]] = [REG_HEADER]
    start = date(2026, 1, 1)
    for n in range(44_865):
        received = start + timedelta(days=n % 273)
        proc = n % 29 if n < 120 else n % 299
        back = "Bưu chính" if n < 120 else ("Trực tiếp" if n % 3 else "Trực tuyến")
        rows.append(
            [
                f"000.00.31.H40-{n:06d}",
                proc_code(proc),
                "",
                received.strftime("%d/%m/%Y"),
                "Trực tuyến" if n % 5 == 0 else "Trực tiếp",
                (received + timedelta(days=5)).isoformat(),
                back,
            ]
        )
    r = await put_file(
        api, "/api/v1/units/TTHCC-HL/register?from=2026-01-01&to=2026-09-30", "hlclerk", csv_bytes(rows)
    )
    assert r.status_code == 200, r.text
    assert (r.json()["rows"], r.json()["received_by_post"], r.json()["returned_by_post"]) == (44_865, 0, 120)
    r = await api.call(
        "PUT", "/api/v1/units/TTHCC-HL/province", "admin", json={"province": "Tỉnh Quảng Ninh"}
    )
    assert r.status_code == 200, r.text
    rules = {
        "effective_from": "2026-01-01",
        "rules": [
            {"criterion": "a", "at_least_pct": "20", "points": "1"},
            {"criterion": "a", "at_least_pct": "10", "points": "0.5"},
            {"criterion": "b", "at_least_pct": "1", "points": "1"},
            {"criterion": "c", "at_least_pct": "1", "points": "1"},
            {"criterion": "c", "at_least_pct": "0.5", "points": "0.5"},
        ],
    }
    r = await api.call("PUT", "/api/v1/provinces/Tỉnh Quảng Ninh/scoring", "admin", json=rules)
    assert r.status_code == 200, r.text

    r = await api.call("GET", "/api/v1/reports/summary?from=2026-01-01&to=2026-09-30", "hlclerk")
    assert r.status_code == 200, r.text
    s = r.json()
    assert s["unit"] == "TTHCC-HL" and [u["unit"] for u in s["units"]] == ["TTHCC-HL"]  # its own only
    reform = s["units"][0]["reform"]
    assert reform["register"] is True and reform["covers_window"] is True
    got = {c["key"]: (c["numerator"], c["denominator"], c["pct"], c["points"]) for c in reform["criteria"]}
    assert got == {"a": (29, 299, 9.7, 0.0), "b": (0, 44_865, 0.0, 0.0), "c": (120, 44_865, 0.27, 0.0)}
    assert reform["total_points"] == 0.0
    assert reform["province"] == "Tỉnh Quảng Ninh" and reform["rules_from"] == "2026-01-01"
    rule_c = next(c["rule"] for c in reform["criteria"] if c["key"] == "c")
    assert rule_c.startswith("≥ 1 % → 1; ≥ 0.5 % → 0.5")
    # none of those 120 is a HoSo shipment: every one is listed as a mismatch (200 listed at most)
    m = reform["mismatches"]
    assert m["post_without_shipment"] == 120 and len(m["post_without_shipment_rows"]) == 120
    assert m["post_without_shipment_rows"][0]["line"] == 2 and m["delivered_not_post"] == 0

    client = api.client
    await console_login(client, "hlclerk")
    r = await client.get("/console/reports?from=2026-01-01&to=2026-09-30")
    assert r.status_code == 200, r.text[-500:]
    block = re.search(r'<div class="reform-unit" data-unit="TTHCC-HL">.*?</table>', r.text, re.S).group(0)
    rows_shown = re.findall(r'<td class="fraction">([^<]+)</td>\s*<td class="share">([^<]+)</td>', block)
    assert rows_shown == [("29 / 299", "9,70 %"), ("0 / 44.865", "0,00 %"), ("120 / 44.865", "0,27 %")]
    assert "≥ 1 % → 1" in block and "Tỉnh Quảng Ninh, từ 01/01/2026" in block

    r = await client.get("/console/reports?from=2026-01-01&to=2026-09-30&format=xlsx")
    assert r.status_code == 200 and r.headers["content-type"] == XLSX
    book = load_workbook(io.BytesIO(r.content), read_only=True)
    assert book.sheetnames == ["Báo cáo", "Ba tiêu chí", "Đối chiếu"]
    crit = [list(row) for row in book["Ba tiêu chí"].iter_rows(values_only=True)]
    c_row = next(row for row in crit if len(row) > 2 and row[2] == "c) Kết quả trả qua BCCI")
    assert c_row[:7] == ["TTHCC-HL", "Trung tâm Hành chính công TP Hạ Long", "c) Kết quả trả qua BCCI",
                         120, 44_865, 0.27, 0]  # fmt: skip
    assert isinstance(c_row[3], int)  # numbers stay numbers in the sheet

    # another unit's clerk: refused, for this unit and for the clerk of a post office
    for user, query in (("shopclerk", "?unit=TTHCC-HL"), ("clerk", ""), ("clerk", "?unit=BC-PLEIKU")):
        r = await api.call("GET", f"/api/v1/reports/summary{query}", user)
        assert r.status_code == 403, (user, r.text)
    r = await put_file(
        api, "/api/v1/units/TTHCC-HL/register?from=2026-10-01&to=2026-10-31", "shopclerk", b"x"
    )
    assert r.status_code == 403 and "TTHCC-HL" in r.json()["detail"]


async def _gl_catalogue(api) -> None:
    rows = [CAT_HEADER, ["P1", "Đăng ký khai sinh", "Tư pháp - Hộ tịch", "Có", "Tờ khai", "0"],
            ["P2", "Cấp đổi GCN", "Đất đai", "không", "Đơn; Bản gốc GCN", "50.000"]]  # fmt: skip
    r = await put_file(
        api, "/api/v1/units/TTHCC-GL/procedures", "shopclerk", csv_bytes(rows, bom=False, delimiter=";")
    )
    assert r.status_code == 200, r.text


def _today() -> date:
    return utcnow().astimezone(VN).date()


async def test_register_matched_to_shipments_lists_both_mismatches(api):
    await _gl_catalogue(api)
    at_desk = {"counterparty": CLERK_TO_SHOP, "data": {}}
    sub = await api.create_shipment(dest_unit="TTHCC-GL", dossier_ref="HS-1")
    await _journey(api, sub, [("picked_up", 3, {}), ("delivered", 1, at_desk)])
    shipments = {}
    for ref in ("HS-2", "HS-3", "HS-6"):
        res = await api.create_shipment("result", user="shopclerk", dossier_ref=ref)
        await _journey(api, res, [("picked_up", 3, at_desk), ("delivered", 1, {})])
        shipments[ref] = res["code"]
    today = _today().isoformat()
    rows = [REG_HEADER,
            ["HS-1", "P1", "", today, "Bưu chính", "", ""],
            ["HS-2", "P1", "", today, "Trực tiếp", today, "Bưu chính"],
            ["HS-3", "P2", "", today, "Trực tuyến", today, "Trực tiếp"],
            ["HS-4", "P2", "", today, "bưu chính", "", ""],
            ["HS-5", "P1", "", today, "Trực tiếp", today, "BCCI"]]  # fmt: skip
    path = f"/api/v1/units/TTHCC-GL/register?from={today}&to={today}"
    r = await put_file(api, path, "shopclerk", csv_bytes(rows))
    assert r.status_code == 200, r.text
    r = await api.call("GET", f"/api/v1/reports/summary?from={today}&to={today}&unit=TTHCC-GL", "dispatcher")
    reform = r.json()["units"][0]["reform"]
    got = {c["key"]: (c["numerator"], c["denominator"]) for c in reform["criteria"]}
    assert got == {"a": (2, 2), "b": (2, 5), "c": (2, 5)}
    assert all(c["points"] is None and c["rule"] == "" for c in reform["criteria"])  # no province rule
    m = reform["mismatches"]
    # register says post, HoSo has no shipment: HS-4 (received), HS-5 (returned)
    assert m["post_without_shipment"] == 2
    assert [(a["line"], a["dossier_code"]) for a in m["post_without_shipment_rows"]] == [
        (5, "HS-4"),
        (6, "HS-5"),
    ]
    # HoSo delivered, register says otherwise: HS-3 (returned at the counter), HS-6 (not listed)
    assert m["delivered_not_post"] == 2
    listed = {b["dossier_ref"]: (b["code"], b["register_returned"]) for b in m["delivered_not_post_rows"]}
    assert listed == {"HS-3": (shipments["HS-3"], "counter"), "HS-6": (shipments["HS-6"], None)}

    client = api.client
    await console_login(client, "shopclerk")
    r = await client.get(f"/console/reports?from={today}&to={today}")
    assert r.status_code == 200, r.text[-300:]
    assert "Sổ ghi qua bưu chính nhưng HoSo không có bưu gửi: 2" in r.text
    assert "HoSo đã phát nhưng sổ không ghi qua bưu chính: 2" in r.text and "không có trong sổ" in r.text


async def test_bad_row_keeps_nothing_and_reimport_replaces(api, db):
    await _gl_catalogue(api)
    path = "/api/v1/units/TTHCC-GL/register?from=2026-10-01&to=2026-10-31"
    good = [REG_HEADER] + [[f"HS-{n}", "P1", "", "05/10/2026", "Trực tiếp", "", ""] for n in range(3)]
    r = await put_file(api, path, "shopclerk", csv_bytes(good))
    assert r.status_code == 200 and r.json()["replaced"] is False, r.text
    await api.login("clerk")
    before = await table_counts(db)
    cases = [
        ([*good[:3], ["HS-9", "P1", "", "31/02/2026", "Trực tiếp", "", ""]], 4, "Ngày tiếp nhận"),
        ([*good, ["HS-9", "P1", "", "05/10/2026", "bồ câu", "", ""]], 5, "Hình thức tiếp nhận"),
        ([*good, ["HS-9", "NOPE", "", "05/10/2026", "Trực tiếp", "", ""]], 5, "Mã thủ tục"),
        ([*good, ["HS-1", "P1", "", "05/10/2026", "Trực tiếp", "", ""]], 5, "Mã hồ sơ"),
        ([*good, ["HS-9", "P1", "", "05/11/2026", "Trực tiếp", "", ""]], 5, "Ngày tiếp nhận"),
        (
            [*good, ["HS-9", "P1", "", "05/10/2026", "Trực tiếp", "01/10/2026", "Bưu chính"]],
            5,
            "Ngày trả kết quả",
        ),
        (
            [*good, ["HS-9", "P1", "", "05/10/2026", "Trực tiếp", "06/10/2026", ""]],
            5,
            "Hình thức trả kết quả",
        ),
        ([["Mã hồ sơ", "Ngày tiếp nhận"], ["HS-1", "05/10/2026"]], 1, "Mã thủ tục"),
    ]
    for rows, line, column in cases:
        r = await put_file(api, path, "shopclerk", csv_bytes(rows))
        assert r.status_code == 422, (rows[-1], r.text)
        body = r.json()
        assert f"Dòng {line}" in body["detail"] and column in body["detail"], body
        assert body["extra"] == {"line": line, "column": column}, body
        assert "Không dữ liệu nào của tệp được lưu" in body["detail"] or line == 1
    for body, status, words in (
        (b"", 422, "trống"),
        (b"\xff\xfe\x00bad", 422, "UTF-8"),
        (b"PK\x03\x04garbage", 422, "XLSX"),
    ):
        r = await put_file(api, path, "shopclerk", body)
        assert r.status_code == status and words in r.json()["detail"], r.text
    for query, status in (
        ("?from=2026-10-31&to=2026-10-01", 400),
        ("?from=x&to=y", 400),
        ("?from=2026-10-15&to=2026-11-15", 409),
    ):
        r = await put_file(api, f"/api/v1/units/TTHCC-GL/register{query}", "shopclerk", csv_bytes(good))
        assert r.status_code == status, (query, r.text)
    r = await put_file(
        api, "/api/v1/units/BC-PLEIKU/register?from=2026-10-01&to=2026-10-31", "clerk", csv_bytes(good)
    )
    assert r.status_code == 422 and "bưu cục" in r.json()["detail"]
    assert await table_counts(db) == before  # nothing of any refused file was kept

    r = await put_file(api, path, "shopclerk", csv_bytes(good[:2]))  # the same period again: one row now
    assert r.status_code == 200 and r.json()["replaced"] is True and r.json()["rows"] == 1, r.text
    r = await api.call("GET", "/api/v1/units/TTHCC-GL/registers", "auditor")
    assert [(x["period_start"], x["rows"]) for x in r.json()["registers"]] == [("2026-10-01", 1)]
    r = await api.call(
        "GET", "/api/v1/reports/summary?from=2026-10-01&to=2026-10-31&unit=TTHCC-GL", "auditor"
    )
    crit = {c["key"]: (c["numerator"], c["denominator"]) for c in r.json()["units"][0]["reform"]["criteria"]}
    assert crit["b"] == (0, 1)
    # a window without a register says so instead of showing a share of HoSo's own records
    r = await api.call(
        "GET", "/api/v1/reports/summary?from=2026-08-01&to=2026-08-31&unit=TTHCC-GL", "auditor"
    )
    reform = r.json()["units"][0]["reform"]
    assert reform["register"] is False and reform["criteria"] == []


async def test_catalogue_edit_and_registration_from_it(api):
    await _gl_catalogue(api)
    r = await api.call("GET", "/api/v1/units/TTHCC-GL/procedures", "clerk")  # the post office reads it
    p2 = next(p for p in r.json()["procedures"] if p["code"] == "P2")
    assert p2 == {"code": "P2", "name": "Cấp đổi GCN", "field": "Đất đai", "by_post": False,
                  "components": ["Đơn", "Bản gốc GCN"], "fee_vnd": 50_000}  # fmt: skip
    edit = {
        "name": "Cấp đổi Giấy chứng nhận",
        "field": "Đất đai",
        "components": ["Đơn đề nghị"],
        "fee_vnd": 70_000,
    }
    r = await api.call("PUT", "/api/v1/units/TTHCC-GL/procedures/P2", "shopclerk", json=edit)
    assert r.status_code == 200 and r.json()["fee_vnd"] == 70_000, r.text
    r = await api.call("PUT", "/api/v1/units/TTHCC-GL/procedures/P2", "clerk", json=edit)
    assert r.status_code == 403  # another unit's clerk
    r = await api.call(
        "PUT", "/api/v1/units/TTHCC-GL/procedures/P2", "shopclerk", json={**edit, "fee_vnd": 1.5}
    )
    assert r.status_code == 400

    client = api.client
    await console_login(client, "clerk")
    page = await client.get("/console/register")
    token = re.search(r'name="_csrf_token" value="([^"]+)"', page.text).group(1)
    form = {"_csrf_token": token, "kind": "submission", "dest_unit": "TTHCC-GL", "procedure_code": "P2",
            "procedure": "typed", "field": "", "components": "typed", "fee_vnd": "1",
            "due_date": (_today() + timedelta(days=5)).isoformat(), "sender_name": "Nguyễn Thị Bích",
            "recipient_name": "TTHCC Gia Lai"}  # fmt: skip
    r = await client.post("/console/register", data=form)
    assert r.status_code == 200 and 'id="new-code"' in r.text, r.text[-800:]
    code = re.search(r'href="/console/shipments/(\d{13})"', r.text).group(1)
    s = await api.shipment(code)
    assert (s["procedure"], s["field"], s["fee_vnd"], s["components"]) == (
        "Cấp đổi Giấy chứng nhận", "Đất đai", 70_000, ["Đơn đề nghị"])  # fmt: skip
    r = await client.post("/console/register", data={**form, "procedure_code": "NOPE"})
    assert r.status_code == 422 and "không có trong danh mục" in r.text

    # the console's own import and edit forms
    client.cookies.clear()
    await console_login(client, "shopclerk")
    page = await client.get("/console/shop")
    assert page.status_code == 200 and 'data-procedure="P1"' in page.text
    token = re.search(r'name="_csrf_token" value="([^"]+)"', page.text).group(1)
    rows = [CAT_HEADER, ["P9", "Thủ tục chín", "Cư trú", "Có", "", "20000"]]
    r = await client.post("/console/shop/catalogue", data={"_csrf_token": token, "unit": "TTHCC-GL"},
                          files={"file": ("dm.xlsx", xlsx_bytes(rows), XLSX)})  # fmt: skip
    assert r.status_code == 200 and 'id="done"' in r.text and 'data-procedure="P9"' in r.text, r.text[-600:]
    assert 'data-procedure="P1"' not in r.text  # an import replaces the catalogue
    bad = csv_bytes([CAT_HEADER, ["P1", "A", "", "Có", "", "12,5 đ"], ["P1", "B", "", "", "", ""]])
    r = await client.post("/console/shop/catalogue", data={"_csrf_token": token, "unit": "TTHCC-GL"},
                          files={"file": ("dm.csv", bad, "text/csv")})  # fmt: skip
    assert r.status_code == 422 and "Dòng 2" in r.text and "Phí, lệ phí (đồng)" in r.text
    edit_form = {"_csrf_token": token, "unit": "TTHCC-GL", "code": "P10", "name": "Mười", "field": "Cư trú",
                 "fee_vnd": "10.000", "components": "A\nB", "by_post": "1"}  # fmt: skip
    r = await client.post("/console/shop/procedure", data=edit_form)
    assert r.status_code == 200 and 'data-procedure="P10"' in r.text
    r = await api.call("GET", "/api/v1/units/TTHCC-GL/procedures", "auditor")
    assert {p["code"]: p["fee_vnd"] for p in r.json()["procedures"]} == {"P9": 20_000, "P10": 10_000}


async def test_csv_content_type_written_once_and_scoring_refusals(api):
    r = await api.call("GET", "/api/v1/reports/summary?format=csv", "dispatcher")
    assert r.headers["content-type"] == "text/csv; charset=utf-8"
    assert r.content.startswith(b"\xef\xbb\xbf") and b"\r\n" in r.content
    # a field typed with a control character and one that looks like a formula: text in the sheet
    await api.create_shipment(field="Đất\x0bđai", procedure="x")
    await api.create_shipment(field='=HYPERLINK("http://x","y")')
    r = await api.call("GET", "/api/v1/reports/summary?format=xlsx", "dispatcher")
    assert r.status_code == 200 and r.headers["content-type"] == XLSX
    sheet = load_workbook(io.BytesIO(r.content))["Báo cáo"]
    cells = {c.value: c.data_type for row in sheet.iter_rows() for c in row if isinstance(c.value, str)}
    assert "Đấtđai" in cells and cells['=HYPERLINK("http://x","y")'] == "s"
    ok = {"effective_from": "2026-01-01", "rules": [{"criterion": "a", "at_least_pct": "10", "points": "1"}]}
    for province, body, status in (
        ("Tỉnh Quảng Ninh", ok, 403),
        ("Nowhere", ok, 422),
        ("Tỉnh Quảng Ninh", {**ok, "rules": [{"criterion": "d", "at_least_pct": "1", "points": "1"}]}, 400),
        (
            "Tỉnh Quảng Ninh",
            {**ok, "rules": [{"criterion": "a", "at_least_pct": "0.333", "points": "1"}]},
            400,
        ),
        ("Tỉnh Quảng Ninh", {**ok, "rules": [{"criterion": "a", "at_least_pct": "101", "points": "1"}]}, 422),
    ):
        who = "dispatcher" if status == 403 else "admin"
        r = await api.call("PUT", f"/api/v1/provinces/{province}/scoring", who, json=body)
        assert r.status_code == status, (province, body, r.text)
