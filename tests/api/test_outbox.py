"""The outbox end to end: registration and custody events write messages in their own
transaction, a worker sends them to a real SMPP server, a real HTTPS endpoint (Zalo ZNS's
shape) and webhook receivers on 127.0.0.1; retries, dead letters, rotation; no PIN in logs."""

from __future__ import annotations

import asyncio
import logging
import re

import pytest
from sqlalchemy import select, update
from standardwebhooks.webhooks import Webhook as StandardWebhook
from standardwebhooks.webhooks import WebhookVerificationError

from server.db.engine import Database
from server.db.models import custody_events, outbox_messages
from server.keys import load_keys
from server.outbox import service
from server.outbox.worker import Worker
from tests.outbox_servers import Endpoint, Smsc

SYSTEM_ID, SMPP_PASSWORD = "hoso", "smpp-pw1"  # SMPP 3.4: a password has at most 8 octets


@pytest.fixture
def settings(settings, tmp_path):
    return settings.with_(outbox_worker=False, smpp_rate=0, webhook_rate=0, zalo_rate=0)


async def _drain(worker: Worker) -> None:
    for _ in range(20):
        if not await worker.run_once():
            return


async def _states(db) -> list[tuple[str, str, str, int | None]]:
    async with db.read() as conn:
        rows = await conn.execute(
            select(
                outbox_messages.c.topic,
                outbox_messages.c.channel,
                outbox_messages.c.state,
                outbox_messages.c.segments,
            ).order_by(outbox_messages.c.id)
        )
        return [tuple(r) for r in rows]


async def _journey(api) -> tuple[str, str, str]:
    """A submission (its PIN), its result, and the result carried to the citizen with one
    failed attempt first: (pin, submission code, result code)."""
    sub = await api.create_shipment("submission")
    res = await api.create_shipment(
        "result", user="shopclerk", parent=sub["code"], sender=None, recipient=None
    )
    await api.assign(res["code"])
    head = res["head"]
    for type_ in ("picked_up", "delivery_failed", "delivered"):
        ev = await api.event(
            "courier1",
            res["code"],
            type_,
            head,
            counterparty=(
                None
                if type_ == "delivery_failed"
                else {"name": "Phạm Minh Tuấn", "role": "clerk"}
                if type_ == "picked_up"
                else {"name": "Nguyễn Thị Bích", "role": "citizen", "id_last4": "4821"}
            ),
        )
        r = await api.sync("courier1", [ev])
        assert r.json()["results"][0]["status"] == "accepted", r.text
        head = ev["hash"]
    return sub["pin"], sub["code"], res["code"]


async def test_sms_over_smpp_and_no_pin_in_logs(api, db, settings, caplog):
    caplog.set_level(logging.DEBUG)
    with Smsc(SYSTEM_ID, SMPP_PASSWORD) as smsc:
        cfg = settings.with_(
            smpp_host="127.0.0.1",
            smpp_port=smsc.port,
            smpp_system_id=SYSTEM_ID,
            smpp_password=SMPP_PASSWORD,
            smpp_source_addr="HOSO",
        )
        pin, sub_code, res_code = await _journey(api)
        worker = Worker(db, cfg, load_keys(cfg.keys_dir))
        try:
            await _drain(worker)
        finally:
            await worker.channels.close()
        got = smsc.state.messages()
    texts = {text: parts for _, text, parts in got}
    print("\nSMPP server received:")
    for dest, text, parts in got:
        print(f"  {dest} [{parts} part(s)] {text}")
    assert all(dest == "84905123456" for dest, _, _ in got)
    pin_texts = [t for t in texts if pin in t]
    assert len(pin_texts) == 1 and texts[pin_texts[0]] == 1 and len(pin_texts[0]) <= 70
    assert any(f"/t/{sub_code}" in t and "đã nhận" in t for t in texts)
    assert any("sẵn sàng" in t and f"/t/{res_code}" in t for t in texts)
    assert any("đang mang" in t for t in texts)
    assert any("không có người nhận" in t and "giao lại" in t for t in texts)
    assert any("Đã giao kết quả" in t for t in texts)
    assert smsc.state.binds[0] == (SYSTEM_ID, 0x02)
    # the short link the texts carry opens the citizen page
    page = await api.client.get(f"/t/{res_code}")
    assert page.status_code == 200 and res_code[:4] in page.text
    states = await _states(db)
    assert {s for _, _, s, _ in states} == {"sent"}, states
    assert {c for _, c, _, _ in states} == {"sms"}
    # the PIN is gone from the database once sent, and never was in any log line
    async with db.read() as conn:
        assert (
            await conn.execute(select(outbox_messages.c.sealed).where(outbox_messages.c.sealed.is_not(None)))
        ).first() is None
    logged = caplog.text
    assert pin not in logged
    assert pin.encode("utf-16-be").hex() not in logged and pin.encode().hex() not in logged


async def test_zalo_zns_over_https(api, db, settings, tmp_path):
    with Endpoint(tmp_path) as zalo:
        cfg = settings.with_(
            zalo_token="test-oa-token",
            zalo_url=f"{zalo.url}/message/template",
            https_ca_file=str(zalo.ca_file),
        )
        await service.set_notify(db, "BC-PLEIKU", "zalo", {"pin": "231001", "registered": "231002"}, "")
        sub = await api.create_shipment("submission")
        worker = Worker(db, cfg, load_keys(cfg.keys_dir))
        try:
            await _drain(worker)
        finally:
            await worker.channels.close()
        received = list(zalo.received)
    assert [r.path for r in received] == ["/message/template"] * 2
    assert all(r.headers["access_token"] == "test-oa-token" for r in received)
    bodies = sorted((r.json() for r in received), key=lambda b: b["template_id"])
    print("\nHTTPS (ZNS) endpoint received:", *bodies, sep="\n  ")
    assert bodies[0] == {
        "phone": "84905123456",
        "template_id": "231001",
        "template_data": {"ma_ho_so": sub["code"], "ma_pin": sub["pin"]},
        "tracking_id": bodies[0]["tracking_id"],
    }
    assert bodies[1]["template_data"]["link"] == f"http://testserver/t/{sub['code']}"
    assert {c for _, c, _, _ in await _states(db)} == {"zns"}


async def test_an_untrusted_certificate_is_a_retry_not_a_send(api, db, settings, tmp_path):
    with Endpoint(tmp_path) as zalo:
        cfg = settings.with_(zalo_token="t", zalo_url=f"{zalo.url}/x")  # the system's CAs: not ours
        await service.set_notify(db, "BC-PLEIKU", "zalo", {"pin": "1", "registered": "2"}, "")
        await api.create_shipment("submission")
        worker = Worker(db, cfg, load_keys(cfg.keys_dir))
        try:
            assert await worker.run_once() == 2
        finally:
            await worker.channels.close()
        assert zalo.received == []
    states = await _states(db)
    assert [s for _, _, s, _ in states] == ["pending", "pending"]


async def test_webhooks_signed_rotated_with_hash_and_log_index(api, db, settings):
    with Endpoint() as hook:
        sid, secret = await service.add_subscription(
            db, "TTHCC-GL", f"{hook.url}/hoso", ["registered", "assigned", "delivered"]
        )
        sub = await api.create_shipment("submission", dest_unit="TTHCC-GL")
        await api.assign(sub["code"])
        worker = Worker(db, settings, load_keys(settings.keys_dir))
        try:
            await _drain(worker)
            new_secret = await service.rotate_secret(db, sid)
            ev = await api.event(
                "courier1",
                sub["code"],
                "picked_up",
                sub["head"],
                counterparty={"name": "Nguyễn Thị Bích", "role": "citizen"},
            )
            ev2 = await api.event(
                "courier1",
                sub["code"],
                "delivered",
                ev["hash"],
                counterparty={"name": "Phạm Minh Tuấn", "role": "clerk"},
                data={},
            )
            r = await api.sync("courier1", [ev, ev2])
            assert [x["status"] for x in r.json()["results"]] == ["accepted", "accepted"], r.text
            await _drain(worker)
        finally:
            await worker.channels.close()
        received = list(hook.received)
    # one batch's messages go out side by side: their order is not kept
    received[:2] = sorted(received[:2], key=lambda r: r.json()["type"], reverse=True)
    types = [r.json()["type"] for r in received]
    assert types == [
        "shipment.registered",
        "shipment.assigned",
        "shipment.delivered",
    ]  # picked_up: not subscribed
    for r in received[:2]:
        StandardWebhook(secret).verify(r.body, r.headers)
    last = received[2]
    # during the rotation both secrets sign: a receiver holding either one verifies
    assert len(last.headers["webhook-signature"].split(" ")) == 2
    StandardWebhook(secret).verify(last.body, last.headers)
    StandardWebhook(new_secret).verify(last.body, last.headers)
    with pytest.raises(WebhookVerificationError):
        StandardWebhook(secret).verify(last.body.replace(b"delivered", b"returned"), last.headers)
    data = last.json()["data"]
    async with db.read() as conn:
        row = (
            await conn.execute(
                select(custody_events.c.hash, custody_events.c.log_index).where(
                    custody_events.c.id == ev2["id"]
                )
            )
        ).one()
    assert (data["hash"], data["log_index"], data["shipment"]) == (row.hash, row.log_index, sub["code"])
    assert data["dossier_ref"] == "000.00.12.H21-261122-0001"
    print(
        "\nwebhook received:",
        last.headers["webhook-id"],
        last.headers["webhook-signature"][:30],
        last.body.decode(),
    )


async def test_retries_back_off_then_dead_letter_then_admin_retry(api, db, settings):
    with Endpoint(answers=lambda n: (503, {"busy": True})) as hook:
        cfg = settings.with_(outbox_max_attempts=3, outbox_backoff_s=0.05, outbox_backoff_cap_s=0.2)
        await service.add_subscription(db, "BC-PLEIKU", f"{hook.url}/h", ["registered"])
        await api.create_shipment("submission")
        worker = Worker(db, cfg, load_keys(cfg.keys_dir))
        seen = []
        try:
            for _ in range(40):
                await worker.run_once()
                async with db.read() as conn:
                    row = (
                        await conn.execute(
                            select(outbox_messages).where(outbox_messages.c.channel == "webhook")
                        )
                    ).one()
                seen.append((row.state, row.attempts))
                if row.state == "dead":
                    break
                await asyncio.sleep(0.05)
        finally:
            await worker.channels.close()
        assert row.state == "dead" and row.attempts == 3 and "HTTP 503" in row.last_error
        assert len(hook.received) == 3
        # the retries were spaced: each retry's next_at after the failure (half to all of 2^n·base)
        dead = await service.dead_letters(db)
        assert [d.id for d in dead] == [row.id]
        await service.retry(db, row.id)
        async with db.read() as conn:
            again = (await conn.execute(select(outbox_messages).where(outbox_messages.c.id == row.id))).one()
        assert (again.state, again.attempts) == ("pending", 0)
        with pytest.raises(Exception, match="No dead letter"):
            await service.retry(db, row.id)


async def test_no_gateway_no_number_skipped_with_reason(api, db, settings):
    sub = await api.create_shipment("submission", sender={"name": "Không có số", "phone": "0241234567"})
    worker = Worker(db, settings, load_keys(settings.keys_dir))
    try:
        await _drain(worker)
    finally:
        await worker.channels.close()
    async with db.read() as conn:
        rows = (
            await conn.execute(
                select(outbox_messages.c.state, outbox_messages.c.last_error, outbox_messages.c.sealed)
            )
        ).all()
    assert {(r.state, r.last_error) for r in rows} == {("skipped", "no Vietnamese mobile number on record")}
    assert all(r.sealed is None for r in rows)
    # the console says why in the reader's language (the stored reason stays English for the API)
    from tests.api.test_console import console_login

    await console_login(api.client, "dispatcher")
    page = await api.client.get(f"/console/shipments/{sub['code']}")
    assert "không có số di động Việt Nam trong hồ sơ" in page.text
    assert "no Vietnamese mobile number" not in page.text
    page = await api.client.get(f"/console/shipments/{sub['code']}?lang=en")
    assert "no Vietnamese mobile number on record" in page.text


async def test_outbox_rows_roll_back_with_their_cause(api, db, settings):
    """A registration that fails after its rows were built writes none of them."""
    before = await _states(db)
    sub = await api.create_shipment("submission")
    n = len(await _states(db))
    assert n == len(before) + 2
    # a refused event writes no message
    ev = await api.event("courier2", sub["code"], "picked_up", sub["head"])
    r = await api.sync("courier2", [ev])
    assert r.json()["results"][0]["status"] == "rejected"
    assert len(await _states(db)) == n


async def test_backoff_grows_with_jitter():
    from server.outbox.worker import backoff

    values = [backoff(k, 5, 3600) for k in range(1, 8) for _ in range(20)]
    for k in range(1, 8):
        d = min(3600, 5 * 2 ** (k - 1))
        sample = [backoff(k, 5, 3600) for _ in range(50)]
        assert all(d / 2 <= v <= d for v in sample)
        assert len(set(sample)) > 1
    assert max(values) <= 3600
    assert backoff(30, 5, 3600) <= 3600


async def test_console_lists_messages_and_retries_a_dead_letter(api, db, settings):
    from tests.api.test_console import console_login, csrf

    sub = await api.create_shipment("submission")
    async with db.write() as conn:  # one message given up, as the worker leaves it after N tries
        await conn.execute(
            update(outbox_messages)
            .where(outbox_messages.c.topic == "registered")
            .values(state="dead", attempts=8, last_error="SMPP gateway 127.0.0.1:1 unreachable")
        )
    client = api.client
    await console_login(client, "dispatcher")
    page = await client.get(f"/console/shipments/{sub['code']}")
    assert page.status_code == 200
    assert 'data-topic="pin"' in page.text and 'data-state="pending"' in page.text
    assert 'data-state="dead"' in page.text and "SMPP gateway 127.0.0.1:1 unreachable" in page.text
    assert sub["pin"] not in page.text
    assert (await client.get("/console/outbox")).status_code == 403  # a dispatcher: not the admin's page
    await client.post("/console/logout", data={"_csrf_token": csrf(page.text)})
    await console_login(client, "admin")
    dead = await client.get("/console/outbox")
    assert dead.status_code == 200 and sub["code"] in dead.text
    message_id = int(re.search(r'id="dead-(\d+)"', dead.text).group(1))
    # without the CSRF token: refused
    r = await client.post(f"/console/outbox/{message_id}/retry", data={})
    assert r.status_code == 403
    r = await client.post(
        f"/console/outbox/{message_id}/retry", data={"_csrf_token": csrf(dead.text)}, follow_redirects=True
    )
    assert r.status_code == 200 and f"Đã đưa tin số {message_id}" in r.text
    assert f'id="dead-{message_id}"' not in r.text
    r = await client.post(f"/console/outbox/{message_id}/retry", data={"_csrf_token": csrf(dead.text)})
    assert r.status_code == 404 and "Không có thư chết" in r.text


async def test_the_server_runs_a_worker_by_default(settings):
    """`hoso serve`'s app sends on its own: a registration's webhook arrives without any
    worker started by the test."""
    from litestar.testing import AsyncTestClient

    from server.app import create_app
    from tests.api.conftest import Api

    with Endpoint() as hook:
        cfg = settings.with_(outbox_worker=True, outbox_poll_s=0.2)
        db_ = Database(cfg.db_url)
        try:
            await service.add_subscription(db_, "BC-PLEIKU", f"{hook.url}/h", ["registered"])
        finally:
            await db_.dispose()
        async with AsyncTestClient(create_app(cfg), base_url="http://testserver") as client:
            sub = await Api(client).create_shipment("submission")
            for _ in range(100):
                if hook.received:
                    break
                await asyncio.sleep(0.05)
        assert [r.json()["data"]["shipment"] for r in hook.received] == [sub["code"]]


async def test_one_dead_letter_retried_ten_times_at_once_is_queued_once(api, db):
    """Two admins (or a double click) retrying the same dead letter: one retry takes it, the
    others are told it is no longer a dead letter; nothing else changes, no 500."""
    from tests.api.test_console import console_login, csrf

    sub = await api.create_shipment("submission")
    async with db.write() as conn:
        await conn.execute(
            update(outbox_messages)
            .where(outbox_messages.c.topic == "registered")
            .values(state="dead", attempts=8)
        )
    client = api.client
    await console_login(client, "admin")
    dead = await client.get("/console/outbox")
    message_id = int(re.search(r'id="dead-(\d+)"', dead.text).group(1))
    token = csrf(dead.text)
    answers = await asyncio.gather(
        *(client.post(f"/console/outbox/{message_id}/retry", data={"_csrf_token": token}) for _ in range(10))
    )
    codes = sorted(r.status_code for r in answers)
    assert codes == [200] + [404] * 9, codes  # the one that took it lands on the list again
    async with db.read() as conn:
        states = (
            (
                await conn.execute(
                    select(outbox_messages.c.state).where(outbox_messages.c.shipment_id.isnot(None))
                )
            )
            .scalars()
            .all()
        )
    assert "dead" not in states and sub["code"]
