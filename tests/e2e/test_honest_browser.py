"""Issue 19 items 5, 7, 8, 9 in chromium at 360×640: nothing fetched from outside, honest
status, the return after three failed attempts, photos stored as the back camera sees them.

Screenshots go to tests/artifacts/honest-*.png.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from bench._harness import PASSWORD, Server
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, courier_app, require_chromium
from tests.e2e.test_courier_browser import CITIZEN, HOME, _register, _shot, _type_into, _wait_text

SMALL = (360, 640)
LOOPBACK = {"127.0.0.1", "localhost", "[::1]", "::1"}


@pytest.fixture(scope="module")
def server():
    with Server("sqlite") as srv:
        yield srv


@contextlib.contextmanager
def _phone(url: str, camera: Path | None = None, outside: list[str] | None = None):  # type: ignore[no-untyped-def]
    """Chromium at 360×640 with a fake GPS (and camera); every request leaving loopback is
    aborted and, when `outside` is given, recorded there."""
    from playwright.sync_api import sync_playwright

    args = [*CHROMIUM_ARGS, "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]
    if camera is not None:
        args.append(f"--use-file-for-fake-video-capture={camera}")
    pw = sync_playwright().start()
    browser = pw.chromium.launch(executable_path=CHROMIUM, args=args, headless=True)
    try:
        ctx = browser.new_context(
            viewport={"width": SMALL[0], "height": SMALL[1]},
            geolocation=HOME,
            permissions=["geolocation", "camera"],
            locale="vi-VN",
            service_workers="block",  # a cached service worker would hide what the page fetches
        )

        def gate(route) -> None:  # type: ignore[no-untyped-def]
            host = urlsplit(route.request.url).hostname or ""
            if route.request.url.startswith(("data:", "blob:")) or host in LOOPBACK:
                route.continue_()
                return
            if outside is not None:
                outside.append(route.request.url)
            route.abort()

        ctx.route("**/*", gate)
        page = ctx.new_page()
        page.goto(url)
        page.wait_for_function("document.getElementById('loading') === null", timeout=60_000)
        page.locator("flt-semantics-placeholder").dispatch_event("click", timeout=30_000)
        yield page
    finally:
        browser.close()
        pw.stop()


def _sign_in(page) -> None:  # type: ignore[no-untyped-def]
    page.get_by_text("Hôm nay").or_(page.get_by_text("Đăng nhập bưu tá")).first.wait_for(timeout=60_000)
    if page.get_by_text("Đăng nhập bưu tá").count():
        _type_into(page, "Tên đăng nhập", "courier")
        _type_into(page, "Mật khẩu", PASSWORD)
        page.get_by_role("button", name="Đăng nhập").click()
        _wait_text(page, "Hôm nay")


def test_nothing_is_fetched_from_outside_loopback(server, artifacts, tmp_path):
    """Item 8: the browser build, served as `hoso app` serves it, loads, signs in and shows
    today's stops without a single request leaving 127.0.0.1 (fonts, CanvasKit, Rive, …)."""
    require_chromium()
    _register(server, "submission")
    outside: list[str] = []
    with courier_app(server.base, tmp_path / "app", "honest-nocdn-app.log") as url:
        with _phone(url, outside=outside) as page:
            _sign_in(page)
            _wait_text(page, CITIZEN["name"])
            page.get_by_text("Hôm nay").first.wait_for()
            page.wait_for_timeout(3000)  # late fetches (fallback fonts for a glyph) come after the frame
            _shot(page, artifacts / "honest-01-today-no-cdn.png")
    assert outside == [], f"requests outside loopback: {outside}"


def _gone(page, text: str, timeout_s: float = 30) -> bool:  # type: ignore[no-untyped-def]
    for _ in range(int(timeout_s * 2)):
        if page.get_by_text(text).count() == 0:
            return True
        page.wait_for_timeout(500)
    return False


def test_gps_after_a_restart_and_the_offline_banner_without_a_tap(server, artifacts, tmp_path):
    """Item 7: the app process restarted with the courier signed in shows distances (the GPS
    is asked once Today is up); the server going away puts up the banner within seconds,
    with no tap, and it goes when the server answers again."""
    require_chromium()
    _register(server, "submission")
    data = tmp_path / "phone"
    with courier_app(server.base, data, "honest-gps-app.log") as url:
        with _phone(url) as page:
            _sign_in(page)
            _wait_text(page, CITIZEN["name"])
    with courier_app(server.base, data, "honest-gps-app2.log") as url:  # the app restarted
        with _phone(url) as page:
            _wait_text(page, CITIZEN["name"])  # the session resumed
            _wait_text(page, "Cách: 1", timeout=30_000)  # a distance in metres, not "—"
            _shot(page, artifacts / "honest-02-after-restart-gps.png")
            server.stop()
            try:
                _wait_text(page, "Mất kết nối máy chủ", timeout=25_000)  # nothing tapped
                _shot(page, artifacts / "honest-03-offline-banner.png")
            finally:
                server.start()
            assert _gone(page, "Mất kết nối máy chủ"), "the banner stayed after the server came back"
            _shot(page, artifacts / "honest-04-back-online.png")
