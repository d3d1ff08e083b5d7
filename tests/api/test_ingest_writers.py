"""Ingest's two SQLite writers (HOSO_SQLITE_WRITER=fast|core) store the very same bytes,
and so do its two PostgreSQL writers (PgIngestWriter, and SQLAlchemy Core's statements)."""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime, timedelta

import msgspec
import pytest
from sqlalchemy import select, text

from server.auth.service import CurrentUser
from server.custody import service
from server.db.engine import Database
from server.db.models import users, webhook_subscriptions
from shared.events import CustodyEvent
from shared.timeutil import to_wire
from tests.api.test_events import _ready

TABLES = ("custody_events", "rejected_events", "shipments", "log_nodes", "log_head", "outbox_messages")


def _dump(path) -> dict[str, list[tuple]]:
    """Every row of the ingest tables, each value with its SQLite storage class."""
    conn = sqlite3.connect(path)
    try:
        out = {}
        for table in TABLES:
            cols = [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]
            typed = ", ".join(f"{c}, typeof({c})" for c in cols)
            out[table] = conn.execute(f"SELECT {typed} FROM {table} ORDER BY 1, 3").fetchall()
        return out
    finally:
        conn.close()


async def _batch(api, db) -> tuple[list[CustodyEvent], CurrentUser, dict, dict]:
    """A batch of every kind of row, its courier, and two of its events (d1, f3)."""
    await api.login("courier2")
    delivered, head_d = await _ready(api)
    transferred, head_t = await _ready(api)
    failed, head_f = await _ready(api)
    # a delivery that closes its shipment (closed_at), a transfer (the custodian and the
    # assignment move on), an attempt with its clock ahead (flags), and rejected events
    p1 = await api.event("courier1", delivered, "picked_up", head_d)
    d1 = await api.event("courier1", delivered, "delivered", p1["hash"])
    p2 = await api.event("courier1", transferred, "picked_up", head_t)
    t2 = await api.event(
        "courier1",
        transferred,
        "transferred",
        p2["hash"],
        counterparty={"name": "Trần Thị Lan", "role": "courier", "user_id": api.user_ids["courier2"]},
    )
    p3 = await api.event("courier1", failed, "picked_up", head_f)
    ahead = to_wire(datetime.now(UTC) + timedelta(hours=2))
    f3 = await api.event(
        "courier1",
        failed,
        "delivery_failed",
        p3["hash"],
        occurred_at=ahead,
        location=None,
        data={"reason": "not_home", "no_fix_reason": "indoors"},
    )
    stale = await api.event("courier1", failed, "delivery_failed", "0" * 64)
    unknown = await api.event("courier1", "1234567890128", "picked_up", None)
    batch = [msgspec.convert(e, CustodyEvent) for e in (p1, d1, p2, t2, p3, f3, stale, unknown)]
    async with db.read() as conn:
        row = (await conn.execute(select(users).where(users.c.id == api.user_ids["courier1"]))).one()
    user = CurrentUser(row.id, row.username, row.role, row.unit_id, "BC-PLEIKU")
    return batch, user, d1, f3


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_fast_and_core_writers_store_identical_rows(api, settings, db, tmp_path):
    batch, user, d1, f3 = await _batch(api, db)
    now = datetime.now(UTC)

    source = settings.db_url.removeprefix("sqlite+aiosqlite:///")
    dumps = {}
    for writer in ("fast", "core"):
        copy = tmp_path / f"{writer}.db"
        with sqlite3.connect(source) as src, sqlite3.connect(copy) as dst:
            src.backup(dst)  # with what is still in the WAL
        target = Database(f"sqlite+aiosqlite:///{copy}", sqlite_writer=writer)
        try:
            events = [msgspec.structs.replace(e) for e in batch]
            results = await service.ingest(target, user, events, now)
        finally:
            await target.dispose()
        assert [r.status for r in results] == ["accepted"] * 6 + ["rejected"] * 2, results
        dumps[writer] = _dump(copy)
    for table in TABLES:
        assert dumps["fast"][table] == dumps["core"][table], table
    assert len(dumps["fast"]["custody_events"]) >= 6 and len(dumps["fast"]["rejected_events"]) == 2
    # an event without flags stores SQL NULL (not JSON 'null'), so the partial index of
    # flagged events (ix_custody_events_flagged) holds only the flagged one
    conn = sqlite3.connect(tmp_path / "fast.db")
    try:
        stored = dict(conn.execute("SELECT id, flags FROM custody_events").fetchall())
        indexed = conn.execute(
            "SELECT count(*) FROM custody_events INDEXED BY ix_custody_events_flagged WHERE flags IS NOT NULL"
        ).fetchone()[0]
    finally:
        conn.close()
    assert stored[f3["id"]] == '["device_clock_ahead"]'
    assert stored[d1["id"]] is None and "null" not in stored.values()
    assert indexed == 1
    assert [r.flags for r in results][5] == ["device_clock_ahead"] and results[0].flags == []


def _pg_dump(url: str) -> dict[str, list[str]]:
    """Every row of the ingest tables as PostgreSQL writes it out (row to text)."""
    import psycopg

    with psycopg.connect(url.replace("postgresql+asyncpg://", "postgresql://")) as conn:
        return {t: [r[0] for r in conn.execute(f"SELECT t::text FROM {t} t ORDER BY 1")] for t in TABLES}


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_pg_fast_and_core_writers_store_identical_rows(api, settings, db, monkeypatch):
    """PgIngestWriter's few statements against the Core statements' executemany: the same
    rows, value for value (JSON text, timestamps, the log's nodes), on copies of one
    database; and PgIngestWriter again with the signatures still being checked when the
    batch is planned ("split": the part outside the log is sent while they finish, the
    log's part after)."""
    from server.custody import repository
    from server.custody.verifier import SignaturePool
    from tests.conftest import _pg_admin, _pg_url_for

    writers = ("fast", "core", "split")

    batch, user, _, f3 = await _batch(api, db)
    now = datetime.now(UTC)
    async with db.write() as conn:  # a webhook, so that the events' outbox rows include its
        await conn.execute(
            webhook_subscriptions.insert().values(
                unit_id=user.unit_id,
                url="https://example.test/hook",
                event_types=["picked_up", "delivered", "delivery_failed"],
                secret="whsec_test",
                active=True,
                created_at=now,
            )
        )
    source = settings.db_url.rpartition("/")[2]
    await db.dispose()
    dumps, answers = {}, {}
    with _pg_admin() as admin:
        # a template must have no sessions: the app's pooled connections are closed for it
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (source,))
        for writer in writers:
            admin.execute(f'DROP DATABASE IF EXISTS "{source}_{writer}"')
            admin.execute(f'CREATE DATABASE "{source}_{writer}" TEMPLATE "{source}"')
    split_sent: list[int] = []
    try:
        for writer in writers:
            url = _pg_url_for(f"{source}_{writer}")
            target = Database(url, pg_writer="core" if writer == "core" else "fast")
            try:
                events = [msgspec.structs.replace(e) for e in batch]
                with monkeypatch.context() as m:
                    pool = SignaturePool(1)
                    if writer == "split":  # checks that are still running when the plan is made
                        real_call = SignaturePool._call
                        real_wait = repository.PgIngestWriter.write_while_checking

                        def slow(self, blob, _real=real_call):
                            time.sleep(0.2)
                            return _real(self, blob)

                        def sent(self, wait, _real=real_wait):
                            answer = _real(self, wait)
                            split_sent.append(self.free_sent)
                            return answer

                        m.setattr(SignaturePool, "_call", slow)
                        m.setattr(repository.PgIngestWriter, "write_while_checking", sent)
                        m.setattr(service, "_INLINE", pool)
                    try:
                        answers[writer] = await service.ingest(target, user, events, now)
                    finally:
                        pool.close()
            finally:
                await target.dispose()
            dumps[writer] = _pg_dump(url)
    finally:
        with _pg_admin() as admin:
            for writer in writers:
                admin.execute(f'DROP DATABASE IF EXISTS "{source}_{writer}" WITH (FORCE)')
    assert [r.status for r in answers["fast"]] == ["accepted"] * 6 + ["rejected"] * 2, answers["fast"]
    assert answers["fast"] == answers["core"] == answers["split"]
    assert split_sent == [1], "the split batch's free part went out before its checks were in"
    for table in TABLES:
        assert dumps["fast"][table] == dumps["core"][table], table
        if table != "outbox_messages":
            assert dumps["split"][table] == dumps["fast"][table], table

    # split, the citizen's rows are inserted before the webhooks' (which name a log index):
    # the same rows, numbered in another order
    def unnumbered(rows: list[str]) -> list[str]:
        return sorted(row.partition(",")[2] for row in rows)

    assert unnumbered(dumps["split"]["outbox_messages"]) == unnumbered(dumps["fast"]["outbox_messages"])
    fast = dumps["fast"]
    assert len(fast["rejected_events"]) == 2
    webhooks = [row for row in fast["outbox_messages"] if ",webhook," in row]
    # three pickups, the delivery and the attempt; the citizen's rows besides
    assert len(webhooks) == 5 and len(fast["outbox_messages"]) > 5, fast["outbox_messages"]
    leaves = sum(row.startswith("(0,") for row in fast["log_nodes"])
    assert len(fast["log_head"]) == 1 and fast["log_head"][0].startswith(f"(1,{leaves},")
    assert any('"[""device_clock_ahead""]"' in row for row in fast["custody_events"] if f3["id"] in row)
    # no flags: SQL NULL (an empty field in the row's text), not JSON 'null'
    assert not any(",null," in row for row in fast["custody_events"])


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_pg_batch_is_the_shipments_lock_and_one_write(api, db, monkeypatch):
    """A batch on PostgreSQL whose guess of the log's head holds: two statements inside the
    transaction (with BEGIN and COMMIT, four round trips), its outbox rows in the write."""
    from server.db.executor import CoreExecutor

    ready = [await _ready(api) for _ in range(3)]
    events = []
    for code, head in ready:
        p = await api.event("courier1", code, "picked_up", head)
        f = await api.event("courier1", code, "delivery_failed", p["hash"])
        events += [msgspec.convert(e, CustodyEvent) for e in (p, f)]
    async with db.read() as conn:
        row = (await conn.execute(select(users).where(users.c.id == api.user_ids["courier1"]))).one()
    user = CurrentUser(row.id, row.username, row.role, row.unit_id, "BC-PLEIKU")
    statements: list[str] = []
    for name in ("native", "rows", "many"):
        original = getattr(CoreExecutor, name)

        def counted(self, sql, *args, _original=original, **kw):
            statements.append(str(sql).split()[0])
            return _original(self, sql, *args, **kw)

        monkeypatch.setattr(CoreExecutor, name, counted)
    results = await service.ingest(db, user, events, datetime.now(UTC))
    assert [r.status for r in results] == ["accepted"] * 6
    assert statements == ["WITH", "WITH"], statements  # the shipments' lock, the write
    async with db.read() as conn:
        outbox = await conn.execute(
            text("SELECT count(*) FROM outbox_messages WHERE topic = 'delivery_failed'")
        )
        assert outbox.scalar() == 3
