"""Receipt, handover record and delivery receipt: Vietnamese text intact, QR decodable, signatures drawn."""

from __future__ import annotations

from pathlib import Path

import pypdfium2 as pdfium
import zxingcpp

from tests.api.conftest import PNG_1PX

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


async def _carried(api):
    """A submission picked up (fee collected) and handed to the one-stop shop, signature uploaded."""
    created = await api.create_shipment()
    await api.assign(created["code"])
    e1 = await api.event("courier1", created["code"], "picked_up", created["head"])
    e2 = await api.event(
        "courier1",
        created["code"],
        "delivered",
        e1["hash"],
        counterparty={"name": "Phạm Minh Tuấn", "role": "clerk"},
        data={},
    )
    await api.sync("courier1", [e1, e2])
    r = await api.call(
        "PUT",
        f"/api/v1/attachments/{e2['attachments']['signature']}",
        "courier1",
        content=PNG_1PX,
        headers={"content-type": "image/png"},
    )
    assert r.status_code in (200, 201)
    return created


def _pages(pdf: bytes, name: str) -> tuple[str, list[str]]:
    doc = pdfium.PdfDocument(pdf)
    text, found = "", []
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for i, page in enumerate(doc):
        text += page.get_textpage().get_text_range()
        img = page.render(scale=2).to_pil()
        img.save(ARTIFACTS / f"{name}-{i + 1}.png")
        found += [r.text for r in zxingcpp.read_barcodes(img, formats=zxingcpp.BarcodeFormat.QRCode)]
    return text, found


async def test_receipt(api):
    created = await _carried(api)
    r = await api.call(
        "POST", f"/api/v1/shipments/{created['code']}/receipt.pdf", "clerk", json={"pin": created["pin"]}
    )
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    text, qrs = _pages(r.content, "receipt")
    assert qrs == [created["tracking_url"]]
    for words in (
        "PHIẾU GỬI HỒ SƠ",
        "Nguyễn Thị Bích",
        "Tờ khai đăng ký khai sinh",
        "bản chính",
        "Phí, lệ phí đã thu hộ: 50.000 đồng",
        created["pin"],
        "Đăng ký khai sinh",
    ):
        assert words in text, words
    wrong = "000000" if created["pin"] != "000000" else "111111"
    r = await api.call(
        "POST", f"/api/v1/shipments/{created['code']}/receipt.pdf", "clerk", json={"pin": wrong}
    )
    assert r.status_code == 400 and "PIN" in r.json()["detail"]


async def test_handover_record_and_delivery_receipt(api):
    a, b = await _carried(api), await _carried(api)
    r = await api.call("POST", "/api/v1/handovers.pdf", "shopclerk", json={"codes": [a["code"], b["code"]]})
    assert r.status_code == 403  # the shop's clerk sees only shipments addressed to the shop
    r = await api.call("POST", "/api/v1/handovers.pdf", "dispatcher", json={"codes": [a["code"], b["code"]]})
    assert r.status_code == 200
    text, qrs = _pages(r.content, "handover")
    assert sorted(qrs) == sorted([a["tracking_url"], b["tracking_url"]])
    for words in ("BIÊN BẢN GIAO NHẬN HỒ SƠ", "Nguyễn Văn Hùng", "Phạm Minh Tuấn", "BÊN GIAO", "BÊN NHẬN"):
        assert words in text, words
    fresh = await api.create_shipment()
    r = await api.call("POST", "/api/v1/handovers.pdf", "dispatcher", json={"codes": [fresh["code"]]})
    assert r.status_code == 409 and "not been handed over" in r.json()["detail"]

    r = await api.call("GET", f"/api/v1/shipments/{a['code']}/delivery.pdf", "dispatcher")
    assert r.status_code == 200
    text, qrs = _pages(r.content, "delivery")
    assert qrs == [a["tracking_url"]] and "PHIẾU BÁO PHÁT" in text and "cách địa chỉ" in text
    r = await api.call("GET", f"/api/v1/shipments/{fresh['code']}/delivery.pdf", "dispatcher")
    assert r.status_code == 409
