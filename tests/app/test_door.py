"""Issue 19 and 13.3, the courier at the door, against a real `hoso serve`: label keys that
rotate and are revoked, an ID card that does not match, a PIN the phone cannot reveal,
custody that starts from the envelope in hand, the person who handed it over."""

from __future__ import annotations

import io
import re
import subprocess

import httpx
import pytest
from PIL import Image

from bench._harness import PASSWORD, Server
from courier_app.context import AppContext
from courier_app.flows.custody import SCANNED, HandoverFlow, Identified, Incomplete, PickupFlow
from courier_app.flows.scan import ScanFlow
from courier_app.ports import Fix
from shared.i18n import t
from shared.timeutil import utcnow
from tests.app.test_flows import CITIZEN, SHOP, FakeLocator, _context, _register, _row, _server_events, _sign
from tests.e2e.camera import label_frame


@pytest.fixture(scope="module")
def server():
    with Server("sqlite") as srv:
        yield srv


def _jpeg(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.convert("RGB").save(out, format="JPEG", quality=85)
    return out.getvalue()


def _label_png(srv: Server, code: str) -> bytes:
    return srv.http.get(f"/api/v1/shipments/{code}/label.png", headers=srv.auth("clerk")).content


def _scan(ctx: AppContext, png: bytes) -> ScanFlow:
    flow = ScanFlow(ctx.today.label_keys, ctx.today.assigned_codes(), refresh_keys=ctx.today.fresh_label_keys)
    flow.on_frame(_jpeg(label_frame(png, 1280, 720)))
    return flow


def _citizen_authentic(srv: Server, url: str) -> str:
    page = httpx.get(url.replace("http://127.0.0.1:8000", srv.base))
    return re.search(r'data-authentic="(\w+)"', page.text).group(1)


def test_labels_survive_a_rotation_and_a_revoked_key_refuses_its_own(tmp_path):
    with Server("sqlite", extra_env={"HOSO_PUBLIC_BASE_URL": "http://127.0.0.1:8000"}) as srv:
        old = _register(srv, "submission")
        old_png = _label_png(srv, old["code"])
        ctx = _context(srv, tmp_path)  # the phone's morning: keys and list fetched online
        old_kid = ctx.today.keys.label_keys[0].kid
        assert old["tracking_url"].endswith(f"&k={old_kid}")  # labels name the key that signed them

        srv._cli(["keys", "rotate", "label"])  # mid-day
        srv.stop()
        srv.start()
        new = _register(srv, "submission")
        new_png = _label_png(srv, new["code"])
        ctx.today.refresh()
        statuses = {k.kid: k.status for k in ctx.today.keys.label_keys}
        assert statuses[old_kid] == "retired" and list(statuses.values()).count("current") == 1

        for code, png in ((old["code"], old_png), (new["code"], new_png)):
            flow = _scan(ctx, png)
            assert (flow.code, flow.message) == (code, "scan.ok"), flow.message
        legacy_url = old["tracking_url"].split("&k=")[0]  # printed before labels carried a key id
        assert (
            ScanFlow(ctx.today.label_keys, {old["code"]}).on_typed(legacy_url, "label_damaged") == old["code"]
        )
        assert _citizen_authentic(srv, old["tracking_url"]) == "true"

        srv._cli(["keys", "revoke", "label", old_kid])
        srv.stop()
        srv.start()
        ctx.today.refresh()  # online: the phone learns of the revocation
        flow = _scan(ctx, old_png)
        assert flow.code is None and flow.message == "scan.revoked"
        assert "thu hồi" in t("scan.revoked", "vi") and "revoked" in t("scan.revoked", "en")
        assert t("scan.revoked", "vi") != t("scan.forged", "vi")
        legacy = ScanFlow(ctx.today.label_keys, {old["code"]})
        assert legacy.on_typed(legacy_url, "label_damaged") is None and legacy.message == "scan.revoked"
        assert _scan(ctx, new_png).code == new["code"]
        assert _citizen_authentic(srv, old["tracking_url"]) == "false"  # the citizen page agrees
        assert _citizen_authentic(srv, new["tracking_url"]) == "true"
        with pytest.raises(subprocess.CalledProcessError):  # the current key cannot be revoked: rotate first
            srv._cli(["keys", "revoke", "label", ctx.today.label_keys.keys[0].kid])


def test_a_wrong_id_number_far_from_the_address_is_not_saved_silently(server, tmp_path):
    res = _register(server, "result")
    ctx = _context(server, tmp_path)
    _pickup_result(ctx, res["code"])
    row = _row(ctx, res["code"])
    assert row.stop.id_last4 == CITIZEN["id_last4"]  # the phone holds today's 4 digits
    delivery = ctx.delivery_flow(row, SCANNED)
    delivery.set_fix(Fix(CITIZEN["lat"] + 0.053, CITIZEN["lon"], 9.0, utcnow()))  # ~5.9 km north
    assert 5800 < delivery.distance_from_address_m < 6000
    delivery.id_last4 = "0000"  # 9105 on record in the issue; 1357 here
    _sign(delivery.pad)
    assert delivery.missing() == ["flow.distance_reason_missing", "flow.id_mismatch"]
    with pytest.raises(Incomplete):
        delivery.finish()
    assert ctx.outbox.waiting() == 1  # only the pickup: nothing final was signed

    delivery.distance_reason = "met_elsewhere"
    delivery.override = True  # the courier chose "hand over anyway" …
    assert delivery.missing() == ["flow.id_mismatch"]  # … and must say why
    delivery.override_note = "Người nhận đổi CCCD mới, đã xem bản gốc"
    event = delivery.finish()
    assert event.data["identity"] == {"method": "id_last4", "override": delivery.override_note}
    assert event.data["distance_reason"] == "met_elsewhere" and event.data["identified_by"] == "scan"

    report = ctx.sync_now()
    assert report is not None and report.accepted == 2 and report.flagged == 1
    [flagged] = ctx.outbox.flagged()  # the server's flag reaches the courier
    assert (flagged.shipment, flagged.type, flagged.flags) == (
        res["code"],
        "delivered",
        ["identity_mismatch"],
    )
    assert _server_events(server, res["code"])["events"][-1]["flags"] == ["identity_mismatch"]


def test_a_mismatch_can_be_resolved_by_asking_again_or_by_the_pin(server, tmp_path):
    res = _register(server, "result")
    ctx = _context(server, tmp_path)
    _pickup_result(ctx, res["code"])
    delivery = ctx.delivery_flow(_row(ctx, res["code"]), SCANNED)
    delivery.set_fix(Fix(CITIZEN["lat"], CITIZEN["lon"], 5.0, utcnow()))
    _sign(delivery.pad)
    delivery.id_last4 = "0000"
    assert delivery.missing() == ["flow.id_mismatch"]
    delivery.ask_again()
    delivery.id_last4 = CITIZEN["id_last4"]
    assert delivery.missing() == []
    delivery.method = "pin"  # or the PIN instead
    delivery.pin = res["pin"]
    assert delivery.check_pin() == "right" and delivery.missing() == []


def _pickup_result(ctx: AppContext, code: str) -> None:
    flow = PickupFlow(_row(ctx, code), ctx.recorder(), identified=SCANNED, giver_name="Phạm Minh Tuấn")
    _sign(flow.pad)
    flow.set_fix(Fix(SHOP["lat"], SHOP["lon"], 5.0, utcnow()))
    flow.finish()


def test_the_phone_holds_nothing_that_reveals_the_pin(server, tmp_path):
    res = _register(server, "result")
    raw = server.http.get("/api/v1/me/assignments", headers=server.auth("courier")).text
    assert "pin_check" not in raw and "$argon2" not in raw
    keys = server.http.get("/api/v1/keys").json()
    assert len(keys["seal_public_key"]) == 43

    ctx = _context(server, tmp_path)
    _pickup_result(ctx, res["code"])
    assert ctx.sync_now().accepted == 1
    wrong = "000001" if res["pin"] == "000000" else "000000"
    delivery = ctx.delivery_flow(_row(ctx, res["code"]), SCANNED)
    delivery.set_fix(Fix(CITIZEN["lat"], CITIZEN["lon"], 5.0, utcnow()))
    _sign(delivery.pad)
    delivery.method, delivery.pin = "pin", wrong
    server.stop()  # no signal at the door
    try:
        assert delivery.check_pin() == "offline"
        assert t("pin.offline", "vi").startswith("Sẽ kiểm tra khi có mạng")
        assert delivery.missing() == []  # offline the courier may go on: checked on sync
        event = delivery.finish()
    finally:
        server.start()
    identity = event.data["identity"]
    assert set(identity) == {"method", "pin_sealed", "pin_checked"} and identity["pin_checked"] == "on_sync"
    stored = ctx.outbox.pending()[0]
    assert wrong not in str({k: v for k, v in stored["data"].items() if k != "identity"})
    assert identity["pin_sealed"] != wrong and len(identity["pin_sealed"]) > 60

    report = ctx.sync_now()
    assert report is not None and report.accepted == 1 and report.flagged == 1
    assert ctx.outbox.flagged()[-1].flags == ["pin_mismatch"]  # reported back to the phone
    detail = _server_events(server, res["code"])
    assert detail["events"][-1]["flags"] == ["pin_mismatch"]
    page = _console_page(server, f"/console/shipments/{res['code']}")
    assert "PIN sai" in page  # the dispatcher sees it on the shipment page
    board = _console_page(server, "/console/")
    assert 'id="flagged"' in board and f"/console/shipments/{res['code']}" in board  # and on the board


def test_online_pin_checks_count_against_the_attempt_limit(server, tmp_path):
    res = _register(server, "result")
    ctx = _context(server, tmp_path)
    _pickup_result(ctx, res["code"])
    delivery = ctx.delivery_flow(_row(ctx, res["code"]), SCANNED)
    delivery.method = "pin"
    answers = []
    for i in range(6):
        delivery.pin = f"{(int(res['pin']) + 1 + i) % 1_000_000:06d}"
        answers.append(delivery.check_pin())
    assert answers[:4] == ["wrong"] * 4 and answers[-1] == "locked"
    delivery.pin = res["pin"]
    assert delivery.check_pin() == "locked"  # even the right PIN, once locked: use the ID card
    assert delivery.missing()[0] == "flow.pin_locked"


def _console_page(srv: Server, path: str) -> str:
    with httpx.Client(base_url=srv.base, timeout=30) as console:
        page = console.get("/console/login")
        token = re.search(r'name="_csrf_token" value="([^"]+)"', page.text).group(1)
        console.post(
            "/console/login",
            data={"username": "dispatcher", "password": PASSWORD, "next": "", "_csrf_token": token},
        )
        return console.get(path).text


def test_custody_starts_with_the_envelope_in_hand(server, tmp_path):
    sub = _register(server, "submission")
    ctx = _context(server, tmp_path)
    tapped = PickupFlow(_row(ctx, sub["code"]), ctx.recorder())  # opened without a scan
    assert tapped.missing()[0] == "flow.scan_first"
    scan = _scan(ctx, _label_png(server, sub["code"]))
    assert scan.identified == SCANNED
    typed = ScanFlow(ctx.today.label_keys, ctx.today.assigned_codes())
    assert typed.on_typed(sub["code"]) is None and typed.message == "scan.typed_reason_missing"
    assert typed.on_typed(sub["code"], "label_damaged") == sub["code"]
    flow = PickupFlow(_row(ctx, sub["code"]), ctx.recorder(), identified=typed.identified)
    flow.toggle(0)
    flow.giver_id_last4 = CITIZEN["id_last4"]
    _sign(flow.pad)
    flow.set_fix(Fix(CITIZEN["lat"], CITIZEN["lon"], 5.0, utcnow()))
    event = flow.finish()
    assert (event.data["identified_by"], event.data["identified_reason"]) == ("typed", "label_damaged")
    assert ctx.sync_now().accepted == 1
    assert _server_events(server, sub["code"])["events"][-1]["event"]["data"]["identified_by"] == "typed"
    assert Identified("scan").data() == {"identified_by": "scan"}


def test_a_pickup_at_the_shop_records_the_person_and_handovers_use_the_products_words(server, tmp_path):
    res = _register(server, "result")
    sub = _register(server, "submission")
    ctx = _context(server, tmp_path)
    flow = PickupFlow(_row(ctx, res["code"]), ctx.recorder(), identified=SCANNED)
    assert flow.giver_name == "" and flow.institution == SHOP["name"]  # no institution as a name
    flow.giver_name = SHOP["name"]
    _sign(flow.pad)
    flow.set_fix(Fix(SHOP["lat"], SHOP["lon"], 5.0, utcnow()))
    assert flow.missing() == ["flow.name_is_institution"]
    flow.giver_name = "Phạm Minh Tuấn"
    event = flow.finish()
    assert event.counterparty.name == "Phạm Minh Tuấn" and event.counterparty.role == "clerk"
    assert event.data["institution"] == SHOP["name"]

    pickup = PickupFlow(_row(ctx, sub["code"]), ctx.recorder(), identified=SCANNED)
    pickup.toggle(0)
    pickup.giver_id_last4 = CITIZEN["id_last4"]
    _sign(pickup.pad)
    pickup.finish()
    handover = HandoverFlow(ctx.recorder())
    handover.add(_row(ctx, sub["code"]))
    [row] = handover.rows
    label = t("handover.as." + handover.event_type(row), "vi")
    assert label != "Đã trả kết quả tận nhà" and "Hồ sơ" in label and "Một cửa" in label


def test_status_texts_say_saved_on_this_phone_not_sent(server, tmp_path):
    assert "chưa gửi" in t("flow.saved", "vi", n=1) and "not yet sent" in t("flow.saved", "en", n=1)
    assert t("sync.sent", "vi", n=2).startswith("Đã gửi")
    ctx = AppContext(tmp_path / "p", server.base, utcnow, FakeLocator(None))
    assert ctx.today.label_keys.keys == ()  # nothing fetched: nothing trusted
    ctx.close()


def test_the_sync_screens_flagged_list_names_each_delivery_for_its_kind(tmp_path):
    from courier_app.outbox import Outbox
    from shared.api import EventResult

    box = Outbox(tmp_path / "o.db")
    events = [
        {"id": "e1", "shipment": "7030086087557", "type": "delivered", "counterparty": {"role": "clerk"}},
        {"id": "e2", "shipment": "9796285295919", "type": "delivered", "counterparty": {"role": "citizen"}},
        {"id": "e3", "shipment": "9796285295919", "type": "picked_up", "counterparty": {"role": "citizen"}},
    ]
    results = [EventResult(e["id"], "accepted", flags=["device_clock_ahead"]) for e in events]
    assert box.note_flags(events, results) == 3
    said = [t(f.step_key, "vi") for f in box.flagged()]
    assert said == ["Đã nộp hồ sơ cho Bộ phận Một cửa", "Đã trả kết quả tận nhà", t("step.picked_up", "vi")]
