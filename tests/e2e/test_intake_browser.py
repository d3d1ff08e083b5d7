# ruff: noqa: E501  (a CSV file reads better one line per row)
"""Batch intake and the citizen's receipt in Debian's chromium against a real `hoso serve`:
the clerk downloads the template, uploads a CSV, sees the new shipments with their PINs,
prints one receipt with its PIN, then reprints it from the shipment page without. Screenshots
(and the two receipts rendered to PNG) go to tests/artifacts/."""

from __future__ import annotations

from datetime import timedelta

import pypdfium2 as pdfium
import pytest

from bench._harness import PASSWORD, Server
from shared.timeutil import utcnow

VIEWPORT = {"width": 1366, "height": 900}


@pytest.fixture(scope="module")
def server():
    with Server("sqlite") as srv:
        yield srv


def _pdf_text_and_png(pdf: bytes, png_path) -> str:
    doc = pdfium.PdfDocument(pdf)
    doc[0].render(scale=1.5).to_pil().save(png_path)
    return " ".join(doc[0].get_textpage().get_text_range().split())


def test_batch_upload_and_receipts_in_the_browser(browser, server, artifacts, tmp_path):
    due = (utcnow() + timedelta(days=6)).strftime("%d/%m/%Y")
    csv_file = tmp_path / "ho-so-hom-nay.csv"
    csv_file.write_text(
        "\ufeffMã hồ sơ;Loại bưu gửi;Tên thủ tục;Họ tên công dân;Điện thoại;Địa chỉ;Xã/phường;Tỉnh/thành phố;Hạn trả\r\n"
        f"H21-0001;Kết quả;Đăng ký khai sinh;Nguyễn Thị Bích;0905123456;12 Trần Hưng Đạo;Phường Pleiku;Gia Lai;{due}\r\n"
        f"H21-0002;Kết quả;Cấp đổi giấy phép lái xe;Trần Văn Nam;0905123457;3 Lê Lợi;Phường Pleiku;Gia Lai;{due}\r\n",
        encoding="utf-8",
    )
    ctx = browser.new_context(viewport=VIEWPORT, device_scale_factor=1, locale="vi-VN", accept_downloads=True)
    page = ctx.new_page()
    page.goto(f"{server.base}/console/login")
    page.fill("#username", "clerk")
    page.fill("#password", PASSWORD)
    page.get_by_role("button", name="Đăng nhập").click()
    page.wait_for_url("**/console/register")
    page.click("nav >> text=Nhập từ tệp")
    page.wait_for_selector("#intake-form")
    with page.expect_download() as dl:
        page.click("#template-xlsx")
    assert dl.value.suggested_filename == "mau-tiep-nhan.xlsx"
    page.set_input_files("#intake-file", str(csv_file))
    page.click("#intake-submit")
    page.wait_for_selector("#intake-done")
    assert "Đã đăng ký 2 bưu gửi" in page.inner_text("#intake-done")
    page.screenshot(path=str(artifacts / "intake-result.png"), full_page=True)
    first_row = page.locator("#registered tbody tr").first
    pin = first_row.locator("td").nth(3).inner_text().strip()
    code = first_row.locator("td").nth(2).inner_text().replace(" ", "")
    assert len(pin) == 6 and len(code) == 13
    # the print button posts the PIN to the receipt in a new tab
    with ctx.expect_event("response", lambda r: r.url.endswith(f"/{code}/receipt.pdf")) as got:
        first_row.locator("button").click()
    receipt = got.value
    assert receipt.status == 200 and receipt.headers["content-type"] == "application/pdf"
    # the browser's PDF viewer keeps the bytes to itself: the same form, posted by the page's context
    form = first_row.locator("form")
    fields = {
        "pin": form.locator("input[name=pin]").get_attribute("value") or "",
        "_csrf_token": form.locator("input[name=_csrf_token]").get_attribute("value") or "",
    }
    assert fields["pin"] == pin
    again_with_pin = page.request.post(f"{server.base}/console/shipments/{code}/receipt.pdf", form=fields)
    assert again_with_pin.status == 200
    text = _pdf_text_and_png(again_with_pin.body(), artifacts / "receipt-with-pin.png")
    assert f"Mã PIN tra cứu và xác nhận: {pin}" in text
    # later, from the shipment page: the reprint has no PIN
    page.goto(f"{server.base}/console/shipments/{code}")
    link = page.locator("#receipt-reprint")
    assert link.inner_text() == "In lại phiếu gửi (không có mã PIN)"
    page.screenshot(path=str(artifacts / "intake-shipment-reprint.png"))
    again = page.request.get(f"{server.base}/console/shipments/{code}/receipt.pdf")
    assert again.status == 200
    text = _pdf_text_and_png(again.body(), artifacts / "receipt-reprint.png")
    assert pin not in text and "Bản in lại: không có mã PIN" in text
    # the same file again: nothing new, both rows listed with their shipments
    page.goto(f"{server.base}/console/intake")
    page.set_input_files("#intake-file", str(csv_file))
    page.click("#intake-submit")
    page.wait_for_selector("#known")
    assert "Đã đăng ký 0 bưu gửi" in page.inner_text("#intake-done")
    assert page.locator("#known tbody tr").count() == 2
    page.screenshot(path=str(artifacts / "intake-again.png"), full_page=True)
    # one shipment registered from the form: the PIN and its print button, the reprint link
    page.goto(f"{server.base}/console/register")
    page.fill("#sender_name", "Nguyễn Thị Bích")
    page.fill("#sender_address", "12 Trần Hưng Đạo")
    page.fill("#recipient_name", "UBND phường Pleiku")
    page.fill("#due_date", (utcnow() + timedelta(days=4)).date().isoformat())
    page.click("#register-submit")
    page.wait_for_selector("#receipt-pin")
    assert page.inner_text("#receipt-pin") == "In phiếu gửi (có mã PIN)"
    assert page.locator("#receipt-pin-form input[name=pin]").get_attribute("value") == page.inner_text("#pin")
    assert page.locator("#receipt-reprint").is_visible()
    page.locator("#created").screenshot(path=str(artifacts / "register-receipt-pin.png"))
    ctx.close()
