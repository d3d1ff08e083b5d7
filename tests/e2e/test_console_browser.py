"""The console in Debian's chromium at 1366×768 against a real `hoso serve`: sign in, filter,
assign, a live update within 2 s of an event synced through the API, the shipment page with its
images, the clerk's register and receive screens, couriers and reports. Screenshots go to
tests/artifacts/."""

from __future__ import annotations

import hashlib
import io
import re
import time
from datetime import timedelta

import msgspec
import pytest

from bench._harness import PASSWORD, Server
from shared.events import new_event_id, sign_event
from shared.timeutil import to_wire, utcnow

PARTY = {
    "name": "Nguyễn Thị Bích",
    "phone": "0905123456",
    "address": "12 Trần Hưng Đạo",
    "commune": "Phường Pleiku",
    "province": "Tỉnh Gia Lai",
    "id_last4": "4821",
    "lat": 13.9833,
    "lon": 108.0,
}
VIEWPORT = {"width": 1366, "height": 768}


def _signature_png() -> bytes:
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (360, 140), "white")
    draw = ImageDraw.Draw(img)
    draw.line(
        [(20, 90), (60, 40), (100, 100), (150, 30), (210, 95), (260, 50), (330, 80)],
        fill=(20, 30, 120),
        width=4,
    )
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()


def _register(srv: Server, due_in: timedelta, field: str = "Tư pháp - Hộ tịch") -> dict:
    r = srv.http.post(
        "/api/v1/shipments",
        headers=srv.auth("clerk"),
        json={
            "kind": "submission",
            "due_at": to_wire(utcnow() + due_in),
            "procedure": "Đăng ký khai sinh",
            "field": field,
            "sender": PARTY,
            "recipient": {
                **PARTY,
                "name": "Trung tâm Phục vụ hành chính công",
                "lat": 13.976,
                "lon": 108.005,
            },
            "components": ["Tờ khai"],
            "fee_vnd": 50000,
        },
    )
    r.raise_for_status()
    return r.json()


def _sync(srv: Server, events: list[dict]) -> None:
    r = srv.http.post("/api/v1/events", headers=srv.auth("courier"), json={"events": events})
    assert all(x["status"] == "accepted" for x in r.json()["results"]), r.text


def _event(srv: Server, code: str, type_: str, prev: str, **fields) -> dict:
    now = utcnow()
    ev = sign_event(
        srv.device,
        id=new_event_id(),
        shipment=code,
        type=type_,
        occurred_at=to_wire(now),
        actor=f"courier:{srv.courier_id}",
        location={
            "lat": 13.9841,
            "lon": 108.0012,
            "accuracy_m": 6.0,
            "fix_at": to_wire(now - timedelta(seconds=3)),
        },
        prev=prev,
        **fields,
    )
    return msgspec.to_builtins(ev)


def _wait_images(page, selector: str, timeout: float = 5.0) -> None:
    """Every image under selector loaded and decoded (CSP forbids eval, so poll from Python)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        widths = page.locator(selector).evaluate_all("els => els.map(e => e.complete ? e.naturalWidth : 0)")
        if widths and all(w > 0 for w in widths):
            return
        time.sleep(0.05)
    raise AssertionError(f"images {selector} did not load: {widths}")


@pytest.fixture(scope="module")
def server():
    with Server("sqlite") as srv:
        yield srv


def test_console_end_to_end(browser, server, artifacts):
    srv = server
    late = _register(srv, -timedelta(hours=6), field="Đất đai")
    risky = _register(srv, timedelta(hours=8))
    calm = [_register(srv, timedelta(days=d)) for d in (2, 3, 4)]
    # one shipment carried with a real signature image and a photo
    png = _signature_png()
    sha = hashlib.sha256(png).hexdigest()
    srv.http.put(
        f"/api/v1/attachments/{sha}",
        content=png,
        headers={**srv.auth("courier"), "Content-Type": "image/png"},
    ).raise_for_status()
    carried = calm[0]
    srv.http.post(
        f"/api/v1/shipments/{carried['code']}/assign",
        headers=srv.auth("dispatcher"),
        json={"courier_id": srv.courier_id},
    ).raise_for_status()
    pickup = _event(
        srv,
        carried["code"],
        "picked_up",
        carried["head"],
        counterparty={"name": "Nguyễn Thị Bích", "role": "citizen", "id_last4": "4821"},
        attachments={"signature": sha, "photos": [sha]},
        data={"components": ["Tờ khai"], "fee_vnd": 50000},
    )
    _sync(srv, [pickup])

    ctx = browser.new_context(viewport=VIEWPORT, device_scale_factor=1, locale="vi-VN")
    page = ctx.new_page()
    requests: list[str] = []
    page.on("request", lambda req: requests.append(req.url))

    # sign in
    page.goto(f"{srv.base}/console/")
    assert "/console/login" in page.url
    page.fill("#username", "dispatcher")
    page.fill("#password", "wrong")
    page.get_by_role("button", name="Đăng nhập").click()
    assert "Sai tên đăng nhập" in page.locator("#error").inner_text()
    page.screenshot(path=str(artifacts / "console-login-error.png"))
    page.fill("#username", "dispatcher")
    page.fill("#password", PASSWORD)
    page.get_by_role("button", name="Đăng nhập").click()
    page.wait_for_selector("#board")
    page.wait_for_selector("#live.on", timeout=5000)
    rows = page.locator("#board-rows tr[data-code]")
    assert rows.count() == 5
    assert rows.nth(0).get_attribute("data-code") == late["code"]  # late first, in red
    assert rows.nth(0).get_attribute("class") == "late"
    assert rows.nth(1).get_attribute("class") == "risk"
    page.screenshot(path=str(artifacts / "console-board.png"))

    # filter: late only
    page.locator("input[name=late]").check()
    page.get_by_role("button", name="Lọc").click()
    page.wait_for_url(re.compile(r"late=1"))
    assert page.locator("#board-rows tr[data-code]").count() == 1
    page.screenshot(path=str(artifacts / "console-board-late.png"))
    page.goto(f"{srv.base}/console/")
    page.wait_for_selector("#live.on", timeout=5000)

    # assign the at-risk one from the board
    # one courier picker for the page (issue 16), then the row's own button
    assert page.locator("select[name=courier_id]").count() == 1
    assert page.locator("#board-rows select").count() == 0
    row = page.locator(f"#s{risky['code']}")
    row.get_by_role("button", name="Giao").click()  # nobody picked: the browser stops it
    assert page.locator("#assign-courier:invalid").count() == 1
    assert row.get_by_role("button", name="Giao").count() == 1
    page.locator("#assign-courier").select_option(str(srv.courier_id))
    picked = page.locator("#assign-courier option:checked").inner_text()
    row.get_by_role("button", name="Giao").click()
    page.wait_for_selector(f"#s{risky['code']} button:has-text('Đổi')")
    assert picked in page.locator(f"#s{risky['code']} td.assign").inner_text()  # the picked courier
    page.wait_for_selector("#live.on", timeout=5000)
    page.screenshot(path=str(artifacts / "console-board-assigned.png"))

    # live: the courier syncs a pickup through the API; the board shows it within 2 s
    ev = _event(
        srv,
        risky["code"],
        "picked_up",
        risky["head"],
        counterparty={"name": "Nguyễn Thị Bích", "role": "citizen", "id_last4": "4821"},
        attachments={"signature": sha, "photos": []},
        data={"components": ["Tờ khai"], "fee_vnd": 50000},
    )
    sent = time.monotonic()
    _sync(srv, [ev])
    page.locator(f"#s{risky['code']}").get_by_text("Đang vận chuyển").wait_for(timeout=2000)
    elapsed = time.monotonic() - sent
    assert elapsed < 2.0, elapsed
    page.screenshot(path=str(artifacts / "console-board-live.png"))

    # the shipment page: timeline, images, GPS, verification badge, bundle download
    page.goto(f"{srv.base}/console/shipments/{carried['code']}")
    assert page.locator("#verification").get_attribute("data-verified") == "true"
    _wait_images(page, ".evimgs img")
    assert page.locator(".evimgs img").count() == 2
    assert page.locator("#timeline li").count() == 2
    page.screenshot(path=str(artifacts / "console-shipment.png"), full_page=True)
    with page.expect_download() as download:
        page.locator("#bundle").click()
    assert download.value.suggested_filename == f"hoso-{carried['code']}-custody.json"

    # couriers and reports
    page.goto(f"{srv.base}/console/couriers")
    assert page.locator("#couriers tbody tr").count() == 1
    page.screenshot(path=str(artifacts / "console-couriers.png"), full_page=True)
    page.goto(f"{srv.base}/console/reports")
    assert page.locator("#total").inner_text() == "5"
    page.screenshot(path=str(artifacts / "console-reports.png"), full_page=True)
    page.get_by_role("button", name="Đăng xuất").click()
    page.wait_for_selector("#username")

    # the clerk registers with the address pickers
    page.fill("#username", "clerk")
    page.fill("#password", PASSWORD)
    page.get_by_role("button", name="Đăng nhập").click()
    page.wait_for_selector("#register")
    page.select_option("#field", "Tư pháp - Hộ tịch")
    page.fill("#procedure", "Đăng ký khai sinh")
    page.fill("#sender_name", "Rơ Mah Thuyên")
    page.select_option("#sender_province", "Tỉnh Gia Lai")
    page.locator("#sender_commune option[value='Xã Biển Hồ']").wait_for(state="attached")
    page.select_option("#sender_commune", "Xã Biển Hồ")
    page.fill("#sender_address", "Thôn 3")
    page.fill("#recipient_name", "Trung tâm Phục vụ hành chính công tỉnh Gia Lai")
    page.select_option("#recipient_province", "Tỉnh Gia Lai")
    page.locator("#recipient_commune option[value='Phường Pleiku']").wait_for(state="attached")
    page.select_option("#recipient_commune", "Phường Pleiku")
    page.fill("#due_date", (utcnow() + timedelta(days=7)).date().isoformat())
    page.fill("#components", "Tờ khai\nGiấy chứng sinh")
    page.screenshot(path=str(artifacts / "console-register-form.png"), full_page=True)
    page.get_by_role("button", name="Tiếp nhận và cấp mã").click()
    page.wait_for_selector("#created")
    assert re.fullmatch(r"\d{6}", page.locator("#pin").inner_text())
    _wait_images(page, ".label-preview")
    page.screenshot(path=str(artifacts / "console-register-done.png"), full_page=True)

    # the clerk receives the carried envelope from the courier and signs on screen
    # (the harness's clerk belongs to the same unit, and the shipment was registered there)
    fail = _event(srv, carried["code"], "delivery_failed", pickup["hash"], data={"reason": "not_home"})
    _sync(srv, [fail])
    page.goto(f"{srv.base}/console/receive?courier={srv.courier_id}")
    page.wait_for_selector("#sigpad")
    box = page.locator("#sigpad").bounding_box()
    page.mouse.move(box["x"] + 30, box["y"] + 110)
    page.mouse.down()
    for i in range(1, 30):
        page.mouse.move(box["x"] + 30 + i * 15, box["y"] + 90 + (35 if i % 4 < 2 else -35), steps=2)
    page.mouse.up()
    page.screenshot(path=str(artifacts / "console-receive.png"))
    page.get_by_role("button", name="Xác nhận đã nhận").click()
    page.wait_for_selector("#handover")
    _wait_images(page, "#handover img")
    assert page.locator("tr[data-done=false]").count() >= 1
    page.screenshot(path=str(artifacts / "console-handover.png"))
    ctx.close()
    outside = [u for u in requests if not u.startswith(srv.base)]
    assert outside == [], outside
