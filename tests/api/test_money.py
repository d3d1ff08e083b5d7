"""Fees collected on behalf (thu hộ): what couriers owe, signed remittances, the day sheet,
the monthly statement per agency as PDF and XLSX (issue 15 item 4)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import re
from datetime import UTC, datetime, timedelta

import pypdfium2 as pdfium
from openpyxl import load_workbook

from server.money.service import local_day
from shared.jcs import canonicalize
from shared.timeutil import to_wire
from tests.api.conftest import PNG_1PX, table_counts
from tests.api.test_console import console_login, csrf

SIGNATURE = base64.b64encode(PNG_1PX).decode()


async def collect(api, fee: int, ago: timedelta = timedelta(0), courier: str = "courier1") -> str:
    """A submission the courier picked up `ago`, collecting `fee`; returns its code."""
    created = await api.create_shipment(fee_vnd=fee, dest_unit="TTHCC-GL")
    await api.assign(created["code"], courier)
    when = to_wire(datetime.now(UTC) - ago)
    event = await api.event(
        courier,
        created["code"],
        "picked_up",
        created["head"],
        occurred_at=when,
        data={"components": ["Tờ khai đăng ký khai sinh"], "fee_vnd": fee},
    )
    r = await api.sync(courier, [event])
    assert r.status_code == 200 and r.json()["results"][0]["status"] == "accepted", r.text
    return created["code"]


async def remit(api, codes: list[str], amount: int, user: str = "clerk", courier: str = "courier1", **kw):
    await api.login(courier)
    body = {
        "courier_id": api.user_ids[courier],
        "codes": codes,
        "amount_vnd": amount,
        "signature_png": SIGNATURE,
        **kw,
    }
    return await api.call("POST", "/api/v1/remittances", user, json=body)


def day_row(html: str, courier_id: int, day: str) -> dict[str, object]:
    m = re.search(
        rf'<tr data-courier="{courier_id}" data-day="{day}" data-flags="([^"]*)".*?</tr>', html, re.S
    )
    assert m, f"no row for courier {courier_id} on {day}"
    cells = [int(v) for v in re.findall(r'data-vnd="(-?\d+)"', m.group(0))]
    return {
        "flags": m.group(1).split(",") if m.group(1) else [],
        "collected": cells[0],
        "remitted": cells[1],
        "difference": cells[2],
        "outstanding": cells[3],
        "html": m.group(0),
    }


async def test_a_money_day_with_a_shortfall(api, db):
    a = await collect(api, 50_000)
    b = await collect(api, 30_000)
    c = await collect(api, 20_000, ago=timedelta(hours=30))  # still with the courier past a day

    r = await remit(api, [a], 50_000)
    assert r.status_code == 201, r.text
    first = r.json()
    rec = first["record"]
    assert first["flag"] is None and rec["items"] == [{"shipment": a, "fee_vnd": 50_000}]
    assert first["hash"] == hashlib.sha256(canonicalize(rec)).hexdigest()
    assert rec["courier"] == f"courier:{api.user_ids['courier1']}" and rec["unit"] == "BC-PLEIKU"
    assert rec["signature"] == hashlib.sha256(PNG_1PX).hexdigest()
    assert all(type(rec[k]) is int for k in ("amount_vnd", "expected_vnd", "difference_vnd"))

    for who in ("dispatcher", "shopclerk", "courier2"):
        await api.login(who)
    before = await table_counts(db)
    bad = [
        (dict(codes=[b], amount=25_000), 422, "short of"),  # short without a reason
        (dict(codes=[a], amount=50_000), 409, "Already remitted"),
        (dict(codes=[b, b], amount=60_000), 400, "listed twice"),
        (dict(codes=["1234 5678 9012 4"], amount=1), 400, "check digit"),
        (dict(codes=[b], amount=-1), 400, "amount_vnd"),
        (dict(codes=[b], amount=30_000, signature_png="not base64!"), 400, "signature_png"),
        (
            dict(codes=[b], amount=30_000, signature_png=base64.b64encode(b"GIF89a").decode()),
            400,
            "not a PNG",
        ),
        (dict(codes=[b], amount=30_000, user="dispatcher"), 403, ""),  # not a cashier
        (dict(codes=[b], amount=30_000, user="shopclerk"), 404, "No courier"),  # another unit
        (dict(codes=[b], amount=30_000, courier="courier2"), 422, "No fee collected by this courier"),
    ]
    for kw, status, words in bad:
        amount = kw.pop("amount")
        codes = kw.pop("codes")
        r = await remit(api, codes, amount, **kw)
        assert r.status_code == status and words in r.text, (codes, kw, r.status_code, r.text)
    assert await table_counts(db) == before

    r = await remit(api, [b], 25_000, difference_reason="Bưu tá nộp thiếu 5.000 đồng, hẹn nộp bù")
    assert r.status_code == 201 and r.json()["flag"] == "short", r.text
    short_id, short_hash = r.json()["id"], r.json()["hash"]

    # another unit's clerk neither reads the remittance nor sees the courier on the sheet
    assert (await api.call("GET", f"/api/v1/remittances/{short_id}", "shopclerk")).status_code == 404
    assert (await api.call("GET", f"/api/v1/remittances/{short_id}", "auditor")).status_code == 200

    await console_login(api.client, "clerk")
    page = await api.client.get("/console/money")
    assert page.status_code == 200, page.text[-500:]
    cid = api.user_ids["courier1"]
    today = local_day(datetime.now(UTC)).isoformat()
    row = day_row(page.text, cid, today)
    collected_today = 80_000 + (
        20_000 if local_day(datetime.now(UTC) - timedelta(hours=30)).isoformat() == today else 0
    )
    assert row["collected"] == collected_today
    assert (row["remitted"], row["difference"], row["outstanding"]) == (75_000, -5_000, 20_000)
    assert set(row["flags"]) == {"short", "late"}
    assert "75.000 ₫" in row["html"] and "−5.000 ₫" in row["html"] and "Nộp thiếu" in row["html"]
    assert "Giữ quá 1 ngày" in row["html"]
    # the cashier's form lists what is still owed: only c
    form = await api.client.get(f"/console/money/remit?courier={cid}")
    assert form.status_code == 200 and c in form.text and a not in form.text and b not in form.text
    slip = await api.client.get(f"/console/money/remittances/{short_id}")
    assert slip.status_code == 200 and short_hash in slip.text and "Nộp thiếu" in slip.text
    sig = await api.client.get(f"/console/money/remittances/{short_id}/signature.png")
    assert sig.status_code == 200 and sig.content == PNG_1PX

    await console_login(api.client, "shopclerk")
    page = await api.client.get("/console/money")
    assert page.status_code == 200 and f'data-courier="{cid}"' not in page.text
    assert (await api.client.get(f"/console/money/remit?courier={cid}")).status_code == 404
    assert (await api.client.get(f"/console/money/remittances/{short_id}")).status_code == 404
    assert (await api.client.get("/console/money?from=yesterday")).status_code == 400


async def test_a_double_remittance_race_has_one_winner(api, db):
    """Two parallel requests remit the same shipment: one 201, one 409, one row."""
    code = await collect(api, 40_000)
    await api.login("clerk")
    results = await asyncio.gather(*(remit(api, [code], 40_000) for _ in range(2)))
    assert sorted(r.status_code for r in results) == [201, 409], [r.text for r in results]
    counts = await table_counts(db)
    assert counts["remittances"] == 1 and counts["remittance_items"] == 1


async def test_when_both_pass_the_checks_the_database_picks_one(api, settings, monkeypatch):
    """Both remittances pass the 'not remitted yet' read before either writes (held at a
    barrier): the items' primary key (the shipment) lets exactly one commit, the other 409."""
    from server.auth.service import CurrentUser
    from server.custody import attachments
    from server.db.engine import Database
    from server.errors import Conflict
    from server.money import repository, service

    code = await collect(api, 40_000)
    await api.login("clerk")
    real, arrived, both = attachments.store, [], asyncio.Event()

    async def wait_for_the_other(*args, **kw):  # called after the checks, before the write
        arrived.append(1)
        if len(arrived) == 2:
            both.set()
        await asyncio.wait_for(both.wait(), 5)
        return await real(*args, **kw)

    monkeypatch.setattr(attachments, "store", wait_for_the_other)
    db = Database(settings.db_url)
    async with db.read() as conn:
        unit = await repository.unit_by_code(conn, "BC-PLEIKU")
    clerk = CurrentUser(api.user_ids["clerk"], "clerk", "clerk", unit.id, unit.code)
    try:
        outcomes = await asyncio.gather(
            *(
                service.remit(
                    db,
                    settings.attachments_dir,
                    clerk,
                    api.user_ids["courier1"],
                    [code],
                    40_000,
                    "",
                    PNG_1PX,
                    b"",
                )
                for _ in range(2)
            ),
            return_exceptions=True,
        )
        assert len(arrived) == 2
        wins = [o for o in outcomes if isinstance(o, int)]
        losses = [o for o in outcomes if isinstance(o, Conflict)]
        assert len(wins) == 1 and len(losses) == 1, outcomes
        assert "remitted a moment ago" in losses[0].detail
    finally:
        await db.dispose()


async def test_the_monthly_statement_as_xlsx_and_pdf(api):
    now = datetime.now(UTC)
    a = await collect(api, 50_000)
    b = await collect(api, 1_234_000)
    assert (await remit(api, [a], 50_000)).status_code == 201
    month = local_day(now).strftime("%Y-%m")
    await console_login(api.client, "clerk")
    # the cashier's form: a bad amount or no signature is a 400 page that keeps what was typed
    form = await api.client.get(f"/console/money/remit?courier={api.user_ids['courier1']}")
    token = csrf(form.text)
    sent = {"courier_id": str(api.user_ids["courier1"]), "code": [b], "_csrf_token": token}
    for change, words in (
        ({"amount_vnd": "năm mươi", "signature_png": "data:image/png;base64," + SIGNATURE}, "amount_vnd"),
        ({"amount_vnd": "1.234.000", "signature_png": ""}, "signature is missing"),
        ({"amount_vnd": "1.000.000", "signature_png": "data:image/png;base64," + SIGNATURE}, "short of"),
    ):
        r = await api.client.post("/console/money/remit", data={**sent, **change})
        assert r.status_code in (400, 422) and words in r.text, (change, r.status_code, r.text[-400:])
        assert f'value="{change["amount_vnd"]}"' in r.text
    assert (await api.client.get("/console/money/remit?courier=abc")).status_code == 400
    base = f"/console/money/statement?agency=TTHCC-GL&month={month}"
    page = await api.client.get(base)
    assert page.status_code == 200 and "1.284.000 ₫" in page.text

    r = await api.client.get(base + "&format=xlsx")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/vnd.openxmlformats")
    ws = load_workbook(io.BytesIO(r.content)).active
    rows = [list(x) for x in ws.iter_rows(values_only=True)]
    header = next(x for x in rows if x and x[0] == "STT")
    assert header[:7] == [
        "STT",
        "Mã bưu gửi",
        "Mã hồ sơ",
        "Thủ tục",
        "Bưu tá thu",
        "Ngày thu",
        "Số tiền (đồng)",
    ]
    lines = rows[rows.index(header) + 1 :][:2]
    assert {x[1] for x in lines} == {a, b}
    assert all(type(x[6]) is int for x in lines) and sorted(x[6] for x in lines) == [50_000, 1_234_000]
    totals = {
        x[1]: x[6] for x in rows if x and x[1] in ("Tổng tiền thu hộ", "Đã nộp bưu cục", "Còn bưu tá giữ")
    }
    assert totals == {"Tổng tiền thu hộ": 1_284_000, "Đã nộp bưu cục": 50_000, "Còn bưu tá giữ": 1_234_000}
    assert all(type(v) is int for v in totals.values())

    r = await api.client.get(base + "&format=pdf")
    assert r.status_code == 200 and r.content.startswith(b"%PDF")
    text = "".join(p.get_textpage().get_text_range() for p in pdfium.PdfDocument(r.content))
    for words in (
        "BẢNG KÊ THU HỘ",
        "Trung tâm Phục vụ hành chính công tỉnh Gia Lai",
        "1.284.000 ₫",
        "chưa nộp",
    ):
        assert words in text, (words, text[:800])

    for query, status in (
        ("?agency=NOPE", 404),
        ("?agency=BC-PLEIKU", 404),  # a post office is no agency
        ("?agency=TTHCC-GL&month=2026-13", 400),
        ("?agency=TTHCC-GL&format=doc", 400),
        ("", 400),
    ):
        r = await api.client.get("/console/money/statement" + query)
        assert r.status_code == status, (query, r.status_code)
