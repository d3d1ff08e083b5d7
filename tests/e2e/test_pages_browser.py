"""Digitising at the counter in Debian's chromium against a real `hoso serve`: a clerk uploads
a dossier's page photos on the shipment page; a blurred page is refused with its score and a
retake prompt; the sharp set becomes thumbnails and a PDF. Screenshots go to tests/artifacts/."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bench._harness import PASSWORD, Server
from tests.e2e.test_console_browser import VIEWPORT, _register, _wait_images
from tests.pages_fixture import blurred, jpeg, page_image


@pytest.fixture(scope="module")
def server():
    with Server("sqlite") as srv:
        yield srv


def _files(pages: list[bytes]) -> list[dict]:
    return [{"name": f"trang-{n}.jpg", "mimeType": "image/jpeg", "buffer": b} for n, b in enumerate(pages, 1)]


def test_clerk_digitises_a_dossier_in_the_browser(browser, server, artifacts):
    made = _register(server, timedelta(days=2))
    ctx = browser.new_context(viewport=VIEWPORT, device_scale_factor=1, locale="vi-VN")
    page = ctx.new_page()
    page.goto(f"{server.base}/console/login")
    page.fill("#username", "clerk")
    page.fill("#password", PASSWORD)
    page.get_by_role("button", name="Đăng nhập").click()
    page.goto(f"{server.base}/console/shipments/{made['code']}")
    good = [jpeg(page_image(1)), jpeg(page_image(2, tilt=3)), jpeg(page_image(3))]

    page.set_input_files(
        "#pages-form input[name=page]", _files([good[0], jpeg(blurred(page_image(2))), good[2]])
    )
    page.locator("#pages-form button[type=submit]").click()
    error = page.locator("#pages-error")
    assert "Trang 2 bị mờ (độ nét" in error.inner_text() and "retake" in error.inner_text()
    assert "Trang 1" not in error.inner_text()
    error.scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts / "pages-retake.png"))

    page.set_input_files("#pages-form input[name=page]", _files(good))
    assert page.url.endswith(f"/console/shipments/{made['code']}#pages")  # not .../pages: no resend
    page.locator("#pages-form button[type=submit]").click()
    page.wait_for_selector("#pages .thumb", timeout=60_000)
    assert page.url.endswith(f"/console/shipments/{made['code']}#pages")
    assert page.locator("#pages-error").count() == 0
    assert page.locator("#pages .thumb").count() == 3
    _wait_images(page, "#pages .thumb")
    assert (
        "Lê Thị Hoa" in page.locator("#pages").inner_text() or "clerk:" in page.locator("#pages").inner_text()
    )
    assert page.locator("#pages a.pdf").count() == 1
    assert page.locator('#timeline li[data-type="digitised"]').count() == 1
    page.locator("#pages").scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts / "pages-shipment.png"))
    ctx.close()
