"""Pages photographed by the courier at the pickup (issue 18): `POST /api/v1/shipments/{code}/pages`
(courierDigitise). The courier who holds the dossier uploads page images; the server checks
them, binds the PDF and signs `digitised` itself; every bad input is a 4xx with a sentence."""

from __future__ import annotations

import hashlib
import io
import re

from PIL import Image

from shared import codes
from shared.pages import MAX_PAGE_BYTES, MAX_UPLOAD_BYTES, MIN_SHARPNESS
from tests.api.test_console import console_login
from tests.pages_fixture import blurred, jpeg, page_image

P1, P2 = jpeg(page_image(1)), jpeg(page_image(2))


def _files(*bodies: bytes) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [("page", (f"p{n}.jpg", b, "image/jpeg")) for n, b in enumerate(bodies, start=1)]


async def _post(api, code: str, user: str = "courier1", **kw):
    return await api.call("POST", f"/api/v1/shipments/{code}/pages", user, **kw)


async def _picked_up(api, courier: str = "courier1", **over) -> tuple[str, dict]:
    created = await api.create_shipment(**over)
    code = created["code"]
    await api.assign(code, courier)
    pickup = await api.event(courier, code, "picked_up", created["head"])
    r = await api.sync(courier, [pickup])
    assert r.json()["results"][0]["status"] == "accepted", r.text
    return code, pickup


async def _types(api, code: str) -> list[str]:
    return [e["event"]["type"] for e in (await api.shipment(code))["events"]]


async def test_the_courier_who_picked_it_up_digitises_it(api):
    code, pickup = await _picked_up(api)
    r = await _post(api, code, files=_files(P1, P2))
    assert r.status_code == 201, r.text
    body = r.json()
    ev = body["event"]
    assert ev["type"] == "digitised" and ev["prev"] == pickup["hash"] and body["head"] == ev["hash"]
    assert ev["actor"] == f"courier:{api.user_ids['courier1']}" and body["repeated"] is False
    keys = (await api.call("GET", "/api/v1/keys")).json()
    assert ev["device"] == keys["event_public_key"]  # signed by the server, not the phone
    pages = ev["data"]["pages"]
    assert [p["sha256"] for p in pages["pages"]] == [hashlib.sha256(b).hexdigest() for b in (P1, P2)]
    assert await _types(api, code) == ["registered", "picked_up", "digitised"]

    # the answer was lost and the phone sends the same pages again: the same event, no second one
    again = await _post(api, code, files=_files(P1, P2))
    assert again.status_code == 201 and again.json()["repeated"] is True
    assert again.json()["event"]["hash"] == ev["hash"]
    assert await _types(api, code) == ["registered", "picked_up", "digitised"]

    # the phone's next event links to the server's digitised event
    nobody = await api.event("courier1", code, "delivery_failed", body["head"])
    assert (await api.sync("courier1", [nobody])).json()["results"][0]["status"] == "accepted"

    # the console's shipment page shows the thumbnails and the PDF, who captured them
    client = api.client
    await console_login(client, "dispatcher")
    html = (await client.get(f"/console/shipments/{code}")).text
    assert html.count('class="thumb"') == 2 and f'href="/console/attachments/{pages["pdf"]}"' in html
    assert "Nguyễn Văn Hùng" in html.split('id="pages"')[1]
    pdf = await client.get(f"/console/attachments/{pages['pdf']}")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF-")
    assert hashlib.sha256(pdf.content).hexdigest() == pages["pdf"]
    thumb = await client.get(f"/console/attachments/{pages['pages'][1]['sha256']}/thumb")
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"


async def test_sync_refuses_a_digitised_event_signed_by_a_phone(api):
    code, pickup = await _picked_up(api)
    forged = await api.event(
        "courier1",
        code,
        "digitised",
        pickup["hash"],
        counterparty=None,
        attachments={"signature": None, "photos": []},
        data={},
    )
    [res] = (await api.sync("courier1", [forged])).json()["results"]
    assert res["status"] == "rejected" and "signed by the server, not by a device" in res["reason"]
    assert f"POST /api/v1/shipments/{code}/pages" in res["reason"]
    assert await _types(api, code) == ["registered", "picked_up"]


async def test_who_may_send_pages(api):
    # not picked up yet: 409
    created = await api.create_shipment()
    await api.assign(created["code"], "courier1")
    r = await _post(api, created["code"], files=_files(P1))
    assert r.status_code == 409 and "has not been picked up yet" in r.json()["detail"]
    # another courier: 403; a clerk (even of the unit): 403 on this route
    code, pickup = await _picked_up(api)
    r = await _post(api, code, "courier2", files=_files(P1))
    assert r.status_code == 403 and "not yours to see" in r.json()["detail"], r.text
    r = await _post(api, code, "clerk", files=_files(P1))
    assert r.status_code == 403, r.text
    # handed on to courier2: the first courier no longer may; the counter scans it instead
    await api.login("courier2")
    transfer = await api.event(
        "courier1",
        code,
        "transferred",
        pickup["hash"],
        counterparty={"name": "Trần Thị Lan", "role": "courier", "user_id": api.user_ids["courier2"]},
    )
    assert (await api.sync("courier1", [transfer])).json()["results"][0]["status"] == "accepted"
    r = await _post(api, code, files=_files(P1))
    assert r.status_code == 403 and "the counter scans its pages instead" in r.json()["detail"], r.text
    assert await _types(api, code) == ["registered", "picked_up", "transferred"]


async def test_a_result_has_no_pages_to_capture(api):
    parent = await api.create_shipment()
    result = await api.create_shipment("result", user="shopclerk", parent=parent["code"])
    await api.assign(result["code"], "courier1")
    pickup = await api.event(
        "courier1",
        result["code"],
        "picked_up",
        result["head"],
        counterparty={"name": "Cán bộ một cửa", "role": "clerk"},
        data={},
    )
    await api.sync("courier1", [pickup])
    r = await _post(api, result["code"], files=_files(P1))
    assert r.status_code == 409 and "is a result, not a dossier" in r.json()["detail"], r.text


def _png(w: int, h: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (w, h), "white").save(out, "PNG")
    return out.getvalue()


async def test_bad_inputs_each_get_a_sentence(api):
    code, _ = await _picked_up(api)
    tiny = jpeg(page_image(1, size=(160, 120)))
    huge = b"\xff\xd8\xff" + b"\0" * (MAX_PAGE_BYTES + 1)
    cases = [
        ("41 pages", dict(files=_files(*[tiny] * 41)), 413, r"at most 40 pages; 41 were sent"),
        ("a page over 4 MiB", dict(files=_files(huge)), 413, r"a page may have at most 4 MiB"),
        (
            "a body over 16 MiB",
            dict(files=_files(*[b"\xff\xd8\xff" + b"\0" * (3 * 1024 * 1024)] * 6)),
            413,
            r"At most 16 MiB of pages per request",
        ),
        ("no pages", dict(files=[("other", ("x.txt", b"x", "text/plain"))]), 400, r"No page was sent"),
        ("not an image", dict(files=[("page", ("x.txt", b"hello", "text/plain"))]), 400, r"not a JPEG, PNG"),
        ("a 60×40 image", dict(files=[("page", ("s.png", _png(60, 40), "image/png"))]), 400, r"at least 100"),
        ("JSON", dict(json={"pages": []}), 415, r"Send the page images as multipart/form-data"),
        (
            "a scanner PDF",
            dict(files=[("page", ("s.pdf", b"%PDF-1.4 x", "application/pdf"))]),
            400,
            r"sends page photos, not a PDF",
        ),
    ]
    assert 6 * 3 * 1024 * 1024 > MAX_UPLOAD_BYTES
    for what, kw, status, sentence in cases:
        r = await _post(api, code, **kw)
        assert r.status_code == status, (what, r.status_code, r.text[:300])
        assert re.search(sentence, r.json()["detail"]), (what, r.json()["detail"])
    # a bad code: 400 (the check digit) before anything is read
    wrong = code[:-1] + str((int(code[-1]) + 1) % 10)
    r = await _post(api, wrong, files=_files(P1))
    assert r.status_code == 400, r.text
    r = await _post(api, "12345", files=_files(P1))
    assert r.status_code == 400, r.text
    # a blurred page: 422 naming the page and its score; nothing is recorded
    r = await _post(api, code, files=_files(P1, jpeg(blurred(page_image(2)))))
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert re.search(rf"Trang 2 bị mờ \(độ nét \d+, cần ≥ {MIN_SHARPNESS}\)", detail), detail
    assert "Page 2 is blurred" in detail and "Page 1" not in detail
    assert await _types(api, code) == ["registered", "picked_up"]


async def test_the_code_may_be_grouped(api):
    code, _ = await _picked_up(api)
    r = await _post(api, codes.group(code).replace(" ", "-"), files=_files(P1))
    assert r.status_code == 201, r.text


async def test_the_same_pages_sent_four_times_at_once_make_one_event(api):
    """A phone that retries while its first upload is still being bound: every answer is the
    one event, recorded once (the repeat is decided under the shipment's lock)."""
    import asyncio

    code, _ = await _picked_up(api)
    await api.login("courier1")  # one sign-in before the burst
    answers = await asyncio.gather(*(_post(api, code, files=_files(P1, P2)) for _ in range(4)))
    assert [r.status_code for r in answers] == [201] * 4, [r.text for r in answers]
    assert len({r.json()["event"]["hash"] for r in answers}) == 1
    assert sorted(r.json()["repeated"] for r in answers) == [False, True, True, True]
    assert await _types(api, code) == ["registered", "picked_up", "digitised"]
