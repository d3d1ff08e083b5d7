"""The clerk's screens: register from the form, print labels, receive a courier's batch with a signature."""

from __future__ import annotations

import base64
import io
import re
from datetime import timedelta

from shared.timeutil import utcnow
from tests.api.conftest import table_counts
from tests.api.test_console import console_login, csrf

FORM = {
    "kind": "submission",
    "dossier_ref": "H21.52-261123-0001",
    "field": "Tư pháp - Hộ tịch",
    "procedure": "Đăng ký khai sinh",
    "dest_unit": "TTHCC-GL",
    "sender_name": "Nguyễn Thị Bích",
    "sender_phone": "0905123456",
    "sender_id_last4": "4821",
    "sender_province": "Tỉnh Gia Lai",
    "sender_commune": "Phường Pleiku",
    "sender_address": "12 Trần Hưng Đạo",
    "recipient_name": "Trung tâm Phục vụ hành chính công tỉnh Gia Lai",
    "recipient_province": "Tỉnh Gia Lai",
    "recipient_commune": "Phường Pleiku",
    "recipient_address": "69 Hùng Vương",
    "due_time": "16:30",
    "fee_vnd": "50.000",
    "components": "Tờ khai đăng ký khai sinh\nGiấy chứng sinh (bản chính)\n",
}


def _signature_data_url() -> str:
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (300, 100), "white")
    ImageDraw.Draw(img).line([(10, 60), (80, 20), (150, 80), (290, 30)], fill=(20, 30, 120), width=3)
    out = io.BytesIO()
    img.save(out, format="PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()


async def test_register_from_the_form_then_print(api, db):
    client = api.client
    r = await console_login(client, "clerk")
    assert r.headers["location"] == "/console/register"
    page = await client.get("/console/register")
    assert page.status_code == 200 and 'data-province="sender_commune"' in page.text
    assert page.text.count("<option>Tỉnh ") + page.text.count("<option>Thành phố ") == 2 * 34
    provinces = (await client.get("/console/provinces.json")).json()
    assert len(provinces) == 34 and sum(len(p["communes"]) for p in provinces) == 3321
    token = csrf(page.text)
    due = (utcnow() + timedelta(days=5)).date().isoformat()
    r = await client.post("/console/register", data={**FORM, "due_date": due, "_csrf_token": token})
    assert r.status_code == 200, r.text[-800:]
    code = re.search(r'href="/console/shipments/(\d{13})/label.pdf"', r.text).group(1)
    pin = re.search(r'id="pin">(\d{6})<', r.text).group(1)
    assert f'href="/console/shipments/{code}#pages" id="digitise-link"' in r.text  # its pages next
    detail = await api.shipment(code)
    assert detail["fee_vnd"] == 50000 and detail["dest_unit"] == "TTHCC-GL" and detail["unit"] == "BC-PLEIKU"
    assert detail["components"] == ["Tờ khai đăng ký khai sinh", "Giấy chứng sinh (bản chính)"]
    assert detail["sender"]["commune"] == "Phường Pleiku" and detail["sender"]["id_last4"] == "4821"
    assert detail["due_at"].startswith(due) and detail["due_at"].endswith("09:30:00Z")  # 16:30 in Việt Nam
    assert len(pin) == 6
    pdf = await client.get(f"/console/shipments/{code}/label.pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    png = await client.get(f"/console/shipments/{code}/label.png")
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
    labels = await client.get("/console/labels")
    assert f'value="{code}"' in labels.text
    sheet = await client.post(
        "/console/labels.pdf", data={"code": [code], "codes": "", "_csrf_token": csrf(labels.text)}
    )
    assert sheet.status_code == 200 and sheet.content.startswith(b"%PDF")

    before = await table_counts(db)
    bad = [
        ({"sender_province": "Tỉnh Hà Tây"}, 400, "not one of the 34 provinces"),
        ({"sender_commune": "Phường Bến Nghé"}, 400, "is not a commune or ward of Tỉnh Gia Lai"),
        ({"due_date": "mai"}, 400, "due_date"),
        ({"fee_vnd": "năm mươi"}, 400, "fee_vnd"),
        ({"kind": "parcel"}, 400, "kind"),
        ({"sender_id_last4": "12"}, 400, "id_last4"),
        (
            {
                "recipient_name": "",
                "recipient_province": "",
                "recipient_commune": "",
                "recipient_address": "",
            },
            400,
            "recipient is required",
        ),
        ({"dest_unit": "NOPE"}, 422, "dest_unit"),
    ]
    for change, status, words in bad:
        r = await client.post(
            "/console/register", data={**FORM, "due_date": due, **change, "_csrf_token": token}
        )
        assert r.status_code == status and words in r.text, (change, r.status_code, r.text[-600:])
        assert 'value="Nguyễn Thị Bích"' in r.text  # the form keeps what was typed
    r = await client.post(
        "/console/register",
        data={
            **FORM,
            "due_date": due,
            "sender_name": "<script>alert(1)</script>",
            "sender_province": "X",
            "_csrf_token": token,
        },
    )
    assert (
        r.status_code == 400
        and "&lt;script&gt;alert(1)&lt;/script&gt;" in r.text
        and "<script>alert" not in r.text
    )
    r = await client.post("/console/labels.pdf", data={"codes": "1234 5678 9012 4", "_csrf_token": token})
    assert r.status_code == 400 and "check digit" in r.text.lower()
    assert await table_counts(db) == before


async def test_receive_a_batch_with_an_on_screen_signature(api, db):
    client = api.client
    subs = [await api.create_shipment(dest_unit="TTHCC-GL") for _ in range(2)]
    elsewhere = await api.create_shipment()  # not for the shop
    events = []
    for s in [*subs, elsewhere]:
        await api.assign(s["code"])
        events.append(await api.event("courier1", s["code"], "picked_up", s["head"]))
    await api.sync("courier1", events)
    courier = api.user_ids["courier1"]

    await console_login(client, "shopclerk")
    page = await client.get(f"/console/receive?courier={courier}")
    assert page.status_code == 200
    shown = re.findall(r'name="code" value="(\d{13})"', page.text)
    assert sorted(shown) == sorted(s["code"] for s in subs)  # only what ends at this shop
    token = csrf(page.text)
    before = await table_counts(db)
    for data, status, words in (
        ({"code": [subs[0]["code"]], "signature_png": ""}, 400, "Sign in the box first"),
        ({"code": [subs[0]["code"]], "signature_png": "data:image/png;base64,AAAA"}, 400, "not a PNG"),
        (
            {"code": [elsewhere["code"]], "signature_png": _signature_data_url()},
            422,
            "Not held by this courier",
        ),
        ({"signature_png": _signature_data_url()}, 400, "at least one shipment code"),
    ):
        r = await client.post(
            "/console/receive", data={"courier_id": str(courier), "_csrf_token": token, **data}
        )
        err = re.search(r'id="error">([^<]*)', r.text)
        assert r.status_code == status and words in r.text, (
            data.get("code"),
            r.status_code,
            err and err.group(1),
        )
    assert await table_counts(db) == before

    r = await client.post(
        "/console/receive",
        data={
            "courier_id": str(courier),
            "code": [s["code"] for s in subs],
            "signature_png": _signature_data_url(),
            "signature_strokes": '{"w":300,"h":100,"strokes":[[[10,60,0],[80,20,40]]]}',
            "_csrf_token": token,
        },
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text[-500:]
    slip = await client.get(r.headers["location"])
    assert slip.text.count('data-done="false"') == 2

    # the courier's phone learns what to sign, signs `delivered` with the clerk's signature, syncs
    pending = (await api.call("GET", "/api/v1/me/handovers", "courier1")).json()["items"]
    assert len(pending) == 1 and sorted(pending[0]["codes"]) == sorted(s["code"] for s in subs)
    await api.login("shopclerk")
    clerk = {"name": "Phạm Minh Tuấn", "role": "clerk", "user_id": api.user_ids["shopclerk"]}
    assert pending[0]["counterparty"] == clerk  # the person who signed, and their account
    heads = {e["shipment"]: e["hash"] for e in events}
    delivered = [
        await api.event(
            "courier1",
            code,
            "delivered",
            heads[code],
            counterparty=pending[0]["counterparty"],
            attachments={"signature": pending[0]["signature"], "photos": []},
            data={},
        )
        for code in pending[0]["codes"]
    ]
    r = await api.sync("courier1", delivered)
    assert all(x["status"] == "accepted" for x in r.json()["results"])
    slip = await client.get(f"/console/handovers/{pending[0]['id']}")
    assert slip.text.count('data-done="true"') == 2
    assert (await api.call("GET", "/api/v1/me/handovers", "courier1")).json()["items"] == []
    detail = await api.shipment(subs[0]["code"])
    assert detail["state"] == "delivered" and detail["custodian"]["role"] == "clerk"
    assert detail["events"][-1]["missing_attachments"] == []  # the signature the clerk drew is stored
    client.cookies.clear()
    await console_login(client, "clerk")  # another unit's clerk cannot read the slip
    assert (await client.get(f"/console/handovers/{pending[0]['id']}")).status_code == 404
