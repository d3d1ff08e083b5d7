"""The courier's flows in plain Python against a real `hoso serve`: the app's context with
a fake GPS and clock, and the real outbox, device key, HTTP and sync."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image

from bench._harness import PASSWORD, Server
from courier_app.context import AppContext
from courier_app.flows.custody import (
    SCANNED,
    CounterHandoverFlow,
    FailedAttemptFlow,
    HandoverFlow,
    Identified,
    Incomplete,
    PickupFlow,
)
from courier_app.flows.scan import ScanFlow
from courier_app.ports import Fix
from courier_app.sync import TokenExpired
from shared.timeutil import utcnow
from tests.app.console_client import console_counter, console_receive

CITIZEN = {
    "name": "Đặng Thị Hạnh",
    "phone": "0912000111",
    "address": "7 Lê Lợi",
    "commune": "Phường Pleiku",
    "province": "Tỉnh Gia Lai",
    "id_last4": "1357",
    "lat": 13.9850,
    "lon": 108.0020,
}
SHOP = {
    "name": "Trung tâm Phục vụ hành chính công tỉnh Gia Lai",
    "address": "2 Trần Phú",
    "commune": "Phường Pleiku",
    "province": "Tỉnh Gia Lai",
    "lat": 13.9760,
    "lon": 108.0050,
}


class FakeLocator:
    def __init__(self, fix: Fix | None) -> None:
        self.fix = fix

    async def locate(self) -> Fix | None:
        return self.fix


@pytest.fixture(scope="module")
def server():
    with Server("sqlite") as srv:
        yield srv


def _register(srv: Server, kind: str, **extra) -> dict:
    return srv.dossier(
        kind,
        CITIZEN,
        SHOP,
        due_in=timedelta(days=2),
        procedure="Cấp bản sao trích lục hộ tịch",
        components=["Tờ khai cấp bản sao trích lục", "CCCD (bản sao)"],
        **extra,
    )


def _context(srv: Server, tmp_path: Path, fix: Fix | None = None, now: datetime | None = None) -> AppContext:
    fix = fix or Fix(CITIZEN["lat"], CITIZEN["lon"], 8.0, utcnow())
    ctx = AppContext(tmp_path / "phone", srv.base, lambda: now or datetime.now(UTC), FakeLocator(fix))
    session = ctx.login_flow().submit(srv.base, "courier", PASSWORD)
    assert session is not None
    ctx.signed_in(session)
    ctx.today.refresh()
    return ctx


def _sign(pad) -> None:
    for i in range(20):
        (pad.start if i == 0 else pad.extend)(20 + i * 12, 60 + (i % 4) * 15, i * 16)


def _pick_up(ctx: AppContext, code: str) -> None:
    """The citizen hands over the dossier: first paper ticked, ID checked, signed."""
    flow = PickupFlow(_row(ctx, code), ctx.recorder(), identified=SCANNED)
    flow.toggle(0)
    flow.giver_id_last4 = "1357"
    _sign(flow.pad)
    flow.finish()


def _row(ctx: AppContext, code: str):
    return next(r for r in ctx.today.rows() if r.a.code == code)


def _server_events(srv: Server, code: str) -> dict:
    return srv.http.get(f"/api/v1/shipments/{code}", headers=srv.auth("dispatcher")).json()


def test_a_day_of_work_pickup_handover_failed_delivery_by_pin(server, tmp_path):
    sub = _register(server, "submission")
    res = _register(server, "result")
    ctx = _context(server, tmp_path)
    assert {sub["code"], res["code"]} <= ctx.today.assigned_codes()
    assert _row(ctx, sub["code"]).action == "pickup"

    # pickup of the citizen's dossier: the flow says what is missing, in order, and signs nothing
    pickup = PickupFlow(_row(ctx, sub["code"]), ctx.recorder(), identified=SCANNED)
    assert pickup.missing() == ["flow.components_missing", "flow.id_last4_invalid", "sign.empty"]
    with pytest.raises(Incomplete):
        pickup.finish()
    assert ctx.outbox.waiting() == 0
    pickup.toggle(0)
    pickup.toggle(1)
    pickup.giver_id_last4 = "1357"
    pickup.fee_text = "8.000"
    _sign(pickup.pad)
    pickup.set_fix(Fix(CITIZEN["lat"], CITIZEN["lon"], 6.0, utcnow()))
    assert pickup.distance_from_address_m is not None and not pickup.far_from_address
    pickup.finish()
    row = _row(ctx, sub["code"])
    assert (row.state, row.action, row.unsynced) == ("in_custody", "handover", 1)

    # the result picked up from the one-stop shop's clerk (no checklist)
    result_pickup = PickupFlow(
        _row(ctx, res["code"]), ctx.recorder(), giver_name="Phạm Minh Tuấn", identified=SCANNED
    )
    _sign(result_pickup.pad)
    result_pickup.set_fix(None)  # no GPS indoors: recorded with the reason
    result_pickup.finish()

    # the dossier handed to the shop: `delivered` there, with the clerk's one signature
    handover = HandoverFlow(ctx.recorder(), receiver_name="Phạm Minh Tuấn", receiver_unit="TTHCC-GL")
    assert handover.add(_row(ctx, sub["code"])) is None
    assert handover.add(_row(ctx, sub["code"])) == "handover.already_added"
    _sign(handover.pad)
    [handed] = handover.finish()
    assert handed.type == "delivered" and handed.counterparty.role == "clerk"

    # nobody home, then delivered against the citizen's PIN, far from the address
    failed = FailedAttemptFlow(_row(ctx, res["code"]), ctx.recorder(), reason="other", identified=SCANNED)
    assert failed.missing() == ["flow.note_missing"]
    failed.note = "Cổng khóa, gọi điện không nghe máy"
    failed.finish()
    delivery = ctx.delivery_flow(_row(ctx, res["code"]), SCANNED)
    delivery.method = "pin"
    delivery.set_fix(Fix(13.9950, 108.0020, 10.0, utcnow()))  # ~1.1 km north of the address
    assert delivery.far_from_address
    delivery.distance_reason = "met_elsewhere"
    _sign(delivery.pad)
    wrong = "000001" if res["pin"] == "000000" else "000000"
    delivery.pin = wrong
    assert delivery.missing() == ["flow.pin_unchecked"]
    assert delivery.check_pin() == "wrong"  # checked by the server at once, online
    assert delivery.missing() == ["flow.pin_wrong"]
    delivery.pin = res["pin"]
    assert delivery.check_pin() == "right"
    assert delivery.missing() == []
    delivery.finish()
    assert ctx.outbox.waiting() == 5

    report = ctx.sync_now()
    assert report is not None and (report.accepted, report.rejected) == (5, 0)
    assert ctx.outbox.waiting() == 0 and ctx.outbox.rejected() == []
    s, r = _server_events(server, sub["code"]), _server_events(server, res["code"])
    assert s["state"] == "delivered" and r["state"] == "delivered"
    assert [e["event"]["type"] for e in r["events"]] == [
        "registered",
        "picked_up",
        "delivery_failed",
        "delivered",
    ]
    assert r["events"][1]["event"]["data"]["no_fix_reason"] and r["events"][1]["event"]["location"] is None
    identity = r["events"][3]["event"]["data"]["identity"]
    assert set(identity) == {"method", "pin_sealed", "pin_checked"}  # the PIN itself never leaves
    assert (identity["method"], identity["pin_checked"]) == ("pin", "online")
    assert r["events"][3]["event"]["data"]["distance_reason"] == "met_elsewhere"
    assert r["events"][3]["flags"] == []
    assert all(e["missing_attachments"] == [] for e in s["events"] + r["events"])
    ctx.today.refresh()
    assert all(row.done for row in ctx.today.rows() if row.a.code in (sub["code"], res["code"]))


def test_a_handover_of_many_envelopes_is_all_or_nothing(server, tmp_path):
    codes = [_register(server, "submission")["code"] for _ in range(3)]
    ctx = _context(server, tmp_path)
    for code in codes:
        _pick_up(ctx, code)
    handover = HandoverFlow(ctx.recorder(), receiver_role="courier", receiver_name="Trần Thị Lan")
    for code in codes:
        handover.add(_row(ctx, code))
    _sign(handover.pad)

    real = ctx.outbox._db
    calls = {"events": 0}

    class DiesOnThirdEnvelope:
        def execute(self, sql, *args):
            if sql.startswith("INSERT INTO events"):
                calls["events"] += 1
                if calls["events"] == 3:
                    raise OSError("battery died")
            return real.execute(sql, *args)

    ctx.outbox._db = DiesOnThirdEnvelope()
    with pytest.raises(OSError):
        handover.finish()
    ctx.outbox._db = real
    assert ctx.outbox.waiting() == 3  # only the three pickups: no envelope half handed over
    events = handover.finish()
    assert [e.type for e in events] == ["transferred"] * 3
    assert len({e.attachments.signature for e in events}) == 1  # one signature for the batch
    report = ctx.sync_now()
    assert report is not None and report.accepted == 6 and report.uploaded == 2  # png + strokes


def test_expired_session_keeps_the_outbox_and_today_works_offline(server, tmp_path):
    code = _register(server, "submission")["code"]
    ctx = _context(server, tmp_path)
    _pick_up(ctx, code)
    server.stop()
    try:  # the app is closed and reopened with no signal: signed in still, yesterday's list
        again = AppContext(tmp_path / "phone", server.base, lambda: datetime.now(UTC), FakeLocator(None))
        assert again.resume_session()
        again.today.refresh()
        assert again.today.offline and _row(again, code).state == "in_custody"  # own record laid over it
        assert again.sync_now() is None and again.outbox.waiting() == 1
    finally:
        server.start()
    again.sessions.current.expires_at = 0  # the token ran out while the courier was on the road
    with pytest.raises(TokenExpired):
        again.sync_now()
    again.sign_out()  # what the app does on TokenExpired: back to login, outbox untouched
    assert not again.resume_session() and again.outbox.waiting() == 1
    session = again.login_flow().submit(server.base, "courier", PASSWORD)
    again.signed_in(session)
    report = again.sync_now()
    assert report is not None and report.accepted == 1 and again.outbox.waiting() == 0


def _jpeg(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.convert("RGB").save(out, format="JPEG", quality=85)
    return out.getvalue()


def test_scanning_frames_several_labels_and_typed_codes(server, tmp_path):
    from tests.e2e.camera import label_frame

    a, b = (_register(server, "submission")["code"] for _ in range(2))
    ctx = _context(server, tmp_path)
    pngs = [
        server.http.get(f"/api/v1/shipments/{c}/label.png", headers=server.auth("clerk")).content
        for c in (a, b)
    ]
    one = label_frame(pngs[0], 1280, 720)
    flow = ScanFlow(ctx.today.label_keys, ctx.today.assigned_codes())
    assert flow.on_frame(_jpeg(one)) == a and flow.message == "scan.ok"

    both = Image.new("RGB", (1280, 720), (128, 128, 128))
    both.paste(label_frame(pngs[0], 640, 720), (0, 0))
    both.paste(label_frame(pngs[1], 640, 720), (640, 0))
    flow = ScanFlow(ctx.today.label_keys, ctx.today.assigned_codes())
    assert flow.on_frame(_jpeg(both)) is None and sorted(flow.choices) == sorted([a, b])
    assert flow.choose(b) == b

    assert flow.on_frame(b"not a jpeg") is None
    i = next(i for i in range(12) if a[i] != a[i + 1])
    swapped = a[:i] + a[i + 1] + a[i] + a[i + 2 :]
    assert flow.on_typed(swapped) is None and flow.message == "scan.bad_code"
    assert flow.on_typed(f"{a[:4]} {a[4:8]} {a[8:]}") is None and flow.message == "scan.typed_reason_missing"
    assert flow.on_typed(f"{a[:4]} {a[4:8]} {a[8:]}", "label_damaged") == a
    assert flow.identified == Identified("typed", "label_damaged")
    stranger = ScanFlow(ctx.today.label_keys, set())
    assert stranger.on_typed(a) is None and stranger.message == "scan.not_assigned"


def test_a_batch_signed_for_on_the_console_is_confirmed_on_the_phone(server, tmp_path):
    server._cli(["unit", "add", "TTHCC-1", "--name", "Một cửa tỉnh", "--kind", "one_stop_shop"])
    server._cli(["user", "add", "shopclerk", "--role", "clerk", "--unit", "TTHCC-1"], stdin=PASSWORD + "\n")
    codes = [_register(server, "submission", dest_unit="TTHCC-1")["code"] for _ in range(2)]
    ctx = _context(server, tmp_path)
    for code in codes:
        _pick_up(ctx, code)
    assert ctx.sync_now().accepted == 2

    console_receive(server, "shopclerk", server.courier_id, codes)
    ctx.today.refresh()
    [pending] = ctx.today.counter_handovers()
    assert sorted(pending.codes) == sorted(codes)
    flow = CounterHandoverFlow.for_pending(ctx.recorder(), pending, ctx.today)
    flow.set_fix(Fix(SHOP["lat"], SHOP["lon"], 5.0, utcnow()))
    events = flow.finish()
    assert [e.type for e in events] == ["delivered", "delivered"]
    assert {e.attachments.signature for e in events} == {pending.signature}
    assert ctx.today.counter_handovers() == []  # done on the phone, even before it syncs
    assert ctx.sync_now().accepted == 2
    for code in codes:
        detail = _server_events(server, code)
        last = detail["events"][-1]
        assert detail["state"] == "delivered" and last["missing_attachments"] == []
        assert last["event"]["counterparty"]["role"] == "clerk"
    ctx.today.refresh()
    assert ctx.today.handovers == []  # the server agrees nothing is left to sign


def test_a_dossier_received_at_the_counter_is_picked_up_from_its_clerk(server, tmp_path):
    """Issue 18: the counter's dossier travels as any other, but the courier takes it from the
    post office's clerk (no citizen, no checklist, no fee: all done at the counter)."""
    import contextlib
    import subprocess

    with contextlib.suppress(subprocess.CalledProcessError):  # once per module's server
        server._cli(["unit", "add", "TTHCC-GL", "--name", SHOP["name"], "--kind", "one_stop_shop"])
    due = (utcnow() + timedelta(days=3)).date().isoformat()
    code = console_counter(
        server,
        "clerk",
        {
            "dest_unit": "TTHCC-GL",
            "procedure_code": "",
            "procedure": "Chứng thực bản sao",
            "fee_vnd": "6.000",
            "components": "Bản chính giấy tờ\nBản sao cần chứng thực",
            "citizen_name": CITIZEN["name"],
            "citizen_id_last4": CITIZEN["id_last4"],
            "due_date": due,
        },
    )
    server.http.post(
        f"/api/v1/shipments/{code}/assign",
        headers=server.auth("dispatcher"),
        json={"courier_id": server.courier_id},
    ).raise_for_status()
    ctx = _context(server, tmp_path)
    row = _row(ctx, code)
    assert row.a.channel == "counter" and row.action == "pickup"
    assert row.a.stop.contact_name == "Bưu cục" and row.a.stop.contact_unit == "BC-1"  # the counter
    flow = PickupFlow(row, ctx.recorder(), giver_name="Lê Thị Hoa", identified=SCANNED)
    assert not flow.from_citizen and flow.at_counter and flow.institution == "Bưu cục"
    _sign(flow.pad)
    assert flow.missing() == []
    ev = flow.finish()
    assert ev.counterparty.role == "clerk" and ev.counterparty.unit == "BC-1"
    assert ev.data["fee_vnd"] == 0 and ev.data["components"] == [
        "Bản chính giấy tờ",
        "Bản sao cần chứng thực",
    ]
    assert ctx.sync_now().accepted == 1
    detail = _server_events(server, code)
    assert detail["state"] == "in_custody" and [e["event"]["type"] for e in detail["events"]] == [
        "registered",
        "picked_up",
    ]
    assert detail["fee_vnd"] == 6_000  # taken once, at the counter
