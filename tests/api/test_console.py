"""The console through HTTP: sign-in, roles, the board and its filters, assignment from the board."""

from __future__ import annotations

import re
from datetime import timedelta

from shared.timeutil import to_wire, utcnow
from tests.api.conftest import table_counts
from tests.conftest import PASSWORD


def csrf(html: str) -> str:
    return re.search(r'name="_csrf_token" value="([^"]+)"', html).group(1)


async def console_login(client, username: str, password: str = PASSWORD, next_: str = ""):
    page = await client.get("/console/login")
    return await client.post(
        "/console/login",
        data={"username": username, "password": password, "next": next_, "_csrf_token": csrf(page.text)},
        follow_redirects=False,
    )


def board_codes(html: str) -> list[str]:
    return re.findall(r'<tr id="s(\d{13})"', html)


async def test_sign_in_and_out(api, db):
    client = api.client
    r = await client.get("/console/?late=1", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/console/login?next=/console%3Flate%3D1"
    r = await client.get("/console/live", headers={"Accept": "text/event-stream"})
    assert r.status_code == 401  # a live stream is never opened before signing in
    r = await console_login(client, "dispatcher", "wrong-password")
    assert r.status_code == 401 and "Sai tên đăng nhập hoặc mật khẩu" in r.text
    r = await console_login(client, "courier1")
    assert r.status_code == 403 and "ứng dụng trên điện thoại" in r.text
    r = await client.post(
        "/console/login", data={"username": "dispatcher", "password": PASSWORD}, follow_redirects=False
    )
    assert r.status_code == 403  # no CSRF token
    r = await console_login(client, "dispatcher", next_="https://evil.example/")
    assert r.status_code == 303 and r.headers["location"] == "/console/"  # no open redirect
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "samesite=strict" in cookie.lower() and "Path=/console" in cookie
    r = await client.get("/console/")
    assert r.status_code == 200 and 'id="who">Võ Thị Mai · Điều phối viên' in r.text
    # the session cookie opens the console only: the JSON API still wants a bearer token
    assert (await client.get("/api/v1/shipments")).status_code == 401
    session = client.cookies["hoso_session"]
    r = await client.post("/console/logout", data={"_csrf_token": csrf(r.text)}, follow_redirects=False)
    assert r.status_code == 303
    assert (await client.get("/console/", follow_redirects=False)).status_code == 303
    # the token itself is dead, not just the browser's cookie
    r = await client.get("/console/", cookies={"hoso_session": session}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/console/login")
    r = await console_login(client, "dispatcher", next_="/console/reports")
    assert r.headers["location"] == "/console/reports"


async def test_each_role_sees_its_own_menu(api):
    client = api.client
    menus = {}
    for user in ("clerk", "dispatcher", "auditor"):
        client.cookies.clear()
        await console_login(client, user)
        r = await client.get("/console/board/rows")  # every staff role may read rows
        assert r.status_code == 200
        r = await client.get("/console/", follow_redirects=False)
        if user == "clerk":
            assert r.status_code == 303 and r.headers["location"] == "/console/register"
            r = await client.get("/console/register")
        assert r.status_code == 200, (user, r.text)
        menus[user] = re.findall(r"<nav>(.*?)</nav>", r.text)[0]
    assert "Tiếp nhận" in menus["clerk"] and "Nhận bàn giao" in menus["clerk"] and "In nhãn" in menus["clerk"]
    assert "Bảng theo dõi" not in menus["clerk"] and "Báo cáo" not in menus["clerk"]
    assert "Bảng theo dõi" in menus["dispatcher"] and "Báo cáo" in menus["dispatcher"]
    assert "Bưu tá" in menus["dispatcher"] and "Nhận bàn giao" not in menus["dispatcher"]
    assert "Tiếp nhận" not in menus["auditor"] and "Báo cáo" in menus["auditor"]
    # the auditor reads the board but cannot assign
    r = await client.get("/console/")
    assert r.status_code == 200 and "/assign" not in r.text


async def _board_data(api) -> dict[str, str]:
    now = utcnow()
    late = await api.create_shipment(due_at=to_wire(now - timedelta(hours=5)), field="Đất đai")
    risky = await api.create_shipment(due_at=to_wire(now + timedelta(hours=10)))
    calm = await api.create_shipment(due_at=to_wire(now + timedelta(days=5)), dest_unit="TTHCC-GL")
    result = await api.create_shipment("result", user="shopclerk", due_at=to_wire(now + timedelta(days=4)))
    done = await api.create_shipment()
    await api.assign(calm["code"], "courier2")
    await api.assign(done["code"])
    e1 = await api.event("courier1", done["code"], "picked_up", done["head"])
    e2 = await api.event(
        "courier1",
        done["code"],
        "delivered",
        e1["hash"],
        counterparty={"name": "A", "role": "clerk"},
        data={},
    )
    await api.sync("courier1", [e1, e2])
    return {
        "late": late["code"],
        "risky": risky["code"],
        "calm": calm["code"],
        "result": result["code"],
        "done": done["code"],
    }


async def test_board_filters(api):
    codes = await _board_data(api)
    client = api.client
    await console_login(client, "admin")  # every unit's shipments: the filters alone decide
    await api.login("courier2")
    courier2 = api.user_ids["courier2"]

    async def shown(query: str) -> list[str]:
        r = await client.get(f"/console/{query}")
        assert r.status_code == 200, (query, r.text)
        return board_codes(r.text)

    everything = await shown("")
    assert everything[:2] == [codes["late"], codes["risky"]]  # soonest due first: late ones lead
    assert set(everything) == {codes["late"], codes["risky"], codes["calm"], codes["result"]}  # open only
    assert await shown("?late=1") == [codes["late"]]
    assert await shown("?at_risk=1") == [codes["risky"]]
    assert await shown("?kind=result") == [codes["result"]]
    assert await shown("?field=Đất đai") == [codes["late"]]
    assert await shown(f"?courier={courier2}") == [codes["calm"]]
    assert set(await shown("?unit=TTHCC-GL")) == {codes["calm"], codes["result"]}
    assert await shown("?state=in_custody") == []
    r = await client.get("/console/")
    assert re.search(rf'<tr id="s{codes["late"]}" data-code="\d+" class="late">', r.text)
    assert re.search(rf'<tr id="s{codes["risky"]}" data-code="\d+" class="risk">', r.text)
    assert "Hiển thị 4 / 4 bưu gửi đang mở · 1 quá hạn" in r.text
    for query, words in (
        ("?state=delivered", "open states"),
        ("?kind=parcel", "kind must be"),
        ("?unit=NOPE", "does not exist"),
        ("?courier=abc", "courier must be"),
    ):
        r = await client.get(f"/console/{query}")
        assert r.status_code == 400 and words in r.text, (query, r.text[-800:])
    r = await client.get("/console/board/rows?late=1")
    assert (
        r.status_code == 200
        and r.text.lstrip().startswith("<tbody")
        and board_codes(r.text) == [codes["late"]]
    )


async def test_the_board_shows_what_must_go_back_after_three_failed_attempts(api):
    """Issue 19 item 5: in custody with 3 failed attempts, a row is tagged "cần hoàn trả"
    and the filter of that name shows exactly those; two attempts are not enough."""
    now = utcnow()
    heads = {}
    for name, fails in (("three", 3), ("two", 2), ("four", 4)):
        ship = await api.create_shipment(due_at=to_wire(now + timedelta(days=3)))
        await api.assign(ship["code"])
        events = [await api.event("courier1", ship["code"], "picked_up", ship["head"])]
        for _ in range(fails):
            events.append(await api.event("courier1", ship["code"], "delivery_failed", events[-1]["hash"]))
        r = await api.sync("courier1", events)
        assert [x["status"] for x in r.json()["results"]] == ["accepted"] * (fails + 1)
        heads[name] = (ship["code"], events[-1]["hash"])
    # the fourth envelope went back: final, off the board
    code4, head4 = heads["four"]
    back = await api.event(
        "courier1",
        code4,
        "returned",
        head4,
        counterparty={"name": "Lê Thị Thu", "role": "clerk"},
        data={"return_to": "post_office", "attempts": 4},
    )
    assert (await api.sync("courier1", [back])).json()["results"][0]["status"] == "accepted"
    client = api.client
    await console_login(client, "admin")
    r = await client.get("/console/")
    three, two = heads["three"][0], heads["two"][0]
    row = re.search(rf'<tr id="s{three}".*?</tr>', r.text, re.S).group(0)
    assert "CẦN HOÀN TRẢ" in row and "3 lần phát lỗi" in row
    row2 = re.search(rf'<tr id="s{two}".*?</tr>', r.text, re.S).group(0)
    assert "CẦN HOÀN TRẢ" not in row2 and "2 lần phát lỗi" in row2
    assert 'name="to_return"' in r.text and "Cần hoàn trả" in r.text
    r = await client.get("/console/?to_return=1")
    assert board_codes(r.text) == [three] and 'name="to_return" value="1" checked' in r.text
    r = await client.get("/console/board/rows?to_return=1&kind=result")
    assert r.status_code == 200 and board_codes(r.text) == []
    r = await client.get("/console/?to_return=1&lang=en")
    assert board_codes(r.text) == [three]


async def test_assign_and_reassign_from_the_board(api, db):
    codes = await _board_data(api)
    client = api.client
    await console_login(client, "admin")  # every unit's shipments: the filters alone decide
    for u in ("courier1", "courier2"):
        await api.login(u)
    page = await client.get("/console/?late=1")
    token = csrf(page.text)
    url = f"/console/shipments/{codes['late']}/assign"
    r = await client.post(
        url,
        data={"courier_id": str(api.user_ids["courier1"]), "back": "?late=1", "_csrf_token": token},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == f"/console/?late=1#s{codes['late']}"
    assert (await api.shipment(codes["late"]))["assigned_courier_id"] == api.user_ids["courier1"]
    r = await client.post(url, data={"courier_id": str(api.user_ids["courier2"]), "_csrf_token": token})
    assert r.status_code == 200 and "Đổi" in r.text
    assert (await api.shipment(codes["late"]))["assigned_courier_id"] == api.user_ids["courier2"]
    before = await table_counts(db)
    for data, status, words in (
        ({"courier_id": ""}, 400, "Chọn một bưu tá"),
        ({"courier_id": str(api.user_ids["courier2"] + 100)}, 422, "not an active courier"),
    ):
        r = await client.post(url, data={**data, "_csrf_token": token})
        assert r.status_code == status and words in r.text, r.text[-600:]
    r = await client.post(
        f"/console/shipments/{codes['done']}/assign",
        data={"courier_id": str(api.user_ids["courier1"]), "_csrf_token": token},
    )
    assert r.status_code == 409 and "nothing left to carry" in r.text
    r = await client.post(url, data={"courier_id": str(api.user_ids["courier1"])})
    assert r.status_code == 403  # no CSRF token
    client.cookies.clear()
    await console_login(client, "auditor")
    page = await client.get("/console/")
    r = await client.post(
        url, data={"courier_id": str(api.user_ids["courier1"]), "_csrf_token": csrf(page.text)}
    )
    assert r.status_code == 403
    assert await table_counts(db) == {**before, "api_tokens": before["api_tokens"] + 1}
