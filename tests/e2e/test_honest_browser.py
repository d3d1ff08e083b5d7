"""Issue 19 items 5, 7, 8, 9 in chromium at 360×640: nothing fetched from outside, honest
status, the return after three failed attempts, photos stored as the back camera sees them.

Screenshots go to tests/artifacts/honest-*.png.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from urllib.parse import urlsplit

import msgspec
import pytest
from PIL import Image, ImageStat

from bench._harness import PASSWORD, Server
from shared.events import new_event_id, sign_event
from shared.timeutil import to_wire, utcnow
from tests.e2e.camera import write_y4m
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, courier_app, require_chromium
from tests.e2e.test_courier_browser import (
    CITIZEN,
    HOME,
    _in_custody_result,
    _register,
    _shot,
    _sign,
    _tap_below,
    _type_into,
    _wait_state,
    _wait_text,
)

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


def _failed_three_times(srv: Server) -> dict:
    """A result picked up at the shop and not delivered three times (the server holds it all)."""
    res = _in_custody_result(srv)
    head = srv.http.get(f"/api/v1/shipments/{res['code']}", headers=srv.auth("dispatcher")).json()["head"]
    events = []
    for _ in range(3):
        now = to_wire(utcnow())
        ev = sign_event(
            srv.device,
            id=new_event_id(),
            shipment=res["code"],
            type="delivery_failed",
            occurred_at=now,
            actor=f"courier:{srv.courier_id}",
            location={"lat": CITIZEN["lat"], "lon": CITIZEN["lon"], "accuracy_m": 7.0, "fix_at": now},
            data={"reason": "not_home"},
            prev=head,
        )
        head = ev.hash
        events.append(msgspec.to_builtins(ev))
    r = srv.http.post("/api/v1/events", headers=srv.auth("courier"), json={"events": events})
    assert [x["status"] for x in r.json()["results"]] == ["accepted"] * 3, r.json()
    return res


def _asymmetric_frame(png: bytes) -> Image.Image:
    """The label on the left of the desk, a black block on the right: a frame whose mirror
    image is told apart at a glance (and by the mean of each edge strip)."""
    label = Image.open(io.BytesIO(png)).convert("RGB")
    scale = (480 * 0.95) / label.height
    label = label.resize((int(label.width * scale), int(label.height * scale)), Image.LANCZOS)
    frame = Image.new("RGB", (640, 480), (120, 120, 120))
    frame.paste(label, (8, (480 - label.height) // 2))
    frame.paste((0, 0, 0), (520, 20, 632, 460))
    return frame


def _edges(image: Image.Image) -> tuple[float, float]:
    """Mean brightness of the left and right 15 % of the picture."""
    grey = image.convert("L")
    w, h = grey.size
    strip = int(w * 0.15)
    left = ImageStat.Stat(grey.crop((0, 0, strip, h))).mean[0]
    right = ImageStat.Stat(grey.crop((w - strip, 0, w, h))).mean[0]
    return left, right


def test_three_failed_attempts_prompt_the_return_and_its_photo_is_as_seen(server, artifacts, tmp_path):
    """Items 5 and 9: the stop's card says "Hoàn trả"; scanning its label opens the return
    (not a fourth delivery); the receiver signs, a photo is taken and the stored JPEG has
    the black block on the right, as the camera saw it (Chromium's fake camera is not a
    back camera, so Flutter's web plugin mirrored it before)."""
    require_chromium()
    res = _failed_three_times(server)
    png = server.http.get(f"/api/v1/shipments/{res['code']}/label.png", headers=server.auth("clerk")).content
    frame = _asymmetric_frame(png)
    frame.save(artifacts / "honest-camera-frame.png")
    left, right = _edges(frame)
    assert right < left - 60  # the frame itself: bright label left, black block right
    camera = write_y4m(frame, tmp_path / "asym.y4m")
    with courier_app(server.base, tmp_path / "app", "honest-return-app.log") as url:
        with _phone(url, camera) as page:
            _sign_in(page)
            _wait_text(page, "3 lần phát không thành công")
            _shot(page, artifacts / "honest-05-today-return.png")
            page.get_by_text("Hoàn trả").first.click()
            _wait_text(page, "Đã phát không thành công 3 lần", timeout=45_000)  # opened by the scan
            _shot(page, artifacts / "honest-06-return.png")
            page.get_by_role("button", name="Trả về nơi gửi (Bộ phận Một cửa)").click()
            _type_into(page, "Họ tên người nhận lại", "Lê Thị Thu")
            _sign(page)
            _tap_below(page, "Chụp ảnh")
            _wait_text(page, "Chụp bì hồ sơ")
            page.wait_for_timeout(2000)  # the preview starts
            _shot(page, artifacts / "honest-07-photo-preview.png")
            page.get_by_role("button", name="Chụp", exact=True).click()
            _wait_text(page, "1 ảnh")
            _shot(page, artifacts / "honest-08-return-signed.png")
            _tap_below(page, "Đã hoàn trả")
            _wait_text(page, "Hôm nay")
            ship = _wait_state(server, res["code"], "returned")
            _wait_text(page, "Đã gửi 1 bản ghi lên máy chủ", timeout=20_000)  # not "saved on the phone"
            _shot(page, artifacts / "honest-09-returned-sent.png")
    returned = ship["events"][-1]["event"]
    assert returned["type"] == "returned" and returned["data"]["return_to"] == "sender"
    assert returned["data"]["attempts"] == 3 and returned["data"]["identified_by"] == "scan"
    assert returned["counterparty"]["name"] == "Lê Thị Thu" and returned["counterparty"]["role"] == "clerk"
    [photo] = returned["attachments"]["photos"]
    jpeg = server.http.get(f"/api/v1/attachments/{photo}", headers=server.auth("dispatcher")).content
    stored = Image.open(io.BytesIO(jpeg))
    stored.save(artifacts / "honest-stored-photo.png")
    left, right = _edges(stored)
    assert right < left - 60, f"the stored photo is mirrored: left {left:.0f}, right {right:.0f}"
