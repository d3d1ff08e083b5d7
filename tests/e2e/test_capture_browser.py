"""Pages photographed in the courier app (issue 18) in Debian's chromium, end to end: `hoso
serve` and the Flet app as real processes; the fake camera first shows the envelope's label
(scanned, then the pickup signed), then a page image — Chromium reads its fake camera from one
Y4M file per launch, so the browser is restarted for each page with the next file (the app
keeps each accepted page in its outbox at once, and Today offers to go on). A blurred page is
refused on the phone with the retake box; two sharp pages are sent, the server binds the PDF
and signs `digitised`, and the console's shipment page shows the thumbnails and the PDF."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from bench._harness import PASSWORD, Server
from tests.e2e.camera import write_y4m
from tests.e2e.conftest import courier_app, require_chromium
from tests.e2e.test_courier_browser import (
    CITIZEN,
    _camera_on_label,
    _open,
    _register,
    _shot,
    _sign,
    _signed_in,
    _tap_below,
    _tap_until,
    _type_into,
    _wait_text,
)
from tests.pages_fixture import blurred, page_image

FRAME = (1280, 720)  # what the fake camera shows: a sheet on a desk, in the 16:9 the camera takes


@pytest.fixture(scope="module")
def server():
    with Server("sqlite") as srv:
        yield srv


@pytest.fixture(scope="module")
def app(server, tmp_path_factory):
    data = tmp_path_factory.mktemp("capture")
    with courier_app(server.base, data, "capture-app.log") as url:
        yield url


def _page_camera(n: int, path: Path, *, blur: bool = False) -> Path:
    img = page_image(n, size=FRAME)
    return write_y4m(blurred(img, 8) if blur else img, path)


def _resume(page, n: int) -> None:
    """Today offers to go on with the pages: tap it, wait for the camera at page n."""
    _signed_in(page)
    _wait_text(page, "Tiếp tục chụp trang hồ sơ")
    resume = page.locator('[flt-semantics-identifier="capture-resume"]')
    _tap_until(page, resume.click, f"Chụp trang {n}")
    page.wait_for_timeout(2500)  # the preview starts


def _shoot(url: str, camera: Path, n: int, expect: str, shot: Path) -> None:
    """Reopen the app with this camera, go on with the pages, shoot page n, read the verdict."""
    pw, browser, page = _open(url, camera=camera)
    try:
        _resume(page, n)
        page.get_by_role("button", name=f"Chụp trang {n}").click()
        _wait_text(page, expect, timeout=45_000)
        _shot(page, shot)
    finally:
        browser.close()
        pw.stop()


def test_two_pages_captured_in_the_app_one_blurred_refused(server, app, artifacts, tmp_path):
    require_chromium()
    url = app
    sub = _register(server, "submission")
    code = sub["code"]

    # the pickup at the citizen's door, scanned from the label; then the pages are offered
    pw, browser, page = _open(url, camera=_camera_on_label(server, code, tmp_path / "label.y4m"))
    try:
        _signed_in(page)
        _wait_text(page, CITIZEN["name"])
        page.get_by_role("button", name="Quét mã bưu gửi").click()
        _wait_text(page, "Thành phần hồ sơ đã nhận", timeout=45_000)
        page.get_by_role("button", name="Tờ khai đăng ký khai sinh").click()
        page.get_by_role("button", name="Giấy chứng sinh (bản chính)").click()
        _type_into(page, "4 số cuối CCCD", "4821")
        _sign(page)
        _tap_below(page, "Hoàn tất nhận")
        _wait_text(page, "Chụp trang 1")
        _wait_text(page, "Bỏ qua — quầy sẽ quét sau")
        page.wait_for_timeout(2500)  # the pickup's sync and the camera's start settle
        _wait_text(page, "Chụp trang 1")
        _shot(page, artifacts / "capture-01-offered.png")
    finally:
        browser.close()
        pw.stop()

    _shoot(url, _page_camera(1, tmp_path / "p1.y4m"), 1, "Trang 1 đạt", artifacts / "capture-02-page1.png")
    _shoot(
        url,
        _page_camera(2, tmp_path / "p2-blurred.y4m", blur=True),
        2,
        "Trang 2 chưa đạt: mờ — độ nét",
        artifacts / "capture-03-retake.png",
    )
    # the sharp page 2, then done
    pw, browser, page = _open(url, camera=_page_camera(2, tmp_path / "p2.y4m"))
    try:
        _resume(page, 2)
        page.get_by_role("button", name="Chụp trang 2").click()
        _wait_text(page, "Trang 2 đạt", timeout=45_000)
        _wait_text(page, "Xong (2 trang)")
        _shot(page, artifacts / "capture-04-two-pages.png")
        _tap_below(page, "Xong (2 trang)")
        _wait_text(page, "Hôm nay")
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            ship = server.http.get(f"/api/v1/shipments/{code}", headers=server.auth("dispatcher")).json()
            if ship["events"][-1]["event"]["type"] == "digitised":
                break
            time.sleep(1)
        _shot(page, artifacts / "capture-05-today-after.png")
    finally:
        browser.close()
        pw.stop()
    types = [e["event"]["type"] for e in ship["events"]]
    assert types == ["registered", "picked_up", "digitised"], (types, ship["rejected"])
    digitised = ship["events"][-1]["event"]
    assert (
        digitised["actor"] == f"courier:{server.courier_id}" and len(digitised["data"]["pages"]["pages"]) == 2
    )

    # the console's shipment page: the two thumbnails, the PDF, who captured them
    from playwright.sync_api import sync_playwright

    from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS
    from tests.e2e.test_console_browser import VIEWPORT, _wait_images

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = b.new_context(viewport=VIEWPORT, locale="vi-VN").new_page()
            page.goto(f"{server.base}/console/login")
            page.fill("#username", "dispatcher")
            page.fill("#password", PASSWORD)
            page.get_by_role("button", name="Đăng nhập").click()
            page.goto(f"{server.base}/console/shipments/{code}")
            page.wait_for_selector("#pages .thumb", timeout=30_000)
            assert page.locator("#pages .thumb").count() == 2
            _wait_images(page, "#pages .thumb")
            assert page.locator("#pages a.pdf").count() == 1
            assert page.locator('#timeline li[data-type="digitised"]').count() == 1
            page.locator("#pages").scroll_into_view_if_needed()
            page.screenshot(path=str(artifacts / "capture-06-console-pages.png"))
            pdf = page.request.get(f"{server.base}{page.locator('#pages a.pdf').get_attribute('href')}")
            assert pdf.ok and pdf.body().startswith(b"%PDF-")
            (artifacts / "capture-dossier.pdf").write_bytes(pdf.body())
        finally:
            b.close()
