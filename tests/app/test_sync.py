"""Sync against a real `hoso serve`: down, queued, up, everything accepted exactly once."""

from __future__ import annotations

import hashlib
import io
import random
import sqlite3

import httpx
import msgspec
import pytest
from PIL import Image

from bench._harness import Server
from courier_app.api import ApiClient
from courier_app.outbox import Attachment, Outbox
from courier_app.sync import ServerUnavailable, Syncer, TokenExpired
from shared.events import CustodyEvent, new_event_id, sign_event
from shared.timeutil import to_wire, utcnow


def _signature_png() -> bytes:
    out = io.BytesIO()
    Image.new("L", (40, 20), 255).save(out, format="PNG")
    return out.getvalue()


@pytest.fixture(scope="module")
def server():
    with Server("sqlite") as srv:
        yield srv


def _queue(srv: Server, box: Outbox, n_shipments: int) -> list[str]:
    """What a courier records offline: a pickup with signature, then a failed attempt, per shipment."""
    png = _signature_png()
    digest = hashlib.sha256(png).hexdigest()
    codes = []
    for code, head in srv.shipments(n_shipments):
        now = to_wire(utcnow())
        loc = {"lat": 13.98, "lon": 108.0, "accuracy_m": 6.0, "fix_at": now}
        e1 = sign_event(
            srv.device,
            id=new_event_id(),
            shipment=code,
            type="picked_up",
            occurred_at=now,
            actor=f"courier:{srv.courier_id}",
            location=loc,
            prev=head,
            counterparty={"name": "Nguyễn Văn A", "role": "citizen", "id_last4": "1234"},
            attachments={"signature": digest, "photos": []},
            data={"components": ["Tờ khai"], "fee_vnd": 0},
        )
        box.put(e1, [Attachment(digest, "image/png", png)])
        e2 = sign_event(
            srv.device,
            id=new_event_id(),
            shipment=code,
            type="delivery_failed",
            occurred_at=now,
            actor=f"courier:{srv.courier_id}",
            location=loc,
            prev=box.local_head(code),
            data={"reason": "not_home"},
        )
        box.put(e2)
        codes.append(code)
    return codes


def test_offline_then_online_then_a_lost_acknowledgement(server, tmp_path):
    box = Outbox(tmp_path / "outbox.db")
    codes = _queue(server, box, 5)
    server.stop()
    sleeps: list[float] = []
    with httpx.Client(base_url=server.base, timeout=10) as http:
        syncer = Syncer(
            box,
            ApiClient(http, lambda: server.tokens["courier"]),
            sleep=sleeps.append,
            rng=random.Random(1),
            base_delay=0.01,
            max_delay=0.05,
        )
        with pytest.raises(ServerUnavailable):
            syncer.run_once()
        assert box.waiting() == 10  # nothing left the outbox
        with pytest.raises(ServerUnavailable):
            syncer.run_until_empty(deadline_s=0.2)
        assert len(sleeps) >= 2 and all(0 <= s <= 0.05 for s in sleeps)  # backoff with jitter
        server.start()
        report = syncer.run_until_empty(deadline_s=30)
        assert report.accepted == 10 and report.uploaded == 1 and box.waiting() == 0

        # the phone was killed after sending but before it stored the answer: it sends again
        with sqlite3.connect(tmp_path / "outbox.db") as raw:
            raw.execute("UPDATE events SET state = 'pending'")
        report = syncer.run_until_empty(deadline_s=30)
        assert report.duplicate == 10 and report.accepted == 0
    for code in codes:
        detail = server.http.get(f"/api/v1/shipments/{code}", headers=server.auth("dispatcher")).json()
        assert [e["event"]["type"] for e in detail["events"]] == [
            "registered",
            "picked_up",
            "delivery_failed",
        ]
        assert detail["events"][1]["missing_attachments"] == []


def test_rejections_are_kept_and_an_expired_token_stops_sync(server, tmp_path):
    box = Outbox(tmp_path / "outbox.db")
    [code] = _queue(server, box, 1)
    stale = sign_event(
        server.device,
        id=new_event_id(),
        shipment=code,
        type="delivery_failed",
        occurred_at=to_wire(utcnow()),
        actor=f"courier:{server.courier_id}",
        location=None,
        data={"reason": "not_home", "no_fix_reason": "gps_off"},
        prev="ab" * 32,
    )
    box.put(stale)
    with httpx.Client(base_url=server.base, timeout=10) as http:
        report = Syncer(box, ApiClient(http, lambda: server.tokens["courier"])).run_until_empty(deadline_s=30)
        assert report.accepted == 2 and report.rejected == 1
        [rej] = box.rejected()
        assert rej.id == stale.id and "not the current head" in rej.reason
        box.put(msgspec.convert({**msgspec.to_builtins(stale), "id": new_event_id()}, CustodyEvent))
        with pytest.raises(TokenExpired):
            Syncer(box, ApiClient(http, lambda: "expired-or-forged")).run_once()
        assert box.waiting() == 1


def test_many_shipments_in_batches(server, tmp_path):
    box = Outbox(tmp_path / "outbox.db")
    _queue(server, box, 60)  # 120 events: two batches of at most 100
    with httpx.Client(base_url=server.base, timeout=30) as http:
        report = Syncer(box, ApiClient(http, lambda: server.tokens["courier"])).run_until_empty(deadline_s=60)
    assert report.accepted == 120 and box.waiting() == 0


def test_backoff_stays_bounded_after_days_offline(tmp_path):
    syncer = Syncer(
        Outbox(tmp_path / "o.db"), ApiClient(httpx.Client(), lambda: "t"), rng=random.Random(7), max_delay=300
    )
    for failures in (0, 1, 5, 40, 2000, 10**6):
        syncer.failures = failures
        assert 0 <= syncer.next_delay() <= min(300, 2**failures)
