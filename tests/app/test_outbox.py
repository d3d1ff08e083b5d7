"""The outbox never loses or half-writes a record, whatever kills the app."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import msgspec

from courier_app.outbox import Attachment, Outbox
from shared.api import EventResult
from shared.crypto import SigningKey
from shared.events import CustodyEvent, new_event_id, sign_event, verify_event

ROOT = Path(__file__).resolve().parents[2]
KEY = SigningKey.generate()


def _event(code: str = "1234567890128", prev: str | None = None, sig_hash: str | None = None) -> CustodyEvent:
    return sign_event(
        KEY,
        id=new_event_id(),
        shipment=code,
        type="delivery_failed",
        occurred_at="2026-11-22T03:04:05.123Z",
        actor="courier:1",
        location={"lat": 13.98, "lon": 108.0, "accuracy_m": 5.0, "fix_at": "2026-11-22T03:04:05.000Z"},
        attachments={"signature": sig_hash, "photos": []},
        data={"reason": "not_home"},
        prev=prev,
    )


def test_put_pending_acknowledge(tmp_path):
    box = Outbox(tmp_path / "outbox.db")
    png = b"\x89PNG fake"
    digest = hashlib.sha256(png).hexdigest()
    e1 = _event(sig_hash=digest)
    e2 = _event(prev=e1.hash)
    box.put(e1, [Attachment(digest, "image/png", png)])
    box.put(e2)
    assert box.waiting() == 2 and [e["id"] for e in box.pending()] == [e1.id, e2.id]
    assert box.local_head(e1.shipment) == e2.hash
    assert [a.sha256 for a in box.pending_attachments()] == [digest]
    box.acknowledge([EventResult(e1.id, "accepted"), EventResult(e2.id, "rejected", "nope")])
    assert box.waiting() == 0 and box.counts() == {"acked": 1, "rejected": 1}
    assert [(r.id, r.reason) for r in box.rejected()] == [(e2.id, "nope")]
    assert box.local_head(e1.shipment) == e1.hash  # a rejected event does not extend the chain
    assert box.last_sync() is not None


WRITER = """
import sys, hashlib
sys.path.insert(0, {root!r})
from courier_app.outbox import Attachment, Outbox
from tests.app.test_outbox import _event
box = Outbox({path!r})
i = 0
while True:
    body = (b"photo-{round_}-%d" % i) * 2000
    digest = hashlib.sha256(body).hexdigest()
    box.put(_event(sig_hash=digest), [Attachment(digest, "image/jpeg", body)])
    print(i, flush=True)
    i += 1
"""


def test_killed_mid_write_leaves_only_whole_records(tmp_path):
    path = tmp_path / "outbox.db"
    for round_ in range(3):
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER.format(root=str(ROOT), path=str(path), round_=round_)],
            stdout=subprocess.PIPE,
            text=True,
        )
        written = 0
        deadline = time.monotonic() + 20
        while written < 20 * (round_ + 1) and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if line:
                written = int(line) + 1
        os.kill(proc.pid, signal.SIGKILL)  # no chance to clean up
        proc.wait()
    box = Outbox(path)
    events = box.pending(10_000)
    assert len(events) >= 60
    stored = {a.sha256 for a in box.pending_attachments()}
    for raw in events:
        ev = msgspec.convert(raw, CustodyEvent)
        verify_event(ev)  # whole and unaltered
        assert ev.attachments.signature in stored  # its attachment was written with it
    assert len(stored) == len(events)
