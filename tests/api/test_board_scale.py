"""The board at scale (issue 16): one courier picker for the page, and the at-risk filter
without the five pages read up front: in the query on PostgreSQL, a page at a time on SQLite."""

from __future__ import annotations

import dataclasses
import re
from datetime import timedelta

import pytest
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
    if not db.is_sqlite:
        pytest.skip("PostgreSQL filters at risk in the query (test_at_risk_in_sql_as_in_python)")
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


async def _admin(db) -> CurrentUser:
    async with db.read() as conn:
        u = (await conn.execute(select(users).where(users.c.username == "admin"))).one()
    return CurrentUser(u.id, u.username, u.role, u.unit_id, None)


async def test_at_risk_in_sql_as_in_python(api, db):
    """Due within a day and registered, or carried but not yet near the recipient (or where
    that is unknown): the query's haversine (PostgreSQL) keeps the rows service._row does."""
    now = utcnow()

    async def carried(hours: float, *, lat: float | None = None, **over) -> str:
        s = await api.create_shipment(due_at=to_wire(now + timedelta(hours=hours)), **over)
        await api.assign(s["code"])
        extra = (
            {}
            if lat is None
            else {"location": {"lat": lat, "lon": 108.0, "accuracy_m": 5.0, "fix_at": to_wire(now)}}
        )
        e = await api.event("courier1", s["code"], "picked_up", s["head"], **extra)
        r = await api.sync("courier1", [e])
        assert r.json()["results"][0]["status"] == "accepted", r.text
        return s["code"]

    registered = (await api.create_shipment(due_at=to_wire(now + timedelta(hours=2))))["code"]
    near = await carried(3)  # the default fix is ~1 km from the agency it goes to
    far = await carried(4, lat=14.5)  # ~57 km away
    nowhere = await carried(
        5,
        recipient={
            "name": "Sở Tư pháp",
            "address": "1 Lê Lợi",
            "commune": "Phường Pleiku",
            "province": "Tỉnh Gia Lai",
        },
    )
    later = await carried(30, lat=14.5)  # far, but not due within the day
    admin = await _admin(db)
    everything = await service.board(db, admin, service.BoardFilters())
    assert {near, later} <= {r.code for r in everything.rows}
    expected = [r.code for r in everything.rows if r.at_risk]
    assert expected == [registered, far, nowhere]
    got = await service.board(db, admin, service.BoardFilters(at_risk=True))
    assert [r.code for r in got.rows] == expected and not got.more
    first = await service.board(db, admin, service.BoardFilters(at_risk=True), limit=2)
    assert [r.code for r in first.rows] == expected[:2] and first.more
    assert got.matched == 3  # all at risk on the page: the count is theirs, on both backends
    assert first.matched == 4  # more than a page: the due-soon window's count (a day), an upper bound
