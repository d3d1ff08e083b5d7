"""The console's shipment page: timeline as evidence, images, distances, rejected events, verification."""

from __future__ import annotations

import hashlib
import re

from sqlalchemy import text

from shared import codes
from tests.api.conftest import PNG_1PX
from tests.api.test_console import console_login


async def _carried(api) -> dict:
    created = await api.create_shipment(dest_unit="TTHCC-GL")
    await api.assign(created["code"])
    sig = hashlib.sha256(PNG_1PX).hexdigest()
    r = await api.call(
        "PUT",
        f"/api/v1/attachments/{sig}",
        "courier1",
        content=PNG_1PX,
        headers={"Content-Type": "image/png"},
    )
    assert r.status_code in (200, 201), r.text
    e1 = await api.event("courier1", created["code"], "picked_up", created["head"])
    # recorded 1.1 km from the recipient's address (13.976, 108.005)
    e2 = await api.event(
        "courier1",
        created["code"],
        "delivery_failed",
        e1["hash"],
        location={"lat": 13.986, "lon": 108.005, "accuracy_m": 12.0, "fix_at": e1["location"]["fix_at"]},
    )
    stale = await api.event("courier1", created["code"], "delivery_failed", e1["hash"])  # forks the chain
    r = await api.sync("courier1", [e1, e2])
    assert [x["status"] for x in r.json()["results"]] == ["accepted", "accepted"]
    r = await api.sync("courier1", [stale])
    assert r.json()["results"][0]["status"] == "rejected"
    return created


async def test_shipment_page_shows_the_evidence_and_verifies(api, db):
    created = await _carried(api)
    code = created["code"]
    client = api.client
    await console_login(client, "auditor")
    r = await client.get(f"/console/shipments/{code}")
    assert r.status_code == 200, r.text
    html = r.text
    assert 'data-verified="true"' in html and "Đã kiểm chứng: 3 sự kiện" in html
    assert html.count('<li data-type="') == 3
    assert "Bưu tá nhận" in html and "Phát không thành công" in html and "không có người nhận" in html
    assert html.count('class="signature"') == 1  # the pickup's signature, as an image
    assert re.search(r'data-distance="11\d\d"', html)  # the failed attempt, ~1.1 km from the address
    assert "Giờ thiết bị" in html and "Giờ GPS" in html and "Giờ máy chủ" in html
    assert "Sự kiện bị từ chối (1)" in html and "is not the current head" in html
    assert "<svg" in html and "<circle" in html
    sig = hashlib.sha256(PNG_1PX).hexdigest()
    img = await client.get(f"/console/attachments/{sig}")
    assert img.status_code == 200 and img.headers["content-type"] == "image/png" and img.content == PNG_1PX
    bundle = await client.get(f"/console/shipments/{code}/custody.json")
    assert bundle.status_code == 200 and "attachment" in bundle.headers["content-disposition"]
    assert [e["type"] for e in bundle.json()["events"]] == ["registered", "picked_up", "delivery_failed"]
    for path, status in (
        ("/console/shipments/123", 400),
        (f"/console/shipments/{codes.new_code()}", 404),
        ("/console/attachments/" + "0" * 64, 404),
        ("/console/attachments/xyz", 400),
    ):
        r = await client.get(path)
        assert r.status_code == status, (path, r.status_code, r.text[-500:])

    # someone edits a stored event behind the server's back: the badge says so
    async with db.write() as conn:
        await conn.execute(
            text(
                "UPDATE custody_events SET body = replace(body, 'not_home', 'refused') "
                "WHERE type = 'delivery_failed'"
            )
        )
    r = await client.get(f"/console/shipments/{code}")
    assert 'data-verified="false"' in r.text and "KHÔNG kiểm chứng được" in r.text
    assert "event hashes" in r.text


async def test_a_clerk_sees_only_the_units_shipments(api):
    created = await _carried(api)
    client = api.client
    await console_login(client, "shopclerk")  # the destination unit: may see it
    assert (await client.get(f"/console/shipments/{created['code']}")).status_code == 200
    other = await api.create_shipment("result", user="shopclerk")
    client.cookies.clear()
    await console_login(client, "clerk")  # BC-PLEIKU: the result is not theirs
    r = await client.get(f"/console/shipments/{other['code']}")
    assert r.status_code == 403 and "not yours to see" in r.text
