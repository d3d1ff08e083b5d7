"""Counter reception and results collected at the counter (issue 18 item 1), on SQLite and PG."""

from __future__ import annotations

import asyncio
import hashlib
import io
import re
from datetime import timedelta

import pypdfium2

from shared.bundle import verify_bundle
from shared.timeutil import utcnow
from tests.api.conftest import table_counts
from tests.api.test_console import console_login, csrf
from tests.api.test_console_clerk import _signature_data_url

KS1 = {
    "name": "Đăng ký khai sinh",
    "field": "Tư pháp - Hộ tịch",
    "components": ["Tờ khai đăng ký khai sinh", "Giấy chứng sinh (bản chính)", "CCCD của cha hoặc mẹ"],
    "fee_vnd": 8_000,
}


def _form(token: str, **over: str) -> dict:
    due = (utcnow() + timedelta(days=5)).date().isoformat()
    form = {
        "_csrf_token": token,
        "dest_unit": "TTHCC-GL",
        "procedure_code": "KS1",
        "received": list(KS1["components"]),
        "citizen_name": "Nguyễn Thị Bích",
        "citizen_id_last4": "4821",
        "citizen_phone": "0905123456",
        "citizen_province": "Tỉnh Gia Lai",
        "citizen_commune": "Phường Pleiku",
        "citizen_address": "12 Trần Hưng Đạo",
        "dossier_ref": "H21.52-261202-0007",
        "due_date": due,
        "due_time": "16:30",
        "fee_vnd": "1",  # a catalogue procedure's fee is the catalogue's, whatever the form says
        "signature_png": _signature_data_url(),
        "signature_strokes": '{"w": 520, "h": 170, "strokes": [[[10, 60, 0], [80, 20, 40], [150, 80, 90]]]}',
    }
    form.update(over)
    return form


def _pdf_text(body: bytes) -> str:
    pdf = pypdfium2.PdfDocument(io.BytesIO(body))
    return "\n".join(pdf[i].get_textpage().get_text_range() for i in range(len(pdf)))


async def _catalogue(api) -> None:
    for name in ("clerk", "shopclerk", "admin"):
        await api.login(name)
    r = await api.call("PUT", "/api/v1/units/TTHCC-GL/procedures/KS1", "shopclerk", json=KS1)
    assert r.status_code == 200, r.text


async def _counter_page(client, query: str = "?dest=TTHCC-GL&procedure=KS1") -> str:
    page = await client.get("/console/counter/" + query)
    assert page.status_code == 200, page.text[-500:]
    return page.text


async def _receive(client, **over) -> tuple[str, str, str]:
    """(code, pin, the answer's html) of a reception at the counter."""
    token = csrf(await _counter_page(client))
    r = await client.post("/console/counter/", data=_form(token, **over))
    assert r.status_code == 200, r.text[-1500:]
    code = re.search(r'action="/console/counter/(\d{13})/receipt.pdf"', r.text).group(1)
    pin = re.search(r'id="pin">(\d{6})<', r.text).group(1)
    return code, pin, r.text


async def test_counter_reception_registers_a_signed_counter_dossier_and_prints_its_receipt(api, db):
    client = api.client
    await _catalogue(api)
    await console_login(client, "clerk")
    page = await _counter_page(client)
    for comp in KS1["components"]:
        assert f'name="received" value="{comp}"' in page  # the checklist, from the catalogue
    assert 'id="fee">8.000 ₫' in page and 'canvas class="sigpad"' in page
    code, pin, html = await _receive(client)
    assert 'id="fee-taken">8.000 ₫' in html and 'id="missing"' not in html

    detail = await api.shipment(code)
    assert detail["channel"] == "counter" and detail["kind"] == "submission"
    assert detail["state"] == "registered" and detail["fee_vnd"] == 8_000
    assert detail["dest_unit"] == "TTHCC-GL" and detail["unit"] == "BC-PLEIKU"
    assert detail["custodian"]["role"] == "clerk" and detail["custodian"]["user_id"] == api.user_ids["clerk"]
    assert detail["sender"]["id_last4"] == "4821" and detail["components"] == KS1["components"]
    [ev] = [e["event"] for e in detail["events"]]
    keys = (await api.client.get("/api/v1/keys")).json()
    assert ev["type"] == "registered" and ev["device"] == keys["event_public_key"]  # server-signed
    assert ev["actor"] == f"clerk:{api.user_ids['clerk']}"
    assert ev["counterparty"] == {"name": "Nguyễn Thị Bích", "role": "citizen", "id_last4": "4821"}
    data = ev["data"]
    assert data["channel"] == "counter" and data["fee_vnd"] == 8_000 and data["procedure_code"] == "KS1"
    assert data["components"] == KS1["components"] and data["missing_components"] == []
    assert data["incomplete"] is False
    # the signature drawn on screen is an attachment, as the courier app's are
    png = await client.get(f"/console/attachments/{ev['attachments']['signature']}")
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
    assert hashlib.sha256(png.content).hexdigest() == ev["attachments"]["signature"]

    # phiếu tiếp nhận with the PIN, checked like the citizen page's
    token = csrf(html)
    r = await client.post(f"/console/counter/{code}/receipt.pdf", data={"_csrf_token": token, "pin": pin})
    assert r.status_code == 200 and r.content.startswith(b"%PDF"), r.text[:300]
    text = _pdf_text(r.content)
    assert "PHIẾU TIẾP NHẬN HỒ SƠ" in text and pin in text and "8.000 đồng" in text
    assert "Giấy chứng sinh (bản chính)" in text and "còn thiếu" not in text
    wrong = "000000" if pin != "000000" else "111111"
    r = await client.post(f"/console/counter/{code}/receipt.pdf", data={"_csrf_token": token, "pin": wrong})
    assert r.status_code == 400
    r = await client.post(f"/console/counter/{code}/receipt.pdf", data={"_csrf_token": token, "pin": "12"})
    assert r.status_code == 400 and "6 chữ số" in r.text
    # the bundle of a counter dossier verifies like any other
    bundle = (await client.get(f"/console/shipments/{code}/custody.json")).json()
    failed = [c for c in verify_bundle(bundle) if not c.ok and c.name != "authenticity"]
    assert failed == [], failed


async def test_missing_components_need_the_explicit_choice(api, db):
    client = api.client
    await _catalogue(api)
    await console_login(client, "clerk")
    token = csrf(await _counter_page(client))
    before = await table_counts(db)
    got = ["Tờ khai đăng ký khai sinh"]
    r = await client.post("/console/counter/", data=_form(token, received=got))
    assert r.status_code == 422
    assert "Giấy chứng sinh (bản chính); CCCD của cha hoặc mẹ" in r.text and "còn thiếu" in r.text
    assert 'value="Tờ khai đăng ký khai sinh" checked' in r.text  # the ticks stay for the retry
    assert await table_counts(db) == before  # nothing kept, not even the signature
    code, pin, html = await _receive(client, received=got, incomplete="1")
    assert 'id="missing"' in html
    [ev] = [e["event"] for e in (await api.shipment(code))["events"]]
    assert ev["data"]["components"] == got and ev["data"]["incomplete"] is True
    assert ev["data"]["missing_components"] == ["Giấy chứng sinh (bản chính)", "CCCD của cha hoặc mẹ"]
    r = await client.post(
        f"/console/counter/{code}/receipt.pdf", data={"_csrf_token": csrf(html), "pin": pin}
    )
    text = _pdf_text(r.content)
    assert "Thành phần còn thiếu" in text and "CCCD của cha hoặc mẹ" in text
    shown = await client.get(f"/console/shipments/{code}")
    assert 'id="channel">Tại quầy' in shown.text
    missing = "Giấy chứng sinh (bản chính); CCCD của cha hoặc mẹ"
    assert f'id="missing-components" class="flag">{missing}' in shown.text


async def test_counter_reception_bad_inputs(api, db):
    client = api.client
    await _catalogue(api)
    await console_login(client, "clerk")
    token = csrf(await _counter_page(client))
    before = await table_counts(db)
    cases = [
        ({"received": []}, 422, "Chưa đánh dấu"),
        ({"received": ["Sổ hộ khẩu"]}, 400, "không có trong danh sách"),
        ({"signature_png": ""}, 400, "chưa ký"),
        ({"signature_png": "data:image/png;base64,%%%"}, 400, "could not be read"),
        ({"signature_png": "data:image/png;base64,aGVsbG8="}, 400, ""),
        ({"citizen_id_last4": "12a4"}, 400, "4 số cuối"),
        ({"citizen_name": " "}, 400, "họ tên"),
        ({"due_date": "mai"}, 400, "hạn trả"),
        ({"procedure_code": "KHONG-CO"}, 422, "không có trong danh mục"),
        ({"dest_unit": "NO-SUCH"}, 404, ""),
        ({"citizen_province": "Tỉnh Atlantis"}, 400, "34 tỉnh"),
        ({"procedure_code": "", "procedure": ""}, 400, "Khác"),
        ({"procedure_code": "", "procedure": "Thủ tục khác", "fee_vnd": "năm mươi"}, 400, "đồng nguyên"),
        ({"dossier_ref": "x" * 101}, 400, "tối đa"),
    ]
    for over, status, words in cases:
        r = await client.post("/console/counter/", data=_form(token, **over))
        assert r.status_code == status, (over, r.status_code, r.text[-600:])
        assert words in r.text, (over, r.text[-600:])
        assert 'role="alert"' in r.text
    assert await table_counts(db) == before
    # "other": typed procedure, typed fee, typed components; a typed missing paper needs the choice
    other = {
        "procedure_code": "",
        "procedure": "Chứng thực bản sao",
        "fee_vnd": "2.000",
        "components": "Bản chính giấy tờ\nBản sao cần chứng thực",
        "missing_components": "Giấy ủy quyền",
        "received": [],
    }
    r = await client.post("/console/counter/", data=_form(token, **other))
    assert r.status_code == 422 and "Giấy ủy quyền" in r.text
    code, _, _ = await _receive(client, **other, incomplete="1")
    d = await api.shipment(code)
    [ev] = [e["event"] for e in d["events"]]
    assert d["fee_vnd"] == 2_000 and d["procedure"] == "Chứng thực bản sao" and d["channel"] == "counter"
    assert ev["data"]["components"] == ["Bản chính giấy tờ", "Bản sao cần chứng thực"]
    assert ev["data"]["missing_components"] == ["Giấy ủy quyền"] and ev["data"]["procedure_code"] == ""
    # a dispatcher or a courier does not work the counter
    await console_login(client, "dispatcher")
    assert (await client.get("/console/counter/")).status_code == 403
    # a dossier registered the ordinary way has no counter receipt
    plain = await api.create_shipment()
    await console_login(client, "clerk")
    token = csrf(await _counter_page(client))
    r = await client.post(f"/console/counter/{plain['code']}/receipt.pdf", data={"_csrf_token": token})
    assert r.status_code == 409 and "không được tiếp nhận tại quầy" in r.text


async def test_parallel_receptions_each_get_their_own_code(api, db):
    client = api.client
    await _catalogue(api)
    await console_login(client, "clerk")
    token = csrf(await _counter_page(client))
    answers = await asyncio.gather(*(client.post("/console/counter/", data=_form(token)) for _ in range(6)))
    assert [a.status_code for a in answers] == [200] * 6
    found = {re.search(r"/console/counter/(\d{13})/receipt.pdf", a.text).group(1) for a in answers}
    assert len(found) == 6


async def _result_at_the_shop(api, client) -> tuple[str, str]:
    """A counter submission and the result the shop registers for it: (submission, result)."""
    await _catalogue(api)
    await console_login(client, "clerk")
    code, _, _ = await _receive(client)
    result = await api.create_shipment(kind="result", user="shopclerk", parent=code)
    return code, result["code"]


def _collect_form(token: str, ship: str, **over: str) -> dict:
    form = {
        "_csrf_token": token,
        "code": ship,
        "name": "Nguyễn Thị Bích",
        "role": "citizen",
        "id_last4": "4821",
        "signature_png": _signature_data_url(),
        "signature_strokes": '{"w": 520, "h": 170, "strokes": []}',
    }
    form.update(over)
    return form


async def test_a_result_collected_at_the_counter_ends_its_chain(api, db, tmp_path):
    client = api.client
    sub, res = await _result_at_the_shop(api, client)
    await console_login(client, "shopclerk")
    page = await client.get(f"/console/counter/collect?code={res}")
    assert page.status_code == 200 and 'id="collect"' in page.text
    token = csrf(page.text)
    r = await client.post("/console/counter/collect", data=_collect_form(token, res))
    assert r.status_code == 200 and 'id="collected"' in r.text, r.text[-800:]
    detail = await api.shipment(res)
    assert detail["state"] == "collected"
    last = detail["events"][-1]
    ev = last["event"]
    keys = (await api.client.get("/api/v1/keys")).json()
    assert ev["type"] == "collected" and ev["device"] == keys["event_public_key"]
    assert ev["actor"] == f"clerk:{api.user_ids['shopclerk']}" and ev["data"]["identity"] == {
        "method": "id_last4"
    }
    assert ev["counterparty"] == {"name": "Nguyễn Thị Bích", "role": "citizen", "id_last4": "4821"}
    assert ev["attachments"]["signature"] and last["flags"] == []
    assert detail["custodian"]["role"] == "citizen"
    # nothing moves out of it
    again = await client.post("/console/counter/collect", data=_collect_form(token, res))
    assert again.status_code == 409 and "final state" in again.text
    # hoso verify accepts the chain ending in `collected`
    bundle = (await client.get(f"/console/shipments/{res}/custody.json")).json()
    checks = verify_bundle(bundle)
    failed = [c for c in checks if not c.ok and c.name != "authenticity"]
    assert failed == [], failed
    assert bundle["shipment"]["state"] == "collected"
    # `hoso verify` itself, in a process of its own, with the server's keys pinned: 0; and the
    # collected event with other ID digits put in: 1
    import json
    import os
    import sys

    import anyio

    keys_file, good, bad = tmp_path / "keys.json", tmp_path / "bundle.json", tmp_path / "tampered.json"
    keys_file.write_text(json.dumps(keys))
    good.write_text(json.dumps(bundle))
    tampered = json.loads(json.dumps(bundle))
    tampered["events"][-1]["counterparty"]["id_last4"] = "0000"
    bad.write_text(json.dumps(tampered))
    out = {}
    for path, status in ((good, 0), (bad, 1)):
        done = await anyio.run_process(
            [sys.executable, "-m", "server.cli", "verify", str(path), "--trust", str(keys_file)],
            check=False,
            env={**os.environ, "HOSO_DATA_DIR": str(tmp_path)},
        )
        out[path] = done.stdout.decode()
        assert done.returncode == status, out[path] + done.stderr.decode()
    assert "[ok  ] lifecycle" in out[good]
    assert "[FAIL] event hashes" in out[bad] and "collected" in out[bad], out[bad]
    # the citizen's page tells the whole journey in plain words
    citizen = await client.get(f"/t/{res}")
    assert citizen.status_code == 200
    assert "Hồ sơ đã được tiếp nhận tại quầy" in citizen.text and "Đã nhận kết quả tại quầy" in citizen.text
    shown = await client.get(f"/console/shipments/{res}")
    assert shown.status_code == 200 and "Nhận kết quả tại quầy" in shown.text
    # a submission is not collected; another unit's clerk cannot hand this over
    r = await client.post("/console/counter/collect", data=_collect_form(token, sub))
    assert r.status_code == 409 and "Chỉ kết quả" in r.text


async def test_collected_with_the_wrong_id_is_refused_unless_the_clerk_says_why(api, db):
    client = api.client
    _, res = await _result_at_the_shop(api, client)
    await console_login(client, "shopclerk")
    token = csrf((await client.get(f"/console/counter/collect?code={res}")).text)
    before = await table_counts(db)
    r = await client.post("/console/counter/collect", data=_collect_form(token, res, id_last4="1111"))
    assert r.status_code == 422 and "không khớp" in r.text and "do not match" in r.text
    assert await table_counts(db) == before and (await api.shipment(res))["state"] == "registered"
    for over, status in (
        ({"id_last4": "12"}, 400),
        ({"name": ""}, 400),
        ({"role": "courier"}, 400),
        ({"role": "proxy"}, 400),  # a proxy needs whose letter
        ({"signature_png": ""}, 400),
        ({"code": "1234"}, 400),
    ):
        r = await client.post("/console/counter/collect", data=_collect_form(token, res, **over))
        assert r.status_code == status, (over, r.text[-500:])
    assert await table_counts(db) == before
    why = "CCCD mới cấp lại, đã đối chiếu giấy hẹn"
    r = await client.post(
        "/console/counter/collect", data=_collect_form(token, res, id_last4="1111", override=why)
    )
    assert r.status_code == 200 and "không khớp" in r.text
    detail = await api.shipment(res)
    last = detail["events"][-1]
    assert detail["state"] == "collected" and last["flags"] == ["identity_mismatch"]
    assert last["event"]["data"]["identity"] == {"method": "id_last4", "override": why}


async def test_collected_by_another_units_clerk_or_twice_in_parallel(api, db):
    client = api.client
    _, res = await _result_at_the_shop(api, client)
    await console_login(client, "clerk")  # the post office: the result is still at the shop
    token = csrf((await client.get("/console/counter/collect")).text)
    r = await client.post("/console/counter/collect", data=_collect_form(token, res))
    assert r.status_code in (403, 409), r.text[-400:]
    assert (await api.shipment(res))["state"] == "registered"
    await console_login(client, "shopclerk")
    token = csrf((await client.get("/console/counter/collect")).text)
    answers = await asyncio.gather(
        *(client.post("/console/counter/collect", data=_collect_form(token, res)) for _ in range(4))
    )
    assert sorted(a.status_code for a in answers) == [200, 409, 409, 409]
    detail = await api.shipment(res)
    assert [e["event"]["type"] for e in detail["events"]].count("collected") == 1


async def test_the_fee_taken_at_the_counter_is_in_the_agencys_statement(api, db):
    """The fee goes where fees collected on behalf go (server/money): the monthly statement to
    the agency lists it as taken at the counter, in the till at once, owed by no courier."""
    from io import BytesIO

    from openpyxl import load_workbook

    from server.money.service import local_day

    client = api.client
    await _catalogue(api)
    await console_login(client, "clerk")
    code, _, _ = await _receive(client)
    month = local_day(utcnow()).strftime("%Y-%m")
    base = f"/console/money/statement?agency=TTHCC-GL&month={month}"
    page = await client.get(base)
    assert page.status_code == 200 and code[:4] in page.text
    assert "Tại quầy: Lê Thị Hoa" in page.text and "thu tại quầy" in page.text and "8.000 ₫" in page.text
    r = await client.get(base + "&format=xlsx")
    rows = [list(x) for x in load_workbook(BytesIO(r.content)).active.iter_rows(values_only=True)]
    [line] = [x for x in rows if x and x[1] == code]
    assert line[4] == "Tại quầy: Lê Thị Hoa" and line[6] == 8_000
    totals = {
        x[1]: x[6] for x in rows if x and x[1] in ("Tổng tiền thu hộ", "Đã nộp bưu cục", "Còn bưu tá giữ")
    }
    assert totals == {"Tổng tiền thu hộ": 8_000, "Đã nộp bưu cục": 8_000, "Còn bưu tá giữ": 0}
