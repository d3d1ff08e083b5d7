"""Issue 19 in chromium at 360×640 (and 412×915): the courier at the door.

One server and one app for the module; each browser launch points the fake camera at one
real label from the server. Screenshots go to tests/artifacts/door-*.png.

1. a label printed before `hoso keys rotate label` and one printed after both open their
   forms; after `hoso keys revoke label KID` the old one is refused with its own sentence;
2. a wrong ID number stops the delivery with what to do;
3. the PIN typed offline is "checked when online", and a wrong one comes back flagged;
4. tapping a stop opens its scan, not its form;
6. every tappable target is at least 48 px.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from bench._harness import PASSWORD, Server
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, courier_app, require_chromium
from tests.e2e.test_courier_browser import (
    CITIZEN,
    HOME,
    _camera_on_label,
    _in_custody_result,
    _register,
    _shot,
    _sign,
    _type_into,
    _wait_state,
    _wait_text,
)

ROOT = Path(__file__).resolve().parents[2]
SMALL = (360, 640)
TAPPABLE = '[role="button"], [role="checkbox"], [role="radio"], [role="tab"], [role="switch"], input'


@pytest.fixture(scope="module")
def server():
    with Server("sqlite") as srv:
        yield srv


@pytest.fixture(scope="module")
def app(server, tmp_path_factory):
    with courier_app(server.base, tmp_path_factory.mktemp("door-app"), "door-app.log") as url:
        yield url


@contextlib.contextmanager
def _phone(url: str, camera: Path, size: tuple[int, int] = SMALL):  # type: ignore[no-untyped-def]
    from playwright.sync_api import sync_playwright

    args = [*CHROMIUM_ARGS, "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]
    args.append(f"--use-file-for-fake-video-capture={camera}")
    pw = sync_playwright().start()
    browser = pw.chromium.launch(executable_path=CHROMIUM, args=args, headless=True)
    try:
        ctx = browser.new_context(
            viewport={"width": size[0], "height": size[1]},
            geolocation=HOME,
            permissions=["geolocation", "camera"],
            locale="vi-VN",
        )
        page = ctx.new_page()
        page.goto(url)
        page.wait_for_function("document.getElementById('loading') === null", timeout=60_000)
        page.locator("flt-semantics-placeholder").dispatch_event("click", timeout=30_000)
        page.get_by_text("Hôm nay").or_(page.get_by_text("Đăng nhập bưu tá")).first.wait_for(timeout=60_000)
        if page.get_by_text("Đăng nhập bưu tá").count():
            _type_into(page, "Tên đăng nhập", "courier")
            _type_into(page, "Mật khẩu", PASSWORD)
            page.get_by_role("button", name="Đăng nhập").click()
            _wait_text(page, "Hôm nay")
        yield page
    finally:
        browser.close()
        pw.stop()


def _small_targets(page) -> list[tuple[str, str, float, float]]:  # type: ignore[no-untyped-def]
    """Every tappable node in Flutter's accessibility tree smaller than 48 px either way (a node
    cut by the bottom edge of the scrolling form is measured as far as it shows: left out)."""
    page.wait_for_timeout(800)
    found = page.eval_on_selector_all(
        TAPPABLE,
        """els => els.map(e => { const r = e.getBoundingClientRect();
              return [e.getAttribute('role') || e.tagName, (e.getAttribute('aria-label') || e.innerText || '')
                      .slice(0, 40), r.width, r.height]
              .concat([r.bottom < window.innerHeight - 24]); })
              .filter(([, , w, h, whole]) => w > 0 && h > 0 && whole)""",
    )
    small = []
    sizes = []
    for role, name, w, h, _ in found:
        if min(w, h) < 48 and role in ("button", "checkbox") and name:
            # a node the scrolling form cuts is measured as far as it shows: bring it into view
            target = page.get_by_role(role, name=name).first
            target.scroll_into_view_if_needed()
            page.wait_for_timeout(500)
            box = target.bounding_box() or {"width": w, "height": h}
            w, h = box["width"], box["height"]
        sizes.append(min(w, h))
        if min(w, h) < 48:
            small.append((role, name, w, h))
    print(f"{len(sizes)} tappable targets, smallest side {min(sizes) if sizes else '-'} px")
    return small


def _measure(page, name: str, measured: dict) -> None:  # type: ignore[no-untyped-def]
    print(f"{name} at {page.viewport_size}: ", end="")
    measured[name] = _small_targets(page)


def _tap_stop(page, name: str) -> None:  # type: ignore[no-untyped-def]
    """Tap the Today card of the stop whose contact is `name`."""
    page.get_by_text(name).first.click()


def test_the_courier_at_the_door(server, app, artifacts, tmp_path):
    require_chromium()
    url = app
    measured: dict[str, list] = {}
    old = _register(server, "submission")  # a label printed with this morning's key
    old_label = _camera_on_label(server, old["code"], tmp_path / "old.y4m")
    old_kid = server.http.get("/api/v1/keys").json()["label_keys"][0]["kid"]
    server._cli(["keys", "rotate", "label"])  # mid-day
    server.stop()
    server.start()
    res = _in_custody_result(server)  # a result printed with the new key, picked up at the shop
    new_label = _camera_on_label(server, res["code"], tmp_path / "new.y4m")

    # 1 + 4: the old label, tapped from Today: the scan opens first, the label is accepted
    with _phone(url, old_label) as page:
        _wait_text(page, CITIZEN["name"])
        _shot(page, artifacts / "door-01-today.png")
        _measure(page, "today", measured)
        _tap_stop(page, "25 Hùng Vương")
        _wait_text(page, "Thành phần hồ sơ đã nhận", timeout=45_000)  # opened by the scan
        _wait_text(page, "Đã quét tem bì thư")
        _shot(page, artifacts / "door-02-old-label-after-rotation-pickup.png")
        _measure(page, "pickup", measured)

    # 1 + 2 + 3 + 4: the new label; a wrong ID; the PIN offline
    with _phone(url, new_label) as page:
        _wait_text(page, "Phát kết quả")
        page.get_by_text("Phát kết quả").first.click()  # the delivery card's badge
        _wait_text(page, "Quét tem trên bì thư đang cầm", timeout=20_000)
        _shot(page, artifacts / "door-03-tap-opens-scan.png")
        _measure(page, "scan", measured)
        _wait_text(page, "Xác minh người nhận", timeout=45_000)
        _type_into(page, "4 số cuối CCCD", "0000")
        _wait_text(page, "4 số CCCD không khớp hồ sơ")
        _sign(page)
        page.get_by_role("button", name="Đã giao").click()
        page.wait_for_timeout(1000)
        _shot(page, artifacts / "door-04-id-mismatch.png")
        _measure(page, "delivery-mismatch", measured)
        page.get_by_role("button", name="Dùng mã PIN").click()
        wrong = "000001" if res["pin"] == "000000" else "000000"
        _type_into(page, "Mã PIN 6 số của người nhận", wrong)
        server.stop()  # no signal at the door
        try:
            page.get_by_role("button", name="Kiểm tra PIN").click()
            _wait_text(page, "Sẽ kiểm tra khi có mạng", timeout=30_000)
            _shot(page, artifacts / "door-05-pin-offline.png")
            _sign(page)  # the pad moved up with the mismatch panel gone: sign where it is now
            page.get_by_role("button", name="Đã giao").click()
            try:
                _wait_text(page, "chưa gửi")  # saved on this phone, not yet sent
            except Exception:
                page.mouse.wheel(0, 3000)
                _shot(page, artifacts / "door-FAILED-finish.png")
                raise
            _shot(page, artifacts / "door-06-saved-not-sent.png")
        finally:
            server.start()
        ship = _wait_state(server, res["code"], "delivered", timeout_s=90)
        _wait_text(page, "bị máy chủ đánh dấu", timeout=60_000)
        _shot(page, artifacts / "door-07-flagged-on-the-phone.png")
        page.get_by_text("bị máy chủ đánh dấu").first.click()
        _wait_text(page, "PIN sai")
        _shot(page, artifacts / "door-08-sync-flagged.png")
        _measure(page, "sync", measured)

    assert ship["events"][-1]["flags"] == ["pin_mismatch"]
    identity = ship["events"][-1]["event"]["data"]["identity"]
    assert identity["method"] == "pin" and identity["pin_checked"] == "on_sync" and wrong not in str(identity)
    assert ship["events"][-1]["event"]["data"]["identified_by"] == "scan"

    # 1: the old key revoked: its label is refused with its own sentence
    server._cli(["keys", "revoke", "label", old_kid])
    server.stop()
    server.start()
    with _phone(url, old_label, size=(412, 915)) as page:
        _wait_text(page, CITIZEN["name"])  # opening the app online fetched the key set again
        _tap_stop(page, "25 Hùng Vương")
        _wait_text(page, "khóa đã bị thu hồi", timeout=45_000)
        _shot(page, artifacts / "door-09-revoked-label-refused.png")
    # every control, the pickup checklist's lines included (56 px toggles, not 40 px checkboxes)
    assert not any(measured.values()), measured
