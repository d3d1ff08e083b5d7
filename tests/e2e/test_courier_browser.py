"""The courier app end to end: `hoso serve` and the Flet app as real processes, Debian's
chromium at 412×915 with a fake camera showing a real label from the server and a fake GPS.

login → today → scan → pickup with a drawn signature → sync → the server holds the event
with a valid device signature; then a delivery counted in taps.
"""

from __future__ import annotations

import time
import warnings
from datetime import timedelta
from pathlib import Path

import msgspec
import pytest

from bench._harness import PASSWORD, Server
from shared.bundle import verify_bundle
from shared.events import new_event_id, sign_event
from shared.timeutil import to_wire, utcnow
from tests.e2e.camera import label_frame, write_y4m
from tests.e2e.conftest import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, courier_app, require_chromium

ROOT = Path(__file__).resolve().parents[2]
HOME = {"latitude": 13.9833, "longitude": 108.0, "accuracy": 9}  # where the fake GPS puts the courier
CITIZEN = {
    "name": "Trần Thị Mai",
    "phone": "0905111222",
    "address": "25 Hùng Vương",
    "commune": "Phường Pleiku",
    "province": "Tỉnh Gia Lai",
    "id_last4": "4821",
    "lat": 13.9840,
    "lon": 108.0010,
}
SHOP = {
    "name": "Trung tâm Phục vụ hành chính công tỉnh Gia Lai",
    "address": "2 Trần Phú",
    "commune": "Phường Pleiku",
    "province": "Tỉnh Gia Lai",
    "lat": 13.9760,
    "lon": 108.0050,
}


@pytest.fixture(scope="module")
def server():
    with Server("sqlite") as srv:
        yield srv


@pytest.fixture(scope="module")
def app(server, tmp_path_factory):
    """The courier app served for the browser, and its data folder."""
    data = tmp_path_factory.mktemp("courier")
    with courier_app(server.base, data, "courier-app.log") as url:
        yield url, data


def _register(srv: Server, kind: str, **extra) -> dict:
    return srv.dossier(
        kind,
        CITIZEN,
        SHOP,
        due_in=timedelta(hours=20),
        procedure="Đăng ký khai sinh",
        components=["Tờ khai đăng ký khai sinh", "Giấy chứng sinh (bản chính)"],
        **extra,
    )


def _camera_on_label(srv: Server, code: str, path: Path) -> Path:
    png = srv.http.get(f"/api/v1/shipments/{code}/label.png", headers=srv.auth("clerk")).raise_for_status()
    return write_y4m(label_frame(png.content), path)


class Taps:
    """Counts the courier's taps (clicks), separately from typing and signing."""

    def __init__(self, page) -> None:
        self.page, self.count = page, 0

    def click(self, locator) -> None:
        locator.click()
        self.count += 1


def _open(url: str, camera: Path | None = None):  # type: ignore[no-untyped-def]
    """Chromium with a fake camera (showing `camera`, a Y4M, or Chrome's test pattern) and GPS."""
    browser_args = [*CHROMIUM_ARGS, "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]
    if camera is not None:
        browser_args.append(f"--use-file-for-fake-video-capture={camera}")
    from playwright.sync_api import sync_playwright

    pw = sync_playwright().start()
    browser = pw.chromium.launch(executable_path=CHROMIUM, args=browser_args, headless=True)
    ctx = browser.new_context(
        viewport={"width": 412, "height": 915},
        geolocation=HOME,
        permissions=["geolocation", "camera"],
        locale="vi-VN",
    )
    page = ctx.new_page()
    page.goto(url)
    page.wait_for_function("document.getElementById('loading') === null", timeout=60_000)
    page.locator("flt-semantics-placeholder").dispatch_event("click", timeout=30_000)
    return pw, browser, page


def _sign(page) -> None:
    page.wait_for_timeout(600)  # the accessibility node can lag a layout change (a field filled above)
    box = page.locator('[flt-semantics-identifier="sigpad"]').bounding_box()
    assert box, "the signature pad is not on screen"
    x0, y0 = box["x"] + 30, box["y"] + box["height"] * 0.6
    page.mouse.move(x0, y0)
    page.mouse.down()
    for i in range(1, 30):
        page.mouse.move(x0 + i * 9, y0 - 40 * ((i % 6) / 6), steps=2)
    page.mouse.up()


def _tap_below(page, name: str) -> None:
    """Tap a button that may be below the fold, scrolling the way a thumb does (the wheel:
    Flutter scrolls its own paint and its accessibility tree together). Playwright's own
    scroll-into-view moves only the tree, and every later node is then off its painted place."""
    button = page.get_by_role("button", name=name)
    height = page.viewport_size["height"]
    for _ in range(12):
        box = button.bounding_box()
        if box and box["y"] + box["height"] <= height - 8:
            break
        page.mouse.move(page.viewport_size["width"] / 2, height / 2)
        page.mouse.wheel(0, 250)
        page.wait_for_timeout(300)
    button.click()


def _skip_pages(page, *, rejected: bool = False) -> None:
    """After a pickup from a citizen the app offers to photograph the dossier's pages: skip.
    A pickup the server rejected has no pages to go with: the screen says so, back to Today."""
    _wait_text(page, "Chụp trang hồ sơ")
    if rejected:
        _wait_text(page, "Lần nhận bị máy chủ từ chối nên không gửi trang", timeout=60_000)
        _shot(page, ARTIFACTS / "courier-10a-no-pages-after-rejection.png")
        page.get_by_role("button", name="Hôm nay").click()
        return
    page.wait_for_timeout(1000)  # the camera preview starts and the layout settles
    _tap_until(page, lambda: _tap_below(page, "Bỏ qua — quầy sẽ quét sau"), "Hôm nay")


def _tap_until(page, tap, expect: str, *, attempts: int = 3) -> None:
    """Tap, then wait for `expect`; a tap during a relayout (the camera preview starting, a
    sync's banner) can land beside its button, so tap again, up to `attempts` times."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

    for attempt in range(attempts):
        tap()
        try:
            page.get_by_text(expect, exact=False).first.wait_for(timeout=10_000)
            return
        except PlaywrightTimeoutError:
            if attempt == attempts - 1:
                raise


def _signed_in(page) -> None:
    """Sign in unless the app resumed an earlier session (each test can run alone)."""
    try:
        page.get_by_text("Hôm nay").or_(page.get_by_text("Đăng nhập bưu tá")).first.wait_for(timeout=60_000)
    except Exception:
        page.screenshot(path=ARTIFACTS / "courier-FAILED-opening.png")  # what showed instead
        raise
    if page.get_by_text("Đăng nhập bưu tá").count():
        _type_into(page, "Tên đăng nhập", "courier")
        _type_into(page, "Mật khẩu", PASSWORD)
        page.get_by_role("button", name="Đăng nhập").click()
        _wait_text(page, "Hôm nay")


def _shot(page, path: Path) -> None:
    """Screenshot once Flutter has painted: the accessibility text can arrive a frame early."""
    page.wait_for_timeout(600)
    try:
        page.screenshot(path=path, timeout=20_000)
    except Exception as exc:  # an artifact for people to look at, not an assertion: the test's
        # own waits say whether the app works; a busy machine once held a frame past 30 s
        warnings.warn(f"screenshot {path.name} not taken: {exc}", stacklevel=2)


def _type_into(page, name: str, text: str) -> None:
    """Focus a field by its label and type. Focus, not a pointer click: Flutter's accessibility
    nodes can lag the painted layout by a few dozen pixels after a rebuild, and a click at
    the node's centre then lands on the field above."""
    box = page.get_by_role("textbox", name=name)
    # focus without letting the browser scroll the accessibility tree: Flutter brings a focused
    # field into view itself, and a tree scrolled by the browser alone is left off the paint
    box.evaluate("e => e.focus({preventScroll: true})")
    page.wait_for_timeout(300)
    page.keyboard.type(text, delay=20)


def _wait_text(page, text: str, timeout: float = 30_000) -> None:
    try:
        page.get_by_text(text, exact=False).first.wait_for(timeout=timeout)
    except Exception:
        page.screenshot(path=ARTIFACTS / "courier-FAILED-waiting.png")  # what the courier saw instead
        raise


def _wait_state(srv: Server, code: str, state: str, timeout_s: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        ship = srv.http.get(f"/api/v1/shipments/{code}", headers=srv.auth("dispatcher")).json()
        if ship["state"] == state:
            return ship
        time.sleep(0.5)
    raise AssertionError(f"{code} never reached {state}: {ship['state']}, rejected {ship.get('rejected')}")


def test_login_scan_pickup_sync(server, app, artifacts, tmp_path):
    require_chromium()
    url, data_dir = app
    sub = _register(server, "submission")
    y4m = _camera_on_label(server, sub["code"], tmp_path / "label.y4m")
    pw, browser, page = _open(url, camera=y4m)
    try:
        _wait_text(page, "Đăng nhập bưu tá")  # the first frame can be blank for a second or two
        _shot(page, artifacts / "courier-01-login.png")
        _type_into(page, "Tên đăng nhập", "courier")
        _type_into(page, "Mật khẩu", "wrong-password")
        page.get_by_role("button", name="Đăng nhập").click()
        _wait_text(page, "Sai tên đăng nhập hoặc mật khẩu")
        _shot(page, artifacts / "courier-01b-login-wrong.png")
        page.get_by_role("textbox", name="Mật khẩu").click()
        page.wait_for_timeout(400)
        page.keyboard.press("End")
        for _ in range(len("wrong-password")):
            page.keyboard.press("Backspace")
        page.keyboard.type(PASSWORD)
        page.get_by_role("button", name="Đăng nhập").click()
        _wait_text(page, CITIZEN["name"])
        _wait_text(page, "Sắp đến hạn")
        _shot(page, artifacts / "courier-02-today.png")

        page.get_by_role("button", name="Quét mã bưu gửi").click()
        _wait_text(page, "Thành phần hồ sơ đã nhận", timeout=45_000)  # the label was read, pickup opened
        _shot(page, artifacts / "courier-03-pickup.png")
        _tap_below(page, "Hoàn tất nhận")
        _wait_text(page, "Đánh dấu các giấy tờ đã nhận")  # the flow says what is missing first
        page.get_by_role("button", name="Tờ khai đăng ký khai sinh").click()
        page.get_by_role("button", name="Giấy chứng sinh (bản chính)").click()
        page.wait_for_timeout(300)
        _type_into(page, "4 số cuối CCCD", "4821")
        _tap_below(page, "Hoàn tất nhận")
        _wait_text(page, "Chưa có chữ ký")  # refused without a signature
        _sign(page)
        _shot(page, artifacts / "courier-04-pickup-signed.png")
        _tap_below(page, "Hoàn tất nhận")
        _skip_pages(page)
        _wait_text(page, "Hôm nay")
        _shot(page, artifacts / "courier-05-today-after.png")

        ship = _wait_state(server, sub["code"], "in_custody")
        _shot(page, artifacts / "courier-06-synced.png")
    finally:
        browser.close()
        pw.stop()

    view = ship["events"][-1]
    picked = view["event"]
    assert picked["type"] == "picked_up" and ship["rejected"] == []
    assert view["missing_attachments"] == [] and view["flags"] == []
    assert picked["data"]["components"] == ["Tờ khai đăng ký khai sinh", "Giấy chứng sinh (bản chính)"]
    assert picked["data"]["fee_vnd"] == 8000 and picked["counterparty"]["id_last4"] == "4821"
    assert abs(picked["location"]["lat"] - HOME["latitude"]) < 1e-6
    device = (data_dir / "device.key").exists()
    assert device, "the app keeps its device key in its data directory"
    bundle = server.http.get(f"/api/v1/shipments/{sub['code']}/custody", headers=server.auth("dispatcher"))
    checks = verify_bundle(msgspec.json.decode(bundle.content))
    assert all(c.ok for c in checks), [c for c in checks if not c.ok]
    sig = server.http.get(
        f"/api/v1/attachments/{picked['attachments']['signature']}", headers=server.auth("dispatcher")
    )
    assert sig.status_code == 200 and sig.content[:8] == b"\x89PNG\r\n\x1a\n"


def _in_custody_result(srv: Server) -> dict:
    res = _register(srv, "result")
    now = utcnow()
    ev = sign_event(
        srv.device,
        id=new_event_id(),
        shipment=res["code"],
        type="picked_up",
        occurred_at=to_wire(now),
        actor=f"courier:{srv.courier_id}",
        location={"lat": SHOP["lat"], "lon": SHOP["lon"], "accuracy_m": 8.0, "fix_at": to_wire(now)},
        counterparty={"name": "Phạm Minh Tuấn", "role": "clerk"},
        attachments={"signature": "ab" * 32, "photos": []},
        prev=res["head"],
    )
    r = srv.http.post(
        "/api/v1/events", headers=srv.auth("courier"), json={"events": [msgspec.to_builtins(ev)]}
    )
    assert r.json()["results"][0]["status"] == "accepted", r.json()
    return res


def test_delivery_in_few_taps(server, app, artifacts, tmp_path):
    """Scan to a completed delivery, counting taps: the target is six or fewer."""
    require_chromium()
    url, _ = app
    res = _in_custody_result(server)
    y4m = _camera_on_label(server, res["code"], tmp_path / "result.y4m")
    pw, browser, page = _open(url, camera=y4m)
    try:
        _signed_in(page)  # after the first test: the session survived closing the app
        _wait_text(page, CITIZEN["name"])
        # reopening the app refreshed today's list: the new result is there
        _wait_text(page, "Phát kết quả")
        taps = Taps(page)
        taps.click(page.get_by_role("button", name="Quét mã bưu gửi"))
        _wait_text(page, "Xác minh người nhận", timeout=45_000)
        taps.count += 1  # the courier taps the ID-card field
        _type_into(page, "4 số cuối CCCD", "4821")
        _sign(page)
        _wait_text(page, "cách địa chỉ")
        _shot(page, artifacts / "courier-07-delivery.png")
        # the optional photo (two more taps, not counted): the camera's JPEG travels as an attachment
        page.get_by_role("button", name="Chụp ảnh").click()
        _wait_text(page, "Chụp bì hồ sơ")
        page.wait_for_timeout(1500)  # the preview starts
        _shot(page, artifacts / "courier-07b-photo.png")
        page.get_by_role("button", name="Chụp", exact=True).click()
        _wait_text(page, "1 ảnh")
        taps.click(page.get_by_role("button", name="Đã giao"))
        _wait_text(page, "Hôm nay")
        ship = _wait_state(server, res["code"], "delivered")
        _shot(page, artifacts / "courier-08-delivered.png")
    finally:
        browser.close()
        pw.stop()
    assert taps.count <= 6, taps.count
    delivered = ship["events"][-1]["event"]
    assert delivered["data"]["identity"] == {"method": "id_last4"}
    assert delivered["counterparty"] == {"name": CITIZEN["name"], "role": "citizen", "id_last4": "4821"}
    [photo] = delivered["attachments"]["photos"]
    jpeg = server.http.get(f"/api/v1/attachments/{photo}", headers=server.auth("dispatcher"))
    assert jpeg.status_code == 200 and jpeg.content[:3] == b"\xff\xd8\xff"  # a JPEG from the camera
    assert ship["events"][-1]["missing_attachments"] == []
    print(f"taps from scan to a completed delivery: {taps.count} (plus typing 4 digits and one signature)")


def test_typed_code_and_a_rejected_record_shown_with_its_reason(server, app, artifacts):
    """A typed code (with a typo first), then a pickup the server refuses because the
    dispatcher moved the envelope to another courier meanwhile: the courier sees why."""
    require_chromium()
    url, _ = app
    sub = _register(server, "submission")
    code = sub["code"]
    i = next(i for i in range(12) if code[i] != code[i + 1])
    typo = code[:i] + code[i + 1] + code[i] + code[i + 2 :]  # two different neighbours swapped
    pw, browser, page = _open(url)  # a camera with no label in view
    try:
        _signed_in(page)
        _wait_text(page, "Nhận hồ sơ")  # the new envelope is on today's list
        server._cli(["user", "add", "courier2", "--role", "courier", "--unit", "BC-1"], stdin=PASSWORD + "\n")
        other = server.http.post("/api/v1/auth/token", json={"username": "courier2", "password": PASSWORD})
        server.http.post(
            f"/api/v1/shipments/{code}/assign",
            headers=server.auth("dispatcher"),
            json={"courier_id": other.json()["user"]["id"]},
        ).raise_for_status()

        page.get_by_role("button", name="Quét mã bưu gửi").click()
        field = page.get_by_role("textbox", name="Hoặc gõ 13 chữ số trên tem")
        _type_into(page, "Hoặc gõ 13 chữ số trên tem", typo)  # two digits swapped
        page.get_by_role("button", name="Tìm theo mã").click()
        _wait_text(page, "Mã không đúng")
        _shot(page, artifacts / "courier-09-typed-typo.png")
        field.click()
        page.wait_for_timeout(400)
        page.keyboard.press("End")
        for _ in range(13):
            page.keyboard.press("Backspace")
        page.keyboard.type(code)
        page.get_by_role("button", name="Tìm theo mã").click()
        _wait_text(page, "Chọn lý do gõ mã")  # a typed code says why it was not scanned
        page.get_by_role("button", name="Tem rách/mờ").click()
        page.get_by_role("button", name="Tìm theo mã").click()
        _wait_text(page, "Thành phần hồ sơ đã nhận")
        page.get_by_role("button", name="Tờ khai đăng ký khai sinh").click()
        _type_into(page, "4 số cuối CCCD", "4821")
        _sign(page)
        _tap_below(page, "Hoàn tất nhận")
        _skip_pages(page, rejected=True)
        _wait_text(page, "bị máy chủ từ chối", timeout=60_000)
        _shot(page, artifacts / "courier-10-rejected-banner.png")
        page.get_by_text("bị máy chủ từ chối").first.click()
        _wait_text(page, "đã được giao cho bưu tá khác")  # what to do, in Vietnamese
        _wait_text(page, "is not assigned to")  # and the server's own words for the dispatcher
        _shot(page, artifacts / "courier-11-sync-rejected.png")
        page.get_by_role("button", name="EN").click()
        _wait_text(page, "was given to another courier")
        _shot(page, artifacts / "courier-12-sync-english.png")
    finally:
        browser.close()
        pw.stop()
    ship = server.http.get(f"/api/v1/shipments/{code}", headers=server.auth("dispatcher")).json()
    assert ship["state"] == "registered" and len(ship["rejected"]) == 1  # kept, and nothing moved


def test_a_batch_the_clerk_signed_on_the_console_is_confirmed_in_the_app(server, app, artifacts):
    from tests.app.console_client import console_receive

    require_chromium()
    url, _ = app
    server._cli(["unit", "add", "TTHCC-E2E", "--name", "Một cửa", "--kind", "one_stop_shop"])
    server._cli(["user", "add", "motcua", "--role", "clerk", "--unit", "TTHCC-E2E"], stdin=PASSWORD + "\n")
    sub = _register(server, "submission", dest_unit="TTHCC-E2E")
    now = to_wire(utcnow())
    picked = sign_event(
        server.device,
        id=new_event_id(),
        shipment=sub["code"],
        type="picked_up",
        occurred_at=now,
        actor=f"courier:{server.courier_id}",
        prev=sub["head"],
        location={"lat": CITIZEN["lat"], "lon": CITIZEN["lon"], "accuracy_m": 6.0, "fix_at": now},
        counterparty={"name": CITIZEN["name"], "role": "citizen", "id_last4": "4821"},
        attachments={"signature": "ab" * 32, "photos": []},
        data={"components": ["Tờ khai đăng ký khai sinh"], "fee_vnd": 8000},
    )
    r = server.http.post(
        "/api/v1/events", headers=server.auth("courier"), json={"events": [msgspec.to_builtins(picked)]}
    )
    assert r.json()["results"][0]["status"] == "accepted"
    console_receive(server, "motcua", server.courier_id, [sub["code"]])

    pw, browser, page = _open(url)
    try:
        _signed_in(page)
        _wait_text(page, "đã ký nhận 1 bưu gửi")
        _shot(page, artifacts / "courier-13-counter-banner.png")
        page.locator('[flt-semantics-identifier="counter-handover"]').click()
        _wait_text(page, "Xác nhận bàn giao 1 bưu gửi")
        _shot(page, artifacts / "courier-14-counter-confirm.png")
        page.get_by_role("button", name="Xác nhận bàn giao 1 bưu gửi").click()
        ship = _wait_state(server, sub["code"], "delivered")
    finally:
        browser.close()
        pw.stop()
    last = ship["events"][-1]
    clerk_id = server.http.post("/api/v1/auth/token", json={"username": "motcua", "password": PASSWORD})
    assert last["event"]["counterparty"] == {
        "name": "motcua",
        "role": "clerk",
        "user_id": clerk_id.json()["user"]["id"],  # the person, and the account they signed with
    }
    assert last["missing_attachments"] == []  # the clerk's signature from the console
