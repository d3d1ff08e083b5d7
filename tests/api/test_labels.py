"""Labels decode with a real QR reader, from PNG and from every rendered PDF page."""

from __future__ import annotations

import io
from urllib.parse import urlsplit

import pypdfium2 as pdfium
import zxingcpp
from PIL import Image


def _decode(img: Image.Image) -> list[str]:
    return sorted(r.text for r in zxingcpp.read_barcodes(img, formats=zxingcpp.BarcodeFormat.QRCode))


async def test_png_label_decodes_to_the_signed_url_and_opens_the_page(api):
    created = await api.create_shipment()
    r = await api.call("GET", f"/api/v1/shipments/{created['code']}/label.png", "clerk")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    img = Image.open(io.BytesIO(r.content))
    assert abs(img.size[0] - 800) <= 1 and abs(img.size[1] - 1200) <= 1  # 100 x 150 mm at 203 dpi
    [url] = _decode(img)
    assert url == created["tracking_url"]
    [result] = zxingcpp.read_barcodes(img, formats=zxingcpp.BarcodeFormat.QRCode)
    assert result.format == zxingcpp.BarcodeFormat.QRCode
    assert str(result.ec_level) in ("Q", "H")
    page = await api.client.get(urlsplit(url).path + "?" + urlsplit(url).query)
    assert page.status_code == 200 and 'data-authentic="true"' in page.text


async def test_pdf_labels_and_a4_sheets_decode_on_every_page(api):
    made = [await api.create_shipment() for _ in range(6)]
    r = await api.call("GET", f"/api/v1/shipments/{made[0]['code']}/label.pdf", "clerk")
    assert r.status_code == 200 and r.content.startswith(b"%PDF")
    doc = pdfium.PdfDocument(r.content)
    assert len(doc) == 1
    w, h = doc[0].get_size()
    assert round(w / 72 * 25.4) == 100 and round(h / 72 * 25.4) == 150
    assert _decode(doc[0].render(scale=3).to_pil()) == [made[0]["tracking_url"]]
    text = doc[0].get_textpage().get_text_range()
    assert "Hạn trả" in text and "Quét mã QR" in text  # Vietnamese extracted intact from the embedded font

    r = await api.call("POST", "/api/v1/labels.pdf", "clerk", json={"codes": [m["code"] for m in made]})
    assert r.status_code == 200
    sheet = pdfium.PdfDocument(r.content)
    assert len(sheet) == 2
    found = []
    for page in sheet:
        found += _decode(page.render(scale=3).to_pil())
    assert sorted(found) == sorted(m["tracking_url"] for m in made)


async def test_label_errors(api):
    created = await api.create_shipment()
    assert (
        await api.call("GET", f"/api/v1/shipments/{created['code']}/label.png", "courier1")
    ).status_code == 403
    r = await api.call("POST", "/api/v1/labels.pdf", "clerk", json={"codes": ["1234567890123"]})
    assert r.status_code == 404
    r = await api.call("POST", "/api/v1/labels.pdf", "clerk", json={"codes": [created["code"]] * 2})
    assert r.status_code == 400
    r = await api.call("POST", "/api/v1/labels.pdf", "clerk", json={"codes": []})
    assert r.status_code == 400
    r = await api.call("POST", "/api/v1/labels.pdf", "clerk", json={"codes": [created["code"]] * 1001})
    assert r.status_code == 413
