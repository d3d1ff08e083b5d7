from __future__ import annotations

import asyncio
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


def _image(mode: str, size: tuple[int, int], fmt: str, noise: bool = False) -> bytes:
    import os

    from PIL import Image

    if noise:
        img = Image.frombytes(mode, size, os.urandom(size[0] * size[1] * len(mode)))
    else:
        img = Image.new(mode, size, 0)
    out = io.BytesIO()
    img.save(out, format=fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    return out.getvalue()


def _png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims width×height, over one byte of pixel data."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00"))
        + chunk(b"IEND", b"")
    )


async def _put(api, body: bytes, content_type: str, user: str = "courier1"):
    return await api.call(
        "PUT",
        f"/api/v1/attachments/{hashlib.sha256(body).hexdigest()}",
        user,
        content=body,
        headers={"content-type": content_type},
    )


async def test_images_are_capped_in_pixels_before_they_are_decoded(api, db):
    await api.login("courier1")
    before = await table_counts(db)
    huge = _image("1", (13000, 13000), "PNG")  # small on the wire, 169 megapixels
    assert len(huge) < 200 * 1024
    r = await _put(api, huge, "image/png")
    assert r.status_code == 413, r.text
    detail = r.json()["detail"]
    assert "signature" in detail and "2,000,000 pixels" in detail and "13000×13000" in detail
    bomb = _png_claiming(20000, 20000)  # Pillow refuses to open it at all (DecompressionBombError)
    r = await _put(api, bomb, "image/png")
    assert r.status_code == 413 and "2,000,000 pixels" in r.json()["detail"]
    photo = _image("RGB", (4100, 3000), "JPEG")
    r = await _put(api, photo, "image/jpeg")
    assert r.status_code == 413 and "photo" in r.json()["detail"] and "12,000,000" in r.json()["detail"]
    statuses = [
        r.status_code for r in await asyncio.gather(*(_put(api, huge, "image/png") for _ in range(5)))
    ]
    assert statuses == [413] * 5
    assert await table_counts(db) == before
    ok = _image("L", (1600, 1200), "PNG")
    assert (await _put(api, ok, "image/png")).status_code == 201
    assert (await _put(api, _image("RGB", (4000, 3000), "JPEG"), "image/jpeg")).status_code == 201


async def test_json_attachments_are_bounded_in_depth(api, db):
    await api.login("courier1")
    before = await table_counts(db)
    deep = b"[" * 100_000 + b"]" * 100_000
    r = await _put(api, deep, "application/json")
    assert r.status_code == 422 and "32 levels" in r.json()["detail"]
    r = await _put(api, b'{"a":' * 40 + b"1" + b"}" * 40, "application/json")
    assert r.status_code == 422 and "32 levels" in r.json()["detail"]
    assert await table_counts(db) == before
    strokes = b'{"strokes": [[[1, 2], [3, 4]], [[5, 6]]]}'
    assert (await _put(api, strokes, "application/json")).status_code == 201


async def test_served_attachments_are_downloads_named_by_hash(api):
    assert (await _put(api, PNG_1PX, "image/png")).status_code == 201
    digest = hashlib.sha256(PNG_1PX).hexdigest()
    # no event names this upload yet: its uploader and auditors may read it
    got = await api.call("GET", f"/api/v1/attachments/{digest}", "auditor")
    assert got.headers["x-content-type-options"] == "nosniff"
    assert got.headers["content-disposition"] == f'attachment; filename="{digest}.png"'


async def test_unreferenced_uploads_are_capped_per_account(settings):
    """Parallel uploads that no event references stop at the cap; syncing the events that use
    them makes room again."""
    from litestar.testing import AsyncTestClient

    from server.app import create_app
    from tests.api.conftest import Api

    photos = [_image("RGB", (200, 200), "JPEG", noise=True) for _ in range(10)]
    size = max(len(p) for p in photos)
    cap = size * 9 // 2  # room for four
    app = create_app(settings.with_(max_unreferenced_bytes=cap))
    async with AsyncTestClient(app, base_url="http://testserver") as client:
        api = Api(client)
        await api.login("courier1")
        responses = await asyncio.gather(*(_put(api, p, "image/jpeg") for p in photos))
        created = [p for p, r in zip(photos, responses, strict=True) if r.status_code == 201]
        refused = [r for r in responses if r.status_code == 429]
        assert len(created) + len(refused) == 10
        assert sum(len(p) for p in created) <= cap < sum(len(p) for p in created) + size * 2
        assert "no custody event references" in refused[0].json()["detail"]
        assert "Sync the events" in refused[0].json()["detail"]
        assert len(refused) >= 5
        # another account is not held back
        assert (await _put(api, photos[-1], "image/jpeg", user="courier2")).status_code in (200, 201)
        ship = await api.create_shipment()
        await api.assign(ship["code"])
        hashes = [hashlib.sha256(p).hexdigest() for p in created]
        ev = await api.event(
            "courier1",
            ship["code"],
            "picked_up",
            ship["head"],
            attachments={"signature": hashlib.sha256(PNG_1PX).hexdigest(), "photos": hashes},
        )
        assert (await api.sync("courier1", [ev])).status_code == 200
        rest = [p for p in photos if p not in created]
        assert (await _put(api, rest[0], "image/jpeg")).status_code == 201


async def test_a_huge_stored_signature_is_not_decoded_for_the_pdf(api, db, settings, monkeypatch):
    """One stored before the pixel cap (13000×13000) prints as a note, in a worker thread."""
    import threading

    from server.custody import attachments
    from server.labels import documents, service

    huge = _image("1", (13000, 13000), "PNG")
    digest = hashlib.sha256(huge).hexdigest()
    await api.login("courier1")
    await attachments.store(db, settings.attachments_dir, digest, "image/png", huge, api.user_ids["courier1"])
    ship = await api.create_shipment()
    await api.assign(ship["code"])
    e1 = await api.event("courier1", ship["code"], "picked_up", ship["head"])
    e2 = await api.event(
        "courier1",
        ship["code"],
        "delivered",
        e1["hash"],
        attachments={"signature": digest, "photos": []},
    )
    assert (await api.sync("courier1", [e1, e2])).status_code == 200
    threads = []
    real = documents.delivery_pdf

    def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        threads.append(threading.current_thread())
        return real(*args, **kwargs)

    monkeypatch.setattr(service, "delivery_pdf", spy)
    r = await api.call("GET", f"/api/v1/shipments/{ship['code']}/delivery.pdf", "dispatcher")
    assert r.status_code == 200 and r.content.startswith(b"%PDF")
    assert threads and threads[0] is not threading.main_thread()
    assert documents.safe_image(huge) is None
    small = documents.safe_image(_image("L", (1600, 1200), "PNG"))
    assert small is not None and max(small.size) <= documents.SIGNATURE_MAX_SIDE
    assert documents.safe_image(_png_claiming(20000, 20000)) is None
