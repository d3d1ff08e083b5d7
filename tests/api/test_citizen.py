"""The citizen page and receipt confirmation, through HTTP as a phone browser sends it."""

from __future__ import annotations

import asyncio
import re
from urllib.parse import urlsplit

import msgspec

from shared.events import CustodyEvent, verify_event
from tests.api.conftest import PARTY_CITIZEN


async def _delivered_result(api):
    sub = await api.create_shipment("submission")
    await api.assign(sub["code"])
    e1 = await api.event("courier1", sub["code"], "picked_up", sub["head"])
    e2 = await api.event(
        "courier1",
        sub["code"],
        "delivered",
        e1["hash"],
        counterparty={"name": "Phạm Minh Tuấn", "role": "clerk"},
        data={},
    )
    await api.sync("courier1", [e1, e2])
    res = await api.create_shipment(
        "result", user="shopclerk", sender=None, recipient=None, parent=sub["code"]
    )
    await api.assign(res["code"])
    r1 = await api.event(
        "courier1",
        res["code"],
        "picked_up",
        res["head"],
        counterparty={"name": "Phạm Minh Tuấn", "role": "clerk"},
        data={},
    )
    r2 = await api.event("courier1", res["code"], "delivered", r1["hash"])
    await api.sync("courier1", [r1, r2])
    return sub, res


def _path(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def _csrf(html: str) -> str:
    return re.search(r'name="_csrf_token" value="([^"]+)"', html).group(1)


async def test_page_shows_the_journey_without_personal_data(api):
    sub, res = await _delivered_result(api)
    r = await api.client.get(_path(sub["tracking_url"]))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    assert 'data-authentic="true"' in html
    for step in (
        "Đã tiếp nhận hồ sơ",
        "Bưu tá đã nhận hồ sơ",
        "Hồ sơ đã đến Bộ phận Một cửa",
        "Kết quả đang được chuyển đến bạn",
        "Đã trả kết quả tận nhà",
    ):
        assert step in html, step
    assert "Nguyễn T*** B***" in html
    for secret in (PARTY_CITIZEN["name"], PARTY_CITIZEN["phone"], PARTY_CITIZEN["address"]):
        assert secret not in html, secret
    # the ID's last four digits, standing alone (inside a longer number, a code or a random hex
    # token they turn up by chance one page in a few hundred)
    assert not re.search(r"(?<![0-9A-Za-z])4821(?![0-9A-Za-z])", html)
    assert len(r.content) < 50_000
    assert "http://" not in html.replace("http://testserver", "")  # no external requests
    en = await api.client.get(f"/t/{res['code']}?lang=en")
    assert "Result delivered to your door" in en.text and 'lang="en"' in en.text
    assert "data-authentic" not in en.text  # no signature, no badge


async def test_forged_or_altered_labels_say_so(api):
    created = await api.create_shipment()
    path = _path(created["tracking_url"])
    code, sig = created["code"], path.split("s=")[1]
    flipped = sig[:10] + ("A" if sig[10] != "A" else "B") + sig[11:]
    r = await api.client.get(f"/t/{code}?s={flipped}")
    assert r.status_code == 200 and 'data-authentic="false"' in r.text and "CẢNH BÁO" in r.text
    altered = code[:5] + str((int(code[5]) + 1) % 10) + code[6:]
    r = await api.client.get(f"/t/{altered}?s={sig}")
    assert r.status_code == 400 and 'data-authentic="false"' in r.text
    other = await api.create_shipment()
    r = await api.client.get(f"/t/{other['code']}?s={sig}")  # a genuine signature of another code
    assert 'data-authentic="false"' in r.text
    r = await api.client.get("/t/1234567890123")
    assert r.status_code == 404 and "Không tìm thấy" in r.text


async def test_confirm_with_pin_records_a_server_signed_event(api):
    sub, res = await _delivered_result(api)
    page = await api.client.get(f"/t/{res['code']}")
    token = _csrf(page.text)
    r = await api.client.post(f"/t/{res['code']}/confirm", data={"pin": "000000", "rating": "5"})
    assert r.status_code == 403  # no CSRF token: refused by the middleware
    r = await api.client.post(
        f"/t/{res['code']}/confirm",
        data={"pin": sub["pin"], "rating": "4", "comment": "Nhanh, lịch sự", "_csrf_token": token},
    )
    assert r.status_code == 200 and "Cảm ơn" in r.text, r.text
    detail = await api.shipment(res["code"])
    last = msgspec.convert(detail["events"][-1]["event"], CustodyEvent)
    keys = (await api.call("GET", "/api/v1/keys")).json()
    assert last.type == "confirmed" and last.actor == "citizen" and last.data["rating"] == 4
    verify_event(last, keys["event_public_key"])
    assert detail["state"] == "delivered"
    r = await api.client.post(
        f"/t/{res['code']}/confirm", data={"pin": sub["pin"], "rating": "4", "_csrf_token": token}
    )
    assert r.status_code == 409 and "đã được xác nhận" in r.text


async def test_pin_guessing_is_rate_limited(api):
    sub, res = await _delivered_result(api)
    token = _csrf((await api.client.get(f"/t/{res['code']}")).text)
    wrong = "111111" if sub["pin"] != "111111" else "222222"
    statuses = []
    for _ in range(5):
        r = await api.client.post(
            f"/t/{res['code']}/confirm", data={"pin": wrong, "rating": "5", "_csrf_token": token}
        )
        statuses.append(r.status_code)
    assert statuses == [403, 403, 403, 403, 429]
    assert "còn 1 lần" not in r.text and "thử lại lúc" in r.text
    assert re.search(r"thử lại lúc \d\d:\d\d", r.text)
    r = await api.client.post(
        f"/t/{res['code']}/confirm", data={"pin": sub["pin"], "rating": "5", "_csrf_token": token}
    )
    assert r.status_code == 429  # even the right PIN waits
    assert all(e["event"]["type"] != "confirmed" for e in (await api.shipment(res["code"]))["events"])
    # the same client guessing on another envelope is locked out too
    other_sub, other_res = await _delivered_result(api)
    r = await api.client.post(
        f"/t/{other_res['code']}/confirm", data={"pin": other_sub["pin"], "rating": "5", "_csrf_token": token}
    )
    assert r.status_code == 429


async def test_confirm_checks(api):
    sub = await api.create_shipment("submission")
    token = (
        _csrf((await api.client.get(f"/t/{sub['code']}")).text)
        if "_csrf_token" in (await api.client.get(f"/t/{sub['code']}")).text
        else None
    )
    assert token is None  # nothing to confirm yet: no form
    page = await api.client.get("/t/1234567890123")
    cookie_token = api.client.cookies.get("csrftoken")
    assert cookie_token and page.status_code == 404
    r = await api.client.post(
        f"/t/{sub['code']}/confirm",
        data={"pin": sub["pin"], "rating": "5"},
        headers={"x-csrftoken": cookie_token},
    )
    assert r.status_code == 409 and "sau khi hồ sơ đã được trả" in r.text
    r = await api.client.post(
        f"/t/{sub['code']}/confirm",
        data={"pin": "12ab", "rating": "5"},
        headers={"x-csrftoken": cookie_token},
    )
    assert r.status_code == 422 and "6 chữ số" in r.text
    r = await api.client.post(
        f"/t/{sub['code']}/confirm",
        data={"pin": sub["pin"], "rating": "9"},
        headers={"x-csrftoken": cookie_token},
    )
    assert r.status_code == 422


async def test_a_page_seen_before_shows_what_happened_since(api):
    """Pages are kept rendered per version of the family; any change shows at once."""
    sub = await api.create_shipment("submission")
    await api.assign(sub["code"])
    path = _path(sub["tracking_url"])
    first = (await api.client.get(path)).text
    assert (await api.client.get(path)).text == first and "Bưu tá đã nhận hồ sơ" not in first
    e1 = await api.event("courier1", sub["code"], "picked_up", sub["head"])
    await api.sync("courier1", [e1])
    after_pickup = (await api.client.get(path)).text
    assert "Bưu tá đã nhận hồ sơ" in after_pickup
    # each visitor still gets their own CSRF field on a cached page
    _, res = await _delivered_result(api)
    res_path = _path(res["tracking_url"])
    mine = (await api.client.get(res_path)).text
    api.client.cookies.clear()
    theirs = (await api.client.get(res_path)).text
    assert _csrf(mine) != _csrf(theirs)
    assert mine.replace(_csrf(mine), "") == theirs.replace(_csrf(theirs), "")


async def _wrong_pin(pin: str) -> str:
    return "111111" if pin != "111111" else "222222"


async def test_parallel_wrong_pins_are_counted_before_they_are_checked(api, monkeypatch):
    """20 wrong PINs at once: at most 5 reach argon2, the rest wait with the time to retry."""
    from server.auth import passwords

    evaluated = []
    real = passwords.verify_pin
    monkeypatch.setattr(passwords, "verify_pin", lambda h, p: evaluated.append(p) or real(h, p))
    sub, res = await _delivered_result(api)
    token = _csrf((await api.client.get(f"/t/{res['code']}")).text)
    wrong = await _wrong_pin(sub["pin"])
    responses = await asyncio.gather(
        *(
            api.client.post(
                f"/t/{res['code']}/confirm", data={"pin": wrong, "rating": "5", "_csrf_token": token}
            )
            for _ in range(20)
        )
    )
    statuses = sorted(r.status_code for r in responses)
    assert len(evaluated) == 5
    assert statuses == [403] * 4 + [429] * 16
    for r in responses:
        if r.status_code == 429:
            assert re.search(r"thử lại lúc \d\d:\d\d", r.text)
            assert 3000 < int(r.headers["retry-after"]) <= 3600
    r = await api.client.post(
        f"/t/{res['code']}/confirm", data={"pin": sub["pin"], "rating": "5", "_csrf_token": token}
    )
    assert r.status_code == 429 and len(evaluated) == 5


async def test_a_result_and_its_submission_share_one_count(api, db):
    """Their PIN is the same, so guesses on either envelope use up the same five tries."""
    from server.citizen import repository
    from server.citizen.pins import check_pin
    from shared.timeutil import utcnow

    sub, res = await _delivered_result(api)
    wrong = await _wrong_pin(sub["pin"])
    sub_row = await repository.pin_row(db, sub["code"])
    res_row = await repository.pin_row(db, res["code"])
    now = utcnow()
    outcomes = [await check_pin(db, sub_row, wrong, f"10.0.0.{i}", now) for i in range(3)]
    outcomes += [await check_pin(db, res_row, wrong, f"10.0.1.{i}", now) for i in range(2)]
    assert [o.result for o in outcomes] == ["wrong"] * 4 + ["locked"]
    assert [o.left for o in outcomes[:4]] == [4, 3, 2, 1]
    right = await check_pin(db, res_row, sub["pin"], "10.0.2.1", now)
    assert right.result == "locked" and right.retry_at is not None
    other_sub, _ = await _delivered_result(api)
    other = await repository.pin_row(db, other_sub["code"])
    assert (await check_pin(db, other, other_sub["pin"], "10.0.2.1", now)).ok  # another family


async def test_a_new_forwarded_for_does_not_start_a_new_count(api):
    """With no trusted proxy configured the header is ignored: the peer is the client."""
    codes_pins = []
    for _ in range(2):
        sub, res = await _delivered_result(api)
        codes_pins.append((res["code"], sub["pin"]))
    token = _csrf((await api.client.get(f"/t/{codes_pins[0][0]}")).text)
    statuses = []
    for i in range(6):
        code, pin = codes_pins[i % 2]
        r = await api.client.post(
            f"/t/{code}/confirm",
            data={"pin": await _wrong_pin(pin), "rating": "5", "_csrf_token": token},
            headers={"x-forwarded-for": f"203.0.113.{i}"},
        )
        statuses.append(r.status_code)
    assert statuses == [403, 403, 403, 403, 429, 429]


async def test_the_receipt_is_no_pin_oracle(api):
    """Printing the receipt with a PIN checks it against the citizen page's count."""
    sub, res = await _delivered_result(api)
    path = f"/api/v1/shipments/{sub['code']}/receipt.pdf"
    wrong = await _wrong_pin(sub["pin"])
    token = _csrf((await api.client.get(f"/t/{res['code']}")).text)
    r = await api.client.post(
        f"/t/{res['code']}/confirm", data={"pin": wrong, "rating": "5", "_csrf_token": token}
    )
    assert r.status_code == 403
    responses = await asyncio.gather(
        *(api.call("POST", path, "clerk", json={"pin": wrong}) for _ in range(10))
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [400] * 3 + [429] * 7, statuses
    bad = next(r for r in responses if r.status_code == 400).json()["detail"]
    assert "not the shipment's" in bad
    locked = next(r for r in responses if r.status_code == 429)
    assert "try again after" in locked.json()["detail"] and int(locked.headers["retry-after"]) > 0
    r = await api.call("POST", path, "clerk", json={"pin": sub["pin"]})
    assert r.status_code == 429  # locked for the right PIN as well, as on the citizen page
    r = await api.call("POST", path, "clerk", json={})
    assert r.status_code == 200  # without the PIN it still prints
