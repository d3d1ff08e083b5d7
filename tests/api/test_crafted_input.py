"""Crafted input at the sync endpoint: a per-event rejection or a clear 4xx, never a 500,
and never the loss of the valid events beside it in the batch."""

from __future__ import annotations

import msgspec
from sqlalchemy import func, select

from server.auth import service as auth_service
from server.db.models import rejected_events
from tests.api.test_events import _ready, _statuses
from tests.conftest import BOTH_SQLITE_WRITERS, PASSWORD

pytestmark = BOTH_SQLITE_WRITERS


async def _picked_up(api, **over):
    code, head = await _ready(api)
    return await api.event("courier1", code, "picked_up", head, **over)


async def _with_a_valid_one(api, bad: dict) -> list[tuple[str, str]]:
    """Sync [valid, bad] and return both answers; the valid one must be accepted."""
    good = await _picked_up(api)
    answers = await _statuses(await api.sync("courier1", [good, bad]))
    assert answers[0][0] == "accepted", answers
    return answers


async def test_an_integer_beyond_i_json_is_rejected_naming_the_field(api):
    bad = await _picked_up(api)
    # signed by hand: the signer's canonicalizer refuses such a number too
    bad["data"]["fee_vnd"] = 2**53 + 1
    status, reason = (await _with_a_valid_one(api, bad))[1]
    assert status == "rejected" and "data.fee_vnd" in reason and "2^53" in reason


async def test_data_nested_too_deep_is_rejected_with_the_limit(api):
    bad = await _picked_up(api)
    deep: list = []
    for _ in range(600):
        deep = [deep]
    bad["data"]["extra"] = deep
    status, reason = (await _with_a_valid_one(api, bad))[1]
    assert status == "rejected" and "32" in reason and "data" in reason


async def test_identity_that_is_not_an_object_is_rejected(api):
    for identity in ("id_last4", None, ["id_last4"]):
        code, head = await _ready(api)
        e1 = await api.event("courier1", code, "picked_up", head)
        e2 = await api.event(
            "courier1",
            code,
            "delivered",
            e1["hash"],
            counterparty={"name": "Công ty A", "role": "business"},
            data={"identity": identity},
        )
        answers = await _statuses(await api.sync("courier1", [e1, e2]))
        assert answers[0][0] == "accepted"
        assert answers[1][0] == "rejected" and "data.identity" in answers[1][1], answers


async def _transfer(api, code, prev, user_id, role="courier"):
    return await api.event(
        "courier1",
        code,
        "transferred",
        prev,
        counterparty={"name": "Người nhận", "role": role, "user_id": user_id},
    )


async def test_a_transfer_to_an_unknown_user_is_rejected(api):
    code, head = await _ready(api)
    e1 = await api.event("courier1", code, "picked_up", head)
    e2 = await _transfer(api, code, e1["hash"], 999999)
    other = await _picked_up(api)
    answers = await _statuses(await api.sync("courier1", [e1, e2, other]))
    assert [s for s, _ in answers] == ["accepted", "rejected", "accepted"], answers
    assert "999999" in answers[1][1]


async def test_a_transfer_goes_only_to_an_active_courier_of_the_same_unit(api, db):
    await auth_service.add_unit(db, "BC-KONTUM", "Bưu cục Kon Tum", "post_office")
    await auth_service.add_user(db, "farcourier", PASSWORD, "courier", "BC-KONTUM", "Đinh Văn Xa")
    await api.login("farcourier")
    await api.login("dispatcher")
    await api.login("courier2")
    code, head = await _ready(api)
    e1 = await api.event("courier1", code, "picked_up", head)
    assert (await _statuses(await api.sync("courier1", [e1])))[0][0] == "accepted"
    for user_id, role in (
        (api.user_ids["dispatcher"], "courier"),  # the jam of issue 13
        (api.user_ids["farcourier"], "courier"),  # another unit
        (api.user_ids["dispatcher"], "clerk"),  # not a clerk
    ):
        e2 = await _transfer(api, code, e1["hash"], user_id, role)
        status, reason = (await _statuses(await api.sync("courier1", [e2])))[0]
        assert status == "rejected" and str(user_id) in reason, (user_id, role, reason)
    # the shipment is not jammed: the dispatcher can still assign it, the courier still holds it
    r = await api.call(
        "POST",
        f"/api/v1/shipments/{code}/assign",
        "dispatcher",
        json={"courier_id": api.user_ids["courier1"]},
    )
    assert r.status_code == 200, r.text
    ok = await _transfer(api, code, e1["hash"], api.user_ids["courier2"])
    assert (await _statuses(await api.sync("courier1", [ok])))[0][0] == "accepted"


async def test_a_body_that_is_not_json_is_refused_with_415(api):
    good = await _picked_up(api)
    bad = dict(good, location=dict(good["location"], lat="13.98"))
    for content_type in ("text/plain", "application/x-www-form-urlencoded"):
        r = await api.call(
            "POST",
            "/api/v1/events",
            "courier1",
            content=msgspec.json.encode({"events": [bad]}),
            headers={"content-type": content_type},
        )
        assert r.status_code == 415, (content_type, r.status_code, r.text)
        assert "application/json" in r.json()["detail"]


async def test_times_before_the_service_existed_are_rejected(api):
    bad = await _picked_up(api, occurred_at="1970-01-01T00:00:00.000Z")
    status, reason = (await _with_a_valid_one(api, bad))[1]
    assert status == "rejected" and "2020-01-01" in reason and "occurred_at" in reason
    loc = {"lat": 13.98, "lon": 108.0, "accuracy_m": 5.0, "fix_at": "2019-12-31T23:59:59.999Z"}
    bad = await _picked_up(api, location=loc)
    status, reason = (await _with_a_valid_one(api, bad))[1]
    assert status == "rejected" and "location.fix_at" in reason


async def test_a_long_note_is_rejected_and_not_kept_whole(api, db):
    code, head = await _ready(api)
    e1 = await api.event("courier1", code, "picked_up", head)
    e2 = await api.event(
        "courier1", code, "delivery_failed", e1["hash"], data={"reason": "other", "note": "x" * 2001}
    )
    answers = await _statuses(await api.sync("courier1", [e1, e2]))
    assert answers[0][0] == "accepted"
    assert answers[1][0] == "rejected" and "data.note" in answers[1][1] and "2000" in answers[1][1]


async def test_an_oversized_event_is_rejected_and_not_kept_whole(api, db):
    data = {"components": ["Tờ khai"], "fee_vnd": 0, "blob": "x" * (70 * 1024)}
    bad = await _picked_up(api, data=data)
    status, reason = (await _with_a_valid_one(api, bad))[1]
    assert status == "rejected" and "64 KiB" in reason
    async with db.read() as conn:
        longest = await conn.scalar(select(func.max(func.length(rejected_events.c.body))))
    assert longest < 70 * 1024


async def test_a_body_beyond_the_batch_size_is_refused_with_413(api):
    good = await _picked_up(api)
    good["data"]["blob"] = "x" * (60 * 1024)
    r = await api.sync("courier1", [good] * 400)  # ~24 MB
    assert r.status_code == 413, r.status_code


async def test_rejected_rows_kept_per_batch_are_limited(api, db):
    code, head = await _ready(api)
    e1 = await api.event("courier1", code, "picked_up", head)
    stale = [await api.event("courier1", code, "delivery_failed", "0" * 64) for _ in range(120)]
    answers = await _statuses(await api.sync("courier1", [e1, *stale]))
    assert answers[0][0] == "accepted"
    assert all(s == "rejected" for s, _ in answers[1:])
    assert "not kept" in answers[-1][1] and "100" in answers[-1][1]
    async with db.read() as conn:
        kept = await conn.scalar(select(func.count()).select_from(rejected_events))
    assert kept == 100
