"""Report figures against a small data set whose answers are worked out by hand below."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

from shared.timeutil import to_wire, utcnow
from tests.api.conftest import table_counts

CLERK_TO_SHOP = {"name": "Phạm Minh Tuấn", "role": "clerk"}


def _csrf(html: str) -> str:
    return re.search(r'name="_csrf_token" value="([^"]+)"', html).group(1)


async def _confirm(api, code: str, pin: str, rating: int) -> None:
    token = _csrf((await api.client.get(f"/t/{code}")).text)
    r = await api.client.post(
        f"/t/{code}/confirm", data={"pin": pin, "rating": str(rating), "_csrf_token": token}
    )
    assert r.status_code == 200, r.text


async def _journey(
    api, created: dict, steps: list[tuple[str, float, dict]], courier: str = "courier1"
) -> None:
    """Assign, then sync the courier's events; each step is (type, hours ago, overrides)."""
    await api.assign(created["code"], courier)
    prev, events = created["head"], []
    now = utcnow()
    for type_, hours_ago, over in steps:
        ev = await api.event(
            courier,
            created["code"],
            type_,
            prev,
            occurred_at=to_wire(now - timedelta(hours=hours_ago)),
            **over,
        )
        events.append(ev)
        prev = ev["hash"]
    r = await api.sync(courier, events)
    assert all(x["status"] == "accepted" for x in r.json()["results"]), r.text


def _failed(reason: str) -> dict:
    return {"data": {"reason": reason}}


async def seed_report_data(api) -> dict[str, dict]:
    """Eight shipments: five submissions from BC-PLEIKU to TTHCC-GL and three results of TTHCC-GL.

    S1 Hộ tịch  delivered: picked up 6 h ago, at the desk 2 h ago (door-to-desk 4 h), due in 3 days
    S2 Đất đai  delivered: 10 h ago -> now (10 h), one failed attempt (not_home), due yesterday: late
    S3 Đất đai  delivered: 5 h ago -> 3 h ago (2 h), due in 3 days
    S4 Hộ tịch  in custody, two failed attempts (not_home, wrong_address), due yesterday: open and late
    S5 Xây dựng cancelled before pickup
    R1 result of S1 delivered: 3 h ago -> 0.5 h ago (desk-to-door 2.5 h), rated 4
    R2 result for a counter dossier (no parent), in custody, one failed attempt (refused)
    R3 result for a counter dossier, delivered: 8 h ago -> 2 h ago (6 h), rated 2
    """
    future = to_wire(utcnow() + timedelta(days=3))
    past = to_wire(utcnow() - timedelta(days=1))
    sub = {"dest_unit": "TTHCC-GL"}
    s1 = await api.create_shipment(due_at=future, **sub)
    s2 = await api.create_shipment(due_at=past, field="Đất đai", **sub)
    s3 = await api.create_shipment(due_at=future, field="Đất đai", **sub)
    s4 = await api.create_shipment(due_at=past, **sub)
    s5 = await api.create_shipment(due_at=future, field="Xây dựng", **sub)
    at_desk = {"counterparty": CLERK_TO_SHOP, "data": {}}
    await _journey(api, s1, [("picked_up", 6, {}), ("delivered", 2, at_desk)])
    await _journey(
        api,
        s2,
        [("picked_up", 10, {}), ("delivery_failed", 9, _failed("not_home")), ("delivered", 0, at_desk)],
    )
    await _journey(api, s3, [("picked_up", 5, {}), ("delivered", 3, at_desk)], courier="courier2")
    await _journey(
        api,
        s4,
        [
            ("picked_up", 7, {}),
            ("delivery_failed", 6, _failed("not_home")),
            ("delivery_failed", 5, _failed("wrong_address")),
        ],
    )
    r = await api.call(
        "POST", f"/api/v1/shipments/{s5['code']}/cancel", "dispatcher", json={"reason": "Rút hồ sơ"}
    )
    assert r.status_code == 200, r.text
    r1 = await api.create_shipment(
        "result", user="shopclerk", sender=None, recipient=None, parent=s1["code"], due_at=future
    )
    r2 = await api.create_shipment("result", user="shopclerk", due_at=future)
    r3 = await api.create_shipment("result", user="shopclerk", due_at=future)
    from_desk = {"counterparty": CLERK_TO_SHOP, "data": {}}
    await _journey(api, r1, [("picked_up", 3, from_desk), ("delivered", 0.5, {})])
    await _journey(api, r2, [("picked_up", 4, from_desk), ("delivery_failed", 1, _failed("refused"))])
    await _journey(api, r3, [("picked_up", 8, from_desk), ("delivered", 2, {})])
    await _confirm(api, r1["code"], s1["pin"], 4)
    await _confirm(api, r3["code"], r3["pin"], 2)
    return {"s1": s1, "s2": s2, "s3": s3, "s4": s4, "s5": s5, "r1": r1, "r2": r2, "r3": r3}


async def test_summary_figures_match_the_hand_computed_answers(api):
    await seed_report_data(api)
    r = await api.call("GET", "/api/v1/reports/summary", "dispatcher")
    assert r.status_code == 200, r.text
    s = r.json()
    assert s["total"] == 8
    assert s["by_state"] == {
        "registered": 0,
        "in_custody": 2,
        "delivered": 5,
        "returned": 0,
        "cancelled": 1,
        "collected": 0,  # results handed over at a counter (server/counter)
    }
    assert s["by_kind"] == {"submission": 5, "result": 3}
    assert s["by_field"] == {"Tư pháp - Hộ tịch": 5, "Đất đai": 2, "Xây dựng": 1}
    assert (s["delivered"], s["delivered_on_time"], s["on_time_rate"]) == (5, 4, 80.0)  # S2 was late
    assert s["late_open"] == 1  # S4
    assert s["door_to_desk"] == {"count": 3, "median_hours": 4.0}  # 4, 10, 2 h
    assert s["desk_to_door"] == {"count": 2, "median_hours": 4.25}  # 2.5, 6 h
    assert s["failed_attempts"] == 4
    assert s["failed_reasons"] == {
        "not_home": 2,
        "refused": 1,
        "wrong_address": 1,
        "unidentified": 0,
        "other": 0,
    }
    assert s["ratings"] == {"count": 2, "average": 3.0, "by_score": {"1": 0, "2": 1, "3": 0, "4": 1, "5": 0}}
    units = {u["unit"]: u for u in s["units"]}
    post, shop = units["BC-PLEIKU"], units["TTHCC-GL"]
    assert post["shipments"] == 5 and post["has_postal_traffic"] is True
    assert post["dossiers_received_total"] == 0 and post["dossiers_received_by_post_pct"] is None
    assert shop["shipments"] == 8 and shop["has_postal_traffic"] is True
    # S1-S3 reached the shop by post; R2 and R3 answer dossiers handed in at its counter: 3 of 5
    assert (shop["dossiers_received_by_post"], shop["dossiers_received_total"]) == (3, 5)
    assert shop["dossiers_received_by_post_pct"] == 60.0
    assert (shop["results_returned_by_post"], shop["results_total"]) == (2, 3)  # R1, R3 of R1-R3
    assert shop["results_returned_by_post_pct"] == 66.7

    r = await api.call("GET", "/api/v1/reports/summary?unit=BC-PLEIKU", "auditor")
    s = r.json()
    assert s["total"] == 5 and s["by_kind"] == {"submission": 5, "result": 0}
    assert [u["unit"] for u in s["units"]] == ["BC-PLEIKU"]
    assert s["ratings"]["count"] == 0 and s["failed_attempts"] == 3

    r = await api.call("GET", "/api/v1/reports/summary?from=2020-01-01&to=2020-01-31", "dispatcher")
    s = r.json()
    assert s["total"] == 0 and s["on_time_rate"] is None and s["door_to_desk"]["median_hours"] is None
    assert all(not u["has_postal_traffic"] for u in s["units"])
    assert s["start"].startswith("2020-01-01T00:00:00") and s["end"].startswith("2020-02-01T00:00:00")


async def test_csv_opens_in_excel_with_vietnamese_text(api):
    await seed_report_data(api)
    r = await api.call("GET", "/api/v1/reports/summary?format=csv", "dispatcher")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    assert r.content.startswith(b"\xef\xbb\xbf")  # the BOM that makes Excel read UTF-8
    assert b"\r\n" in r.content
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert rows[0] == ["Mục", "Chỉ tiêu", "Giá trị"]
    assert ["Đúng hạn", "Tỷ lệ đúng hạn (%)", "80.0"] in rows
    assert ["Theo lĩnh vực", "Đất đai", "2"] in rows
    assert ["Lý do phát không thành công", "không có người nhận", "2"] in rows
    assert ["Thời gian (giờ, trung vị)", "Từ Một cửa đến nhà dân", "4.25"] in rows
    shop = next(row for row in rows if row and row[0] == "TTHCC-GL")
    assert shop[2:] == ["Có", "3", "5", "60.0", "2", "3", "66.7"]


async def test_bad_report_requests_are_refused_plainly(api, db):
    for user in ("dispatcher", "clerk", "courier1"):
        await api.login(user)
    before = await table_counts(db)
    cases = [
        ("?from=yesterday", 400, "`from` must be a date"),
        ("?from=2026-11-10&to=2026-11-01", 400, "before"),
        ("?from=2020-01-01&to=2026-01-01", 400, "at most 400 days"),
        ("?from=2026-11-01T00:00:00", 400, "time zone"),
        ("?unit=NOPE", 400, "unit 'NOPE' does not exist"),
        ("?format=xml", 400, "format"),
    ]
    for query, status, words in cases:
        r = await api.call("GET", f"/api/v1/reports/summary{query}", "dispatcher")
        assert r.status_code == status, (query, r.text)
        assert words in r.json()["detail"], (query, r.json())
    for user, status in (("clerk", 403), ("courier1", 403), (None, 401)):
        r = await api.call("GET", "/api/v1/reports/summary", user)
        assert r.status_code == status, (user, r.text)
    assert await table_counts(db) == before
