"""Notifications per second through the outbox to a local SMPP 3.4 server.

    .venv/bin/python bench/outbox.py [--messages 5000] [--backends sqlite,postgres]

The SMSC (tests/outbox_servers.py) runs in a process of its own on 127.0.0.1. A fresh
database gets `--messages` citizen messages (`delivery_failed`, 2 UCS-2 segments each, over
100 shipments with Vietnamese mobile numbers), all due; then the clock runs from the
workers' start until every row is `sent`:
- SQLite: one worker in this process (what `hoso serve` runs inside itself);
- PostgreSQL: 1, then 2 `hoso worker` processes (`FOR UPDATE SKIP LOCKED`).
No rate limit (HOSO_SMPP_RATE=0). Target (issue 17): >= 500 messages/s with one worker on SQLite.

The cost of the outbox rows on ingest is measured by bench/compare.py, turn about:
    .venv/bin/python bench/compare.py --a-env HOSO_OUTBOX_ROWS=0 HOSO_OUTBOX_WORKER=0 \
        --b-env HOSO_OUTBOX_ROWS=1 HOSO_OUTBOX_WORKER=0
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._harness import PG_DEFAULT, database

ROOT = Path(__file__).resolve().parents[1]


def _smsc(queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    from tests.outbox_servers import Smsc

    with Smsc("bench", "bench-pw") as smsc:
        queue.put(smsc.port)
        while True:
            time.sleep(3600)


async def _seed(url: str, n: int) -> None:
    from sqlalchemy import insert

    from server.db.engine import Database
    from server.db.models import shipments
    from server.outbox import repository
    from shared import codes
    from shared.timeutil import utcnow

    db = Database(url)
    now = utcnow()
    try:
        async with db.write() as conn:
            ids = []
            for k in range(100):
                row = {
                    "code": codes.new_code(),
                    "kind": "result",
                    "state": "in_custody",
                    "dossier_ref": f"B-{k}",
                    "procedure": "",
                    "field": "",
                    "sender": {"name": "UBND"},
                    "recipient": {"name": "Nguyễn Thị Bích", "phone": f"0905{k:06d}"},
                    "due_at": now + timedelta(days=1),
                    "fee_vnd": 0,
                    "components": [],
                    "pin_hash": "",
                    "seq": 0,
                    "attempts": 0,
                    "created_at": now,
                    "updated_at": now,
                }
                ids.append(
                    (
                        await conn.execute(
                            insert(shipments).values(**row).returning(shipments.c.id, shipments.c.code)
                        )
                    ).one()
                )
            rows = [
                repository.message_row(
                    shipment_id=ids[i % 100][0],
                    unit_id=None,
                    channel="citizen",
                    topic="delivery_failed",
                    payload={"code": ids[i % 100][1], "kind": "result", "reason": "not_home"},
                    now=now,
                )
                for i in range(n)
            ]
            for start in range(0, n, 1000):
                await repository.insert_rows(conn, rows[start : start + 1000])
    finally:
        await db.dispose()


async def _count_sent(url: str) -> int:
    from sqlalchemy import func, select

    from server.db.engine import Database
    from server.db.models import outbox_messages

    db = Database(url)
    try:
        async with db.read() as conn:
            return int(await conn.scalar(select(func.count()).where(outbox_messages.c.state == "sent")) or 0)
    finally:
        await db.dispose()


def _env(url: str, data_dir: Path, port: int) -> dict[str, str]:
    return {
        **os.environ,
        "HOSO_DATA_DIR": str(data_dir),
        "HOSO_DATABASE_URL": url,
        "HOSO_SMPP_HOST": "127.0.0.1",
        "HOSO_SMPP_PORT": str(port),
        "HOSO_SMPP_SYSTEM_ID": "bench",
        "HOSO_SMPP_PASSWORD": "bench-pw",
        "HOSO_SMPP_SOURCE_ADDR": "HOSO",
        "HOSO_SMPP_RATE": "0",
        "HOSO_OUTBOX_POLL": "0.2",
    }


def run_sqlite(n: int, port: int) -> float:
    from server.db.engine import Database
    from server.db.migrate import upgrade
    from server.keys import load_keys
    from server.outbox.worker import Worker
    from server.settings import Settings

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        url = f"sqlite+aiosqlite:///{data / 'hoso.db'}"
        upgrade(url)
        asyncio.run(_seed(url, n))
        settings = Settings.from_env(_env(url, data, port))

        async def go() -> float:
            db = Database(url)
            worker = Worker(db, settings, load_keys(settings.keys_dir))
            t0 = time.perf_counter()
            try:
                while worker.sent < n:
                    if not await worker.run_once():
                        break
                elapsed = time.perf_counter() - t0
            finally:
                await worker.channels.close()
                await db.dispose()
            assert worker.sent == n, (worker.sent, n)
            return n / elapsed

        return asyncio.run(go())


def run_postgres(n: int, port: int, workers: int, pg_url: str) -> float:
    from server.db.migrate import upgrade

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        with database("postgres", data, pg_url) as url:
            upgrade(url)
            asyncio.run(_seed(url, n))
            env = _env(url, data, port)
            subprocess.run(
                [sys.executable, "-m", "server.cli", "db", "upgrade"],
                env=env,
                cwd=ROOT,
                check=True,
                stdout=subprocess.DEVNULL,
            )
            t0 = time.perf_counter()
            procs = [
                subprocess.Popen(
                    [sys.executable, "-m", "server.cli", "worker", "--name", f"bench-{k}"],
                    env=env,
                    cwd=ROOT,
                    stdout=subprocess.DEVNULL,
                )
                for k in range(workers)
            ]
            try:
                # the clock starts at the first message sent (not the processes' start-up)
                while (first := asyncio.run(_count_sent(url))) == 0 and time.perf_counter() - t0 < 60:
                    time.sleep(0.02)
                t0 = time.perf_counter()
                while asyncio.run(_count_sent(url)) < n:
                    time.sleep(0.05)
                elapsed = time.perf_counter() - t0
                n -= first
            finally:
                for p in procs:
                    p.terminate()
                    p.wait(10)
            return n / elapsed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=5000)
    ap.add_argument("--backends", default="sqlite,postgres")
    ap.add_argument("--pg-url", default=os.environ.get("HOSO_BENCH_POSTGRES_URL", PG_DEFAULT))
    args = ap.parse_args()
    queue: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
    smsc = multiprocessing.Process(target=_smsc, args=(queue,), daemon=True)
    smsc.start()
    port = queue.get(timeout=30)
    print(
        f"outbox: {args.messages} SMS (2 UCS-2 segments each) to a local SMPP server, {os.cpu_count()} cores"
    )
    try:
        for backend in args.backends.split(","):
            if backend == "sqlite":
                rate = run_sqlite(args.messages, port)
                met = "met" if rate >= 500 else "NOT met"
                print(f"  sqlite    1 worker (in process): {rate:7.0f} messages/s  (target >= 500/s: {met})")
            else:
                for workers in (1, 2):
                    rate = run_postgres(args.messages, port, workers, args.pg_url)
                    print(
                        f"  postgres  {workers} worker process(es): {rate:7.0f} msg/s (from the first sent)"
                    )
    finally:
        smsc.terminate()


if __name__ == "__main__":
    main()
