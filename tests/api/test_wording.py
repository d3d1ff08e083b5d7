"""The words on printed and shown documents (issue 15 item 6), in PRODUCT.md's terms."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pypdfium2 as pdfium

from tests.api.test_citizen import _delivered_result
from tests.api.test_console import console_login


def _text(pdf: bytes) -> str:
    raw = "".join(p.get_textpage().get_text_range() for p in pdfium.PdfDocument(pdf))
    return " ".join(raw.split())


def _path(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


async def test_printed_documents_name_each_party_for_what_it_is(api):
    sub, res = await _delivered_result(api)
    r = await api.call("POST", f"/api/v1/shipments/{res['code']}/receipt.pdf", "shopclerk", json={})
    assert r.status_code == 200, r.text
    text = _text(r.content)
    assert "Cơ quan tiếp nhận" not in text
    assert "Cơ quan trả kết quả Trung tâm Phục vụ hành chính công tỉnh Gia Lai" in text
    assert "Người nhận Nguyễn Thị Bích" in text
    r = await api.call("POST", f"/api/v1/shipments/{sub['code']}/receipt.pdf", "clerk", json={})
    text = _text(r.content)
    assert "Người gửi Nguyễn Thị Bích" in text
    assert "Cơ quan tiếp nhận Trung tâm Phục vụ hành chính công tỉnh Gia Lai" in text

    # the result handed to the citizen at home: the place is her address, she is no unit's staff
    r = await api.call("POST", "/api/v1/handovers.pdf", "admin", json={"codes": [res["code"]]})
    assert r.status_code == 200, r.text
    text = _text(r.content)
    assert "tại Nguyễn Thị" not in text and "(citizen)" not in text and "TTHCC-GL" not in text
    assert "tại địa chỉ người nhận: 12 Trần Hưng Đạo, Phường Pleiku, Tỉnh Gia Lai" in text
    assert "Bên nhận: Nguyễn Thị Bích (công dân)" in text
    # the submission handed to the shop's clerk: the role in Vietnamese, and the clerk's unit
    r = await api.call("POST", "/api/v1/handovers.pdf", "admin", json={"codes": [sub["code"]]})
    text = _text(r.content)
    assert "(clerk)" not in text
    assert "Bên nhận: Phạm Minh Tuấn (cán bộ tiếp nhận)" in text


async def test_the_console_shipment_page_speaks_vietnamese(api):
    _, res = await _delivered_result(api)
    await console_login(api.client, "admin")
    page = await api.client.get(f"/console/shipments/{res['code']}")
    assert page.status_code == 200
    html = page.text
    assert "recorded by the server" not in html
    assert re.search(r'id="no-fix-1">Không có GPS: máy chủ tự ghi nhận sự kiện này', html)
    identity = re.search(r'<div id="identity-\d+">([^<]*)</div>', html).group(1)
    assert identity == "Xác minh danh tính: 4 số cuối CCCD"
    page = await api.client.get(f"/console/shipments/{res['code']}?lang=en")
    assert "Identity check: last 4 digits of the ID card" in page.text


async def test_the_citizen_page_names_the_sender_and_preselects_no_rating(api):
    only = await api.create_shipment("submission")
    r = await api.client.get(_path(only["tracking_url"]))
    assert re.search(r'<span id="party">Người gửi: N', r.text), r.text[:1500]
    sub, res = await _delivered_result(api)
    r = await api.client.get(_path(res["tracking_url"]))
    assert re.search(r'<span id="party">Người nhận: N', r.text)
    stars = re.search(r'<div class="stars">(.*?)</div>', r.text, re.S).group(1)
    assert stars.count('type="radio"') == 5 and "checked" not in stars and "required" in stars
    # a form sent without a rating is refused, nothing recorded
    token = re.search(r'name="_csrf_token" value="([^"]+)"', r.text).group(1)
    r = await api.client.post(f"/t/{res['code']}/confirm", data={"pin": sub["pin"], "_csrf_token": token})
    assert r.status_code == 422 and "Hãy chọn điểm đánh giá từ 1 đến 5" in r.text
