"""Two `hoso worker` processes on one PostgreSQL database; one is killed (SIGKILL) in the
middle of a batch. Every message still reaches the receiver, none twice beyond what the
killed worker had in flight, and every row ends `sent` (server/outbox/worker.py)."""

from __future__ import annotations

import asyncio
import collections
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from server.db.engine import Database
from server.db.models import outbox_messages
from server.outbox import repository, service
from shared.timeutil import utcnow
from tests.outbox_servers import Endpoint

ROOT = Path(__file__).resolve().parents[1]
N = 600
BATCH = 20


def _slow(n: int) -> tuple[int, dict]:
    time.sleep(0.004)  # a receiver that takes a few ms: a batch is in flight for a while
    return 200, {"ok": True}


async def _seed(url: str, hook_url: str) -> None:
    db = Database(url)
    try:
        sid, _ = await service.add_subscription(db, "TTHCC-GL", hook_url, ["delivered"])
        now = utcnow()
        rows = [
            repository.message_row(
                shipment_id=None,
                unit_id=None,
                channel="webhook",
                topic="delivered",
                payload={"type": "shipment.delivered", "data": {"n": i}},
                now=now,
                subscription_id=sid,
            )
            for i in range(N)
        ]
        async with db.write() as conn:
            await repository.insert_rows(conn, rows)
    finally:
        await db.dispose()


async def _held_by(url: str, name: str) -> int:
    db = Database(url)
    try:
        async with db.read() as conn:
            query = select(func.count()).where(
                outbox_messages.c.state == "pending", outbox_messages.c.claimed_by == name
            )
            return int(await conn.scalar(query) or 0)
    finally:
        await db.dispose()


async def _sent(url: str) -> int:
    db = Database(url)
    try:
        async with db.read() as conn:
            return int(await conn.scalar(select(func.count()).where(outbox_messages.c.state == "sent")) or 0)
    finally:
        await db.dispose()


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_kill_a_worker_mid_batch(db_url, tmp_path, capsys):
    with Endpoint(answers=_slow) as hook:
        asyncio.run(_seed(db_url, f"{hook.url}/hook"))
        env = {
            **os.environ,
            "HOSO_DATA_DIR": str(tmp_path / "data"),
            "HOSO_DATABASE_URL": db_url,
            "HOSO_OUTBOX_BATCH": str(BATCH),
            "HOSO_OUTBOX_LEASE": "3",
            "HOSO_OUTBOX_POLL": "0.2",
            "HOSO_WEBHOOK_RATE": "0",
        }
        cmd = [sys.executable, "-m", "server.cli", "worker"]
        workers = [
            subprocess.Popen([*cmd, "--name", name], env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
            for name in ("worker-a", "worker-b")
        ]
        try:
            deadline = time.monotonic() + 60
            while len(hook.received) < N // 4 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert len(hook.received) >= N // 4, "the workers did not start sending"
            at_kill = len(hook.received)
            workers[0].send_signal(signal.SIGKILL)
            workers[0].wait(10)
            orphaned = asyncio.run(_held_by(db_url, "worker-a"))  # claimed, not recorded: re-claimed later
            while time.monotonic() < deadline:
                if asyncio.run(_sent(db_url)) == N:
                    break
                time.sleep(0.3)
            sent = asyncio.run(_sent(db_url))
        finally:
            for w in workers:
                if w.poll() is None:
                    w.terminate()
                    w.wait(10)
        ids = collections.Counter(r.headers["webhook-id"] for r in hook.received)
    repeats = {k: v for k, v in ids.items() if v > 1}
    with capsys.disabled():
        print(
            f"\nkill-a-worker: {N} messages, 2 workers, batches of {BATCH}; SIGKILL after {at_kill} "
            f"received, leaving {orphaned} rows claimed by the dead worker; rows sent {sent}/{N}; "
            f"distinct webhook-ids received {len(ids)}; {sum(ids.values())} requests, "
            f"{len(repeats)} id(s) received twice"
        )
    assert orphaned > 0, "the kill did not land mid-batch"
    assert sent == N
    assert len(ids) == N  # every message arrived
    # a repeat can only be a message the killed worker had sent and not yet recorded
    assert len(repeats) <= BATCH and all(v == 2 for v in repeats.values())
