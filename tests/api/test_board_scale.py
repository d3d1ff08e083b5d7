"""The board at scale (issue 16): one courier picker for the page, and the at-risk filter
that reads a page at a time instead of five pages up front."""

from __future__ import annotations

import dataclasses
import re
from datetime import timedelta

from sqlalchemy import select

from server.auth.service import CurrentUser
from server.console import repository, service
from server.db.models import users
from shared.timeutil import to_wire, utcnow
from tests.api.test_console import board_codes, console_login, csrf


async def test_one_courier_picker_for_the_whole_board(api, db):
    now = utcnow()
    made = [await api.create_shipment(due_at=to_wire(now + timedelta(hours=h))) for h in (3, 30, 60)]
    client = api.client
    await console_login(client, "dispatcher")
    page = (await client.get("/console/")).text
    assert page.count('name="courier_id"') == 1  # one picker, not one per row
    rows = re.findall(r'<tr id="s\d{13}".*?</tr>', page, re.S)
    assert len(rows) == 3 and all("<option" not in r and "<select" not in r for r in rows)
    assert all('form="assign"' in r for r in rows)
    fragment = (await client.get("/console/board/rows")).text  # what a live update fetches
    assert "<option" not in fragment and board_codes(fragment) == [m["code"] for m in made]
    # the shared picker posts for the row whose button was pressed
    code = made[1]["code"]
    async with db.read() as conn:
        cid = (await conn.execute(select(users.c.id).where(users.c.username == "courier1"))).scalar_one()
    r = await client.post(
        f"/console/shipments/{code}/assign",
        data={"courier_id": str(cid), "back": "?", "_csrf_token": csrf(page)},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"].endswith(f"#s{code}")
    row = re.search(rf'<tr id="s{code}".*?</tr>', (await client.get("/console/")).text, re.S).group(0)
    assert "Đổi" in row  # reassign now, and the courier's name shown
    r = await client.post(
        f"/console/shipments/{made[0]['code']}/assign",
        data={"courier_id": "", "back": "?", "_csrf_token": csrf(page)},
        follow_redirects=False,
    )
    assert r.status_code == 400 and "Chọn một bưu tá" in r.text  # the picker left empty


async def test_at_risk_reads_on_only_while_the_page_is_short(api, db, monkeypatch):
    now = utcnow()
    made = [await api.create_shipment(due_at=to_wire(now + timedelta(hours=1 + h))) for h in range(7)]
    order = [m["code"] for m in made]
    calm = set(order[:4])  # pretend the four soonest are already near their door
    real_row, real_board = service._row, repository.board
    reads: list[int] = []

    def row(r, now_):
        out = real_row(r, now_)
        return dataclasses.replace(out, at_risk=out.at_risk and out.code not in calm)

    async def board(*a, **kw):
        rows, matched, late = await real_board(*a, **kw)
        reads.append(len(rows))
        return rows, matched, late

    monkeypatch.setattr(service, "_row", row)
    monkeypatch.setattr(repository, "board", board)
    async with db.read() as conn:
        u = (await conn.execute(select(users).where(users.c.username == "admin"))).one()
    admin = CurrentUser(u.id, u.username, u.role, u.unit_id, None)
    got = await service.board(db, admin, service.BoardFilters(at_risk=True), limit=2)
    assert [r.code for r in got.rows] == order[4:6] and got.more
    assert reads == [3, 3, 1]  # pages of limit + 1, stopping when the page is full
    reads.clear()
    got = await service.board(db, admin, service.BoardFilters(at_risk=True), limit=10)
    assert [r.code for r in got.rows] == order[4:] and not got.more and reads == [7]
