"""The citizen page in Debian's chromium at 360×640, against a real `hoso serve`."""

from __future__ import annotations

import re

import pytest

from bench._harness import Server

PARTY = {
    "name": "Nguyễn Thị Bích",
    "phone": "0905123456",
    "address": "12 Trần Hưng Đạo",
    "commune": "Phường Pleiku",
    "province": "Tỉnh Gia Lai",
    "id_last4": "4821",
    "lat": 13.98,
    "lon": 108.0,
}


def _delivered_result(srv: Server) -> tuple[str, str]:
    """A submission carried to the shop and its result delivered home; returns (tracking URL, PIN)."""
    sub, res = srv.delivered_result(PARTY)
    return res["tracking_url"], sub["pin"]


@pytest.fixture(scope="module")
def server():
    with Server("sqlite") as srv:
        yield srv


def test_track_confirm_switch_language_and_lockout(browser, server, artifacts):
    url, pin = _delivered_result(server)
    ctx = browser.new_context(viewport={"width": 360, "height": 640}, device_scale_factor=1, locale="vi-VN")
    page = ctx.new_page()
    requests: list[str] = []
    page.on("request", lambda req: requests.append(req.url))
    page.goto(url)
    badge = page.locator("#authenticity")
    assert badge.get_attribute("data-authentic") == "true"
    assert page.locator("#now").inner_text() == "Đã trả kết quả tận nhà"
    assert page.locator("#timeline li").count() == 8  # two legs: registered, picked up, failed, delivered
    page.screenshot(path=str(artifacts / "citizen-360-vi.png"), full_page=True)
    assert all(r.startswith(server.base) for r in requests), requests  # nothing fetched from outside

    page.get_by_role("link", name="English").click()
    assert page.locator("#now").inner_text() == "Result delivered to your door"
    page.screenshot(path=str(artifacts / "citizen-360-en.png"), full_page=True)
    page.get_by_role("link", name="Tiếng Việt").click()

    page.fill("#pin", pin)
    page.locator("input[name=rating][value='4']").check()
    page.fill("#comment", "Bưu tá rất nhiệt tình")
    page.get_by_role("button", name="Xác nhận").click()
    assert "Cảm ơn bạn đã xác nhận" in page.locator("#message").inner_text()
    assert "Công dân đã xác nhận nhận hồ sơ" in page.locator("#timeline").inner_text()
    page.screenshot(path=str(artifacts / "citizen-360-confirmed.png"), full_page=True)

    # someone guessing PINs on another envelope is stopped after five tries
    other_url, other_pin = _delivered_result(server)
    page.goto(other_url)
    wrong = "000000" if other_pin != "000000" else "111111"
    for attempt in range(5):
        page.fill("#pin", wrong)
        page.locator("input[name=rating][value='3']").check()  # no star is preselected
        page.get_by_role("button", name="Xác nhận").click()
        message = page.locator("#message").inner_text()
        if attempt < 4:
            assert f"còn {4 - attempt} lần" in message, message
    assert re.search(r"Vui lòng thử lại lúc \d\d:\d\d", message), message
    page.screenshot(path=str(artifacts / "citizen-360-locked.png"), full_page=True)

    # a forged signature is reported plainly
    code, sig = other_url.split("/t/")[1].split("?s=")
    sig, kid = sig.split("&k=")  # the label names its key (CUSTODY.md §2)
    page.goto(f"{server.base}/t/{code}?s={sig[:-3]}AAA&k={kid}")
    assert page.locator("#authenticity").get_attribute("data-authentic") == "false"
    page.screenshot(path=str(artifacts / "citizen-360-forged.png"), full_page=True)
    weight = len(page.content().encode())
    assert weight < 50_000
    ctx.close()
