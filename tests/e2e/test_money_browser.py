"""The money pages in Debian's chromium against a real `hoso serve`: the cashier receives a
courier's fees with the courier's signature drawn on screen, one short; the day sheet flags
the shortfall and the fee held past a day. Screenshot: tests/artifacts/console-money.png."""

from __future__ import annotations

import base64
import hashlib
from datetime import timedelta

import msgspec
import pytest

from bench._harness import PASSWORD, Server
from shared.events import new_event_id, sign_event
from shared.timeutil import to_wire, utcnow
from tests.e2e.test_console_browser import PARTY, VIEWPORT, _register, _signature_png


@pytest.fixture(scope="module")
def server():
    with Server("sqlite") as srv:
        yield srv


def _pickup(srv: Server, fee: int, ago: timedelta) -> str:
    created = _register(srv, timedelta(days=3))
    srv.http.post(
        f"/api/v1/shipments/{created['code']}/assign",
        headers=srv.auth("dispatcher"),
        json={"courier_id": srv.courier_id},
    ).raise_for_status()
    png = _signature_png()
    sha = hashlib.sha256(png).hexdigest()
    srv.http.put(
        f"/api/v1/attachments/{sha}",
        content=png,
        headers={**srv.auth("courier"), "Content-Type": "image/png"},
    ).raise_for_status()
    when = utcnow() - ago
    ev = sign_event(
        srv.device,
        id=new_event_id(),
        shipment=created["code"],
        type="picked_up",
        occurred_at=to_wire(when),
        actor=f"courier:{srv.courier_id}",
        counterparty={"name": PARTY["name"], "role": "citizen", "id_last4": "4821"},
        location={"lat": 13.9841, "lon": 108.0012, "accuracy_m": 6.0, "fix_at": to_wire(when)},
        attachments={"signature": sha, "photos": []},
        data={"components": ["Tờ khai"], "fee_vnd": fee},
        prev=created["head"],
    )
    r = srv.http.post(
        "/api/v1/events", headers=srv.auth("courier"), json={"events": [msgspec.to_builtins(ev)]}
    )
    assert r.json()["results"][0]["status"] == "accepted", r.text
    return created["code"]


def test_the_cashier_receives_fees_and_the_sheet_flags_the_shortfall(browser, server, artifacts):
    srv = server
    a = _pickup(srv, 50_000, timedelta(0))
    b = _pickup(srv, 30_000, timedelta(0))
    c = _pickup(srv, 20_000, timedelta(hours=30))
    r = srv.http.post(
        "/api/v1/remittances",
        headers=srv.auth("clerk"),
        json={
            "courier_id": srv.courier_id,
            "codes": [a],
            "amount_vnd": 50_000,
            "signature_png": base64.b64encode(_signature_png()).decode(),
        },
    )
    assert r.status_code == 201, r.text

    ctx = browser.new_context(viewport=VIEWPORT, device_scale_factor=1, locale="vi-VN")
    page = ctx.new_page()
    page.goto(f"{srv.base}/console/money")
    page.fill("#username", "clerk")
    page.fill("#password", PASSWORD)
    page.get_by_role("button", name="Đăng nhập").click()
    page.wait_for_selector("#money")
    # the cashier takes b's fee, 5.000 short, the courier signs on screen
    page.goto(f"{srv.base}/console/money/remit?courier={srv.courier_id}")
    page.wait_for_selector("#sigpad")
    assert page.locator(f"#m{b}").is_checked()
    page.locator(f"#m{c}").uncheck()
    page.fill("#amount", "25.000")
    page.fill("#reason", "Thiếu 5.000 đồng, bưu tá hẹn nộp bù ngày mai")
    box = page.locator("#sigpad").bounding_box()
    page.mouse.move(box["x"] + 30, box["y"] + 110)
    page.mouse.down()
    for i in range(1, 30):
        page.mouse.move(box["x"] + 30 + i * 15, box["y"] + 90 + (35 if i % 4 < 2 else -35), steps=2)
    page.mouse.up()
    page.get_by_role("button", name="Lưu phiếu nộp tiền").click()
    page.wait_for_selector("#remittance")
    assert "Nộp thiếu" in page.locator("#difference").inner_text()
    assert len(page.locator("#hash").inner_text()) == 64
    page.screenshot(path=str(artifacts / "console-remittance.png"), full_page=True)

    page.goto(f"{srv.base}/console/money")
    row = page.locator(f"#money tr[data-courier='{srv.courier_id}']").first
    flags = row.get_attribute("data-flags")
    assert set(flags.split(",")) == {"short", "late"}, flags
    text = row.inner_text()
    assert "75.000 ₫" in text and "−5.000 ₫" in text and "20.000 ₫" in text, text
    page.screenshot(path=str(artifacts / "console-money.png"), full_page=True)
    ctx.close()
