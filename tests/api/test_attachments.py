from __future__ import annotations

import hashlib
import io

from tests.api.conftest import PNG_1PX, table_counts


def _png(size_bytes: int) -> bytes:
    from PIL import Image

    img = Image.frombytes(
        "L", (1024, max(1, size_bytes // 1024)), bytes(range(256)) * (size_bytes // 256 + 4)
    )
    out = io.BytesIO()
    img.save(out, format="PNG", compress_level=0)
    return out.getvalue()


async def test_upload_is_content_addressed_and_idempotent(api):
    digest = hashlib.sha256(PNG_1PX).hexdigest()
    h = {"content-type": "image/png"}
    r = await api.call("PUT", f"/api/v1/attachments/{digest}", "courier1", content=PNG_1PX, headers=dict(h))
    assert r.status_code == 201 and r.json()["created"] is True
    r = await api.call("PUT", f"/api/v1/attachments/{digest}", "courier1", content=PNG_1PX, headers=dict(h))
    assert r.status_code == 200 and r.json()["created"] is False
    got = await api.call("GET", f"/api/v1/attachments/{digest}", "auditor")
    assert got.status_code == 200 and got.content == PNG_1PX and got.headers["content-type"] == "image/png"
    assert (await api.call("GET", f"/api/v1/attachments/{'0' * 64}", "auditor")).status_code == 404


async def test_bad_uploads_change_nothing(api, db):
    await api.login("courier1")
    before = await table_counts(db)
    digest = hashlib.sha256(PNG_1PX).hexdigest()
    r = await api.call(
        "PUT",
        f"/api/v1/attachments/{'ab' * 32}",
        "courier1",
        content=PNG_1PX,
        headers={"content-type": "image/png"},
    )
    assert r.status_code == 400 and "SHA-256" in r.json()["detail"]
    r = await api.call(
        "PUT",
        f"/api/v1/attachments/{digest}",
        "courier1",
        content=PNG_1PX,
        headers={"content-type": "application/pdf"},
    )
    assert r.status_code == 400 and "Content-Type" in r.json()["detail"]
    jpeg_claim = b"not really a jpeg"
    r = await api.call(
        "PUT",
        f"/api/v1/attachments/{hashlib.sha256(jpeg_claim).hexdigest()}",
        "courier1",
        content=jpeg_claim,
        headers={"content-type": "image/jpeg"},
    )
    assert r.status_code == 400 and "not a JPEG" in r.json()["detail"]
    broken = PNG_1PX[:-20] + b"\x00" * 20  # a PNG header over damaged data
    r = await api.call(
        "PUT",
        f"/api/v1/attachments/{hashlib.sha256(broken).hexdigest()}",
        "courier1",
        content=broken,
        headers={"content-type": "image/png"},
    )
    assert r.status_code == 400 and "damaged" in r.json()["detail"]
    big = _png(2 * 1024 * 1024 + 10_000)
    r = await api.call(
        "PUT",
        f"/api/v1/attachments/{hashlib.sha256(big).hexdigest()}",
        "courier1",
        content=big,
        headers={"content-type": "image/png"},
    )
    assert r.status_code == 413 and "KiB" in r.json()["detail"]
    r = await api.call(
        "PUT",
        "/api/v1/attachments/not-a-hash",
        "courier1",
        content=PNG_1PX,
        headers={"content-type": "image/png"},
    )
    assert r.status_code in (400, 404)
    assert await table_counts(db) == before


async def test_missing_attachment_shows_until_uploaded(api):
    created = await api.create_shipment()
    await api.assign(created["code"])
    ev = await api.event("courier1", created["code"], "picked_up", created["head"])
    await api.sync("courier1", [ev])
    sig = ev["attachments"]["signature"]
    assert (await api.shipment(created["code"]))["events"][1]["missing_attachments"] == [sig]
    r = await api.call(
        "PUT",
        f"/api/v1/attachments/{sig}",
        "courier1",
        content=PNG_1PX,
        headers={"content-type": "image/png"},
    )
    assert r.status_code == 201
    assert (await api.shipment(created["code"]))["events"][1]["missing_attachments"] == []
