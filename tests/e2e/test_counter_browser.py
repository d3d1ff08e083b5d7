"""Counter reception in Debian's chromium against a real `hoso serve` (issue 18): a clerk picks
the shop and the procedure, ticks the checklist (one paper missing: refused until the clerk
chooses to receive it incomplete), the citizen signs with the mouse on the canvas, the dossier is
registered with channel "counter" and its receipt (phiếu tiếp nhận) opens as a PDF with the PIN.
Screenshots go to tests/artifacts/ (counter-*.png)."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest

from bench._harness import PASSWORD, Server
from shared.timeutil import to_wire, utcnow
from tests.e2e.test_console_browser import VIEWPORT

KS1 = {
    "name": "Đăng ký khai sinh",
    "field": "Tư pháp - Hộ tịch",
    "components": ["Tờ khai đăng ký khai sinh", "Giấy chứng sinh (bản chính)", "CCCD của cha hoặc mẹ"],
    "fee_vnd": 8_000,
}


@pytest.fixture(scope="module")
def server():
    with Server("sqlite") as srv:
        srv._cli(
            [
                "unit",
                "add",
                "TTHCC-1",
                "--name",
                "Trung tâm Phục vụ hành chính công",
                "--kind",
                "one_stop_shop",
            ]
        )
        srv._cli(["user", "add", "shopclerk", "--role", "clerk", "--unit", "TTHCC-1"], stdin=PASSWORD + "\n")
        srv.tokens["shopclerk"] = srv._login("shopclerk")
        r = srv.http.put("/api/v1/units/TTHCC-1/procedures/KS1", headers=srv.auth("shopclerk"), json=KS1)
        r.raise_for_status()
        yield srv


def _sign(page) -> None:
    page.locator("#sigpad").scroll_into_view_if_needed()
    box = page.locator("#sigpad").bounding_box()
    page.mouse.move(box["x"] + 40, box["y"] + 110)
    page.mouse.down()
    for i in range(1, 28):
        page.mouse.move(box["x"] + 40 + i * 15, box["y"] + 85 + (40 if i % 4 < 2 else -40), steps=3)
    page.mouse.up()
    page.mouse.move(box["x"] + 300, box["y"] + 140)
    page.mouse.down()
    page.mouse.move(box["x"] + 470, box["y"] + 135, steps=8)
    page.mouse.up()


def test_counter_reception_with_a_drawn_signature(browser, server, artifacts):
    import pypdfium2

    ctx = browser.new_context(viewport=VIEWPORT, device_scale_factor=1, locale="vi-VN")
    page = ctx.new_page()
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(f"{server.base}/console/login")
    page.fill("#username", "clerk")
    page.fill("#password", PASSWORD)
    page.get_by_role("button", name="Đăng nhập").click()
    page.get_by_role("link", name="Tại quầy", exact=True).click()
    page.select_option("#dest", "TTHCC-1")
    page.get_by_role("button", name="Chọn", exact=True).click()  # the shop's catalogue is listed
    page.select_option("#procedure-pick", "KS1")
    page.get_by_role("button", name="Chọn", exact=True).click()
    page.wait_for_selector("#checklist")
    assert page.locator("#fee").inner_text() == "8.000 ₫"
    page.get_by_label("Tờ khai đăng ký khai sinh").check()
    page.get_by_label("Giấy chứng sinh (bản chính)").check()  # the parent's ID card is missing
    page.fill("#citizen_name", "Nguyễn Thị Bích")
    page.fill("#citizen_id_last4", "4821")
    page.fill("#citizen_phone", "0905123456")
    page.select_option("#citizen_province", "Tỉnh Gia Lai")
    page.wait_for_function("document.querySelector('#citizen_commune').options.length > 1")
    page.select_option("#citizen_commune", "Phường Pleiku")
    page.fill("#citizen_address", "12 Trần Hưng Đạo")
    page.fill("#due_date", (utcnow() + timedelta(days=5)).date().isoformat())
    _sign(page)
    assert page.locator("input[name=signature_png]").input_value().startswith("data:image/png;base64,")
    page.screenshot(path=str(artifacts / "counter-form.png"), full_page=True)
    page.get_by_role("button", name="Tiếp nhận hồ sơ").click()
    page.wait_for_selector("#error")
    assert "CCCD của cha hoặc mẹ" in page.locator("#error").inner_text()
    page.screenshot(path=str(artifacts / "counter-missing.png"), full_page=True)
    # the ticks and the fields stay; the signature is drawn again, the choice made
    assert page.get_by_label("Giấy chứng sinh (bản chính)").is_checked()
    assert page.locator("#citizen_commune").input_value() == "Phường Pleiku"
    page.get_by_label("Tiếp nhận hồ sơ còn thiếu thành phần (công dân bổ sung sau)").check()
    _sign(page)
    page.get_by_role("button", name="Tiếp nhận hồ sơ").click()
    page.wait_for_selector("#received")
    code = page.locator("#new-code").inner_text().replace(" ", "")
    pin = page.locator("#pin").inner_text()
    assert "CCCD của cha hoặc mẹ" in page.locator("#missing").inner_text()
    page.screenshot(path=str(artifacts / "counter-received.png"), full_page=True)

    # the receipt opens in a new tab, in chromium's own PDF viewer
    wanted = f"/console/counter/{code}/receipt.pdf"
    with ctx.expect_page() as opened:
        page.get_by_role("button", name="In phiếu tiếp nhận (PDF)").click()
    tab = opened.value
    tab.wait_for_load_state()
    assert tab.url.endswith(wanted)
    tab.wait_for_timeout(1500)  # the viewer paints the page
    tab.screenshot(path=str(artifacts / "counter-receipt-tab.png"))
    # the same bytes the tab shows, posted with the form's own fields (the session, its CSRF token)
    fields = {"_csrf_token": page.locator("#receipt-form input[name=_csrf_token]").input_value(), "pin": pin}
    resp = page.request.post(f"{server.base}{wanted}", form=fields)
    assert resp.status == 200 and resp.headers["content-type"].startswith("application/pdf")
    pdf = pypdfium2.PdfDocument(io.BytesIO(resp.body()))
    text = pdf[0].get_textpage().get_text_range()
    assert "PHIẾU TIẾP NHẬN HỒ SƠ" in text and pin in text and "8.000 đồng" in text
    pdf[0].render(scale=1.4).to_pil().save(artifacts / "counter-receipt.png")

    detail = server.http.get(f"/api/v1/shipments/{code}", headers=server.auth("dispatcher")).json()
    assert detail["channel"] == "counter" and detail["fee_vnd"] == 8_000
    [ev] = [e["event"] for e in detail["events"]]
    assert ev["data"]["missing_components"] == ["CCCD của cha hoặc mẹ"] and ev["attachments"]["signature"]
    page.goto(f"{server.base}/console/shipments/{code}")
    page.screenshot(path=str(artifacts / "counter-shipment.png"), full_page=True)
    assert page.locator("#missing-components").inner_text() == "CCCD của cha hoặc mẹ"

    # the shop registers the result; the citizen collects it at the shop's desk
    due = to_wire(utcnow() + timedelta(days=4))
    result = server.http.post(
        "/api/v1/shipments",
        headers=server.auth("shopclerk"),
        json={"kind": "result", "parent": code, "due_at": due, "procedure": KS1["name"]},
    )
    result.raise_for_status()
    res = result.json()["code"]
    page.get_by_role("button", name="Đăng xuất").click()
    page.fill("#username", "shopclerk")
    page.fill("#password", PASSWORD)
    page.get_by_role("button", name="Đăng nhập").click()
    page.get_by_role("link", name="Tại quầy", exact=True).click()
    page.get_by_role("link", name="Trả kết quả tại quầy").click()
    page.fill("#collect-code", res)
    page.get_by_role("button", name="Tìm kết quả").click()
    page.wait_for_selector("#collect")
    page.fill("#id_last4", "4812")  # two digits swapped: refused
    _sign(page)
    page.get_by_role("button", name="Trả kết quả", exact=True).click()
    page.wait_for_selector("#error")
    assert "không khớp" in page.locator("#error").inner_text()
    page.screenshot(path=str(artifacts / "counter-collect-mismatch.png"), full_page=True)
    page.fill("#id_last4", "4821")
    _sign(page)
    page.get_by_role("button", name="Trả kết quả", exact=True).click()
    page.wait_for_selector("#collected")
    page.screenshot(path=str(artifacts / "counter-collected.png"), full_page=True)
    detail = server.http.get(f"/api/v1/shipments/{res}", headers=server.auth("shopclerk")).json()
    assert detail["state"] == "collected" and detail["events"][-1]["flags"] == []
    page.goto(f"{server.base}/t/{res}")
    assert "Đã nhận kết quả tại quầy" in page.content()
    page.screenshot(path=str(artifacts / "counter-citizen.png"), full_page=True)
    ctx.close()
    outside = [u for u in requests if not u.startswith(server.base)]
    assert outside == [], outside
