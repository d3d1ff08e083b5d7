"""Concurrent syncs never fork a chain: on SQLite (one writer, BEGIN IMMEDIATE) and on
PostgreSQL (row locks), within one server, across two app instances sharing the
database, and across two real `hoso serve` processes."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import httpx
import msgspec
import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import select

from bench._harness import PG_DEFAULT, Server
from server.app import create_app
from shared import merkle
from shared.events import CustodyEvent, new_event_id, sign_event, verify_event
from shared.timeutil import to_wire, utcnow
from tests.api.conftest import Api
from tests.api.test_events import slow_checks  # noqa: F401  (the fixture)
from tests.conftest import BOTH_SQLITE_WRITERS, PG_URL

pytestmark = BOTH_SQLITE_WRITERS


async def _chain_ok(api: Api, code: str) -> list[dict]:
    detail = await api.shipment(code)
    prev = None
    for view in detail["events"]:
        ev = msgspec.convert(view["event"], CustodyEvent)
        verify_event(ev)
        assert ev.prev == prev, "chain forked or broken"
        prev = ev.hash
    assert detail["head"] == prev
    return detail["events"]


async def test_competing_events_for_one_head_accept_exactly_one(api):
    created = await api.create_shipment()
    code = created["code"]
    await api.assign(code)
    e1 = await api.event("courier1", code, "picked_up", created["head"])
    await api.sync("courier1", [e1])
    # twelve different events all claiming the same predecessor, sent at once
    rivals = [await api.event("courier1", code, "delivery_failed", e1["hash"]) for _ in range(12)]
    responses = await asyncio.gather(*(api.sync("courier1", [ev]) for ev in rivals))
    statuses = [r.json()["results"][0]["status"] for r in responses]
    assert statuses.count("accepted") == 1 and statuses.count("rejected") == 11
    events = await _chain_ok(api, code)
    assert len(events) == 3
    assert len((await api.shipment(code))["rejected"]) == 11


async def test_two_servers_same_database_same_chain(api, settings):
    second_app = create_app(settings)
    async with AsyncTestClient(second_app, base_url="http://testserver") as other_client:
        other = Api(other_client)
        other._tokens = api._tokens
        created = await api.create_shipment()
        code = created["code"]
        await api.assign(code)
        await api.login("courier1")
        chain = []
        head = created["head"]
        for type_ in ("picked_up", "delivery_failed", "delivery_failed", "delivered"):
            ev = await api.event("courier1", code, type_, head)
            chain.append(ev)
            head = ev["hash"]
        # the phone retries while the first sync is still running, against another server
        rounds = await asyncio.gather(
            api.sync("courier1", chain),
            other.sync("courier1", chain),
            api.sync("courier1", chain[:2]),
            other.sync("courier1", chain[2:]),
        )
        for r in rounds:
            assert r.status_code == 200, r.text
        per_event: dict[str, list[str]] = {ev["id"]: [] for ev in chain}
        for r in rounds:
            for res in r.json()["results"]:
                per_event[res["id"]].append(res["status"])
        for statuses in per_event.values():
            assert statuses.count("accepted") == 1, per_event
            assert set(statuses) <= {"accepted", "duplicate"}
        events = await _chain_ok(api, code)
        assert [v["event"]["type"] for v in events] == [
            "registered",
            "picked_up",
            "delivery_failed",
            "delivery_failed",
            "delivered",
        ]


async def test_many_shipments_in_parallel(api):
    codes_heads = []
    for _ in range(8):
        c = await api.create_shipment()
        await api.assign(c["code"])
        codes_heads.append((c["code"], c["head"]))
    batches = []
    for code, head in codes_heads:
        e1 = await api.event("courier1", code, "picked_up", head)
        e2 = await api.event("courier1", code, "delivered", e1["hash"])
        batches.append([e1, e2])
    responses = await asyncio.gather(*(api.sync("courier1", b) for b in batches))
    assert all(x["status"] == "accepted" for r in responses for x in r.json()["results"])
    for code, _ in codes_heads:
        assert len(await _chain_ok(api, code)) == 3


@pytest.mark.usefixtures("slow_checks")
async def test_big_batches_at_once_rivals_strangers_and_others(api, db):
    """Batches big enough for the signature helpers, still being checked when they are
    planned (on PostgreSQL the shipments' part is written meanwhile, the log's after), sent
    at once: two rival chains for one head (one is accepted whole, the other rejected
    whole), a courier's chain for a shipment assigned to another (rejected whole), and
    three others (accepted whole); a webhook is subscribed, so the log's part carries
    outbox rows too. The log grows by exactly what was accepted; nothing is a 500."""
    from server.db.models import outbox_messages, users, webhook_subscriptions
    from tests.api.test_events import _long_chain, _ready

    async with db.write() as conn:
        unit_id = await conn.scalar(select(users.c.unit_id).where(users.c.username == "courier1"))
        await conn.execute(
            webhook_subscriptions.insert().values(
                unit_id=unit_id,
                url="https://example.test/hook",
                event_types=["picked_up"],
                secret="whsec_test",
                active=True,
                created_at=utcnow(),
            )
        )
    code, head = await _ready(api)
    rivals = [await _long_chain(api, code, head, 20) for _ in range(2)]
    others = [await _long_chain(api, *(await _ready(api)), 20) for _ in range(3)]
    theirs, their_head = await _ready(api)  # assigned to courier1; courier2 sends a chain
    stranger, prev = [], their_head
    for i in range(20):
        ev = await api.event("courier2", theirs, "picked_up" if i == 0 else "delivery_failed", prev)
        stranger.append(ev)
        prev = ev["hash"]
    size = (await api.call("GET", "/api/v1/log/head")).json()["size"]
    sends = [("courier1", b) for b in (*rivals, *others)] + [("courier2", stranger)]
    responses = await asyncio.gather(*(api.sync(who, batch) for who, batch in sends))
    assert [r.status_code for r in responses] == [200] * 6, [r.text[:200] for r in responses]
    statuses = [[x["status"] for x in r.json()["results"]] for r in responses]
    assert sorted(statuses[:2]) == [["accepted"] * 20, ["rejected"] * 20]
    assert statuses[2:5] == [["accepted"] * 20] * 3
    assert statuses[5] == ["rejected"] * 20
    assert "not assigned" in responses[5].json()["results"][0]["reason"]
    assert (await api.call("GET", "/api/v1/log/head")).json()["size"] == size + 4 * 20
    await _chain_ok(api, code)
    assert len(await _chain_ok(api, theirs)) == 1  # registered only
    # one webhook per accepted pickup, each naming its event's place in the log
    async with db.read() as conn:
        webhook = outbox_messages.c.channel == "webhook"
        hooks = (await conn.execute(select(outbox_messages.c.payload).where(webhook))).all()
    indexes = [h.payload["data"]["log_index"] for h in hooks]
    assert len(indexes) == 4 and all(isinstance(i, int) and size <= i < size + 80 for i in indexes), indexes


def _rival(srv, code: str, prev: str, n: int) -> dict:
    """A signed delivery attempt of the harness's courier claiming `prev` as its predecessor."""
    t = utcnow() + timedelta(seconds=n)
    ev = sign_event(
        srv.device,
        id=new_event_id(),
        shipment=code,
        type="delivery_failed",
        occurred_at=to_wire(t),
        actor=f"courier:{srv.courier_id}",
        location={"lat": 13.98, "lon": 108.0, "accuracy_m": 5.0, "fix_at": to_wire(t)},
        data={"reason": "not_home"},
        prev=prev,
    )
    return msgspec.to_builtins(ev)


def _query(db_url: str, sql: str) -> list[tuple]:
    if db_url.startswith("sqlite"):
        import sqlite3

        with contextlib.closing(sqlite3.connect(db_url.removeprefix("sqlite+aiosqlite:///"))) as conn:
            return conn.execute(sql).fetchall()
    import psycopg

    with psycopg.connect(db_url.replace("postgresql+asyncpg://", "postgresql://")) as conn:
        return conn.execute(sql).fetchall()


def _leaves(db_url: str) -> list[tuple[int, str]]:
    """(log index, hash) of every leaf in the database, in index order."""
    return _query(
        db_url,
        "SELECT log_index, hash FROM custody_events UNION ALL "
        "SELECT log_index, hash FROM device_enrolments ORDER BY 1",
    )


def _check_log(db_url: str, head: dict) -> None:
    """The Merkle log has every leaf once, in one order, and log_head's row (size, right
    edge) and the signed head agree with it."""
    leaves = _leaves(db_url)
    assert [i for i, _ in leaves] == list(range(len(leaves)))  # no gap, no index twice
    hashes = [merkle.leaf_hash(bytes.fromhex(h)) for _, h in leaves]
    assert head["size"] == len(leaves)
    assert head["root"] == merkle.root_of(hashes).hex()
    [(size, edge)] = _query(db_url, "SELECT size, edge FROM log_head")
    nodes = merkle.append_nodes(0, hashes, lambda lv, i: b"")
    assert size == len(leaves)
    assert bytes(edge) == b"".join(nodes[key] for key in merkle.right_edge(size))


def test_two_serve_processes_rival_events_exactly_one_accepted(backend, tmp_path):
    """Two real `hoso serve` processes on one database: rival events for one head, sent
    at once to both, and many chains at once through both; every chain stays one line,
    and the Merkle log has every accepted event exactly once, in one order."""
    if backend == "postgres" and not PG_URL:
        pytest.skip("PostgreSQL run needs HOSO_TEST_POSTGRES_URL")
    env = {"HOSO_SQLITE_WRITER": "core"} if backend == "sqlite-core" else {}
    kind = "postgres" if backend == "postgres" else "sqlite"
    with Server(kind, extra_env=env, processes=2, pg_url=PG_URL or PG_DEFAULT) as srv:
        bases = [f"http://127.0.0.1:{port}" for port in srv.ports]
        headers = srv.auth("courier")
        (code, head), *others = srv.shipments(9)
        first = srv.chain(code, head, 1)
        assert srv.http.post("/api/v1/events", json={"events": first}, headers=headers).status_code == 200
        rivals = [_rival(srv, code, first[0]["hash"], n) for n in range(12)]
        # the other shipments' whole chains, each split in two halves sent to the two servers
        chains = [srv.chain(c, h, 6) for c, h in others]
        jobs = [(bases[n % 2], [ev]) for n, ev in enumerate(rivals)]
        jobs += [(bases[n % 2], half) for n, ch in enumerate(chains) for half in (ch[:3], ch[3:])]
        start = threading.Barrier(len(jobs))

        def send(job: tuple[str, list[dict]]) -> list[dict]:
            base, events = job
            with httpx.Client(base_url=base, timeout=60) as client:
                start.wait()
                for _ in range(40):  # a second half sent before its first is in: sync again
                    r = client.post("/api/v1/events", json={"events": events}, headers=headers)
                    assert r.status_code == 200, r.text
                    results = r.json()["results"]
                    if events[0] in rivals or all(x["status"] != "rejected" for x in results):
                        return results
                    time.sleep(0.05)
                return results

        with ThreadPoolExecutor(len(jobs)) as pool:
            answers = list(pool.map(send, jobs))
        statuses = [a[0]["status"] for a in answers[: len(rivals)]]
        assert statuses.count("accepted") == 1 and statuses.count("rejected") == 11, statuses
        for answer in answers[len(rivals) :]:
            assert {x["status"] for x in answer} <= {"accepted", "duplicate"}, answer
        dispatcher = srv.auth("dispatcher")
        for c, chain in [(code, None), *zip([c for c, _ in others], chains, strict=True)]:
            detail = srv.http.get(f"/api/v1/shipments/{c}", headers=dispatcher).json()
            prev = None
            for view in detail["events"]:
                ev = msgspec.convert(view["event"], CustodyEvent)
                verify_event(ev)
                assert ev.prev == prev, "chain forked or broken"
                prev = ev.hash
            assert detail["head"] == prev
            if chain is None:
                assert len(detail["events"]) == 3 and len(detail["rejected"]) == 11
            else:
                assert [v["event"]["id"] for v in detail["events"][1:]] == [e["id"] for e in chain]
        _check_log(srv.db_url, srv.http.get("/api/v1/log/head").json())


async def test_pg_rival_appends_guessing_one_log_head(backend, api, settings, monkeypatch):
    """Two engines (two processes' pools) each lock a shipment of their own and guess the
    same log head with it. The first writes and holds the head; the second's write waits on
    the head's row lock, finds the head moved when the first commits, writes nothing, locks
    the head and writes again after it: one log, every event once, log_head right."""
    if backend != "postgres":
        pytest.skip("the log head's guess is PostgreSQL's writer's (SQLite has one writer)")
    from server.auth.service import CurrentUser
    from server.custody import repository, service
    from server.db.engine import Database
    from server.db.models import users
    from tests.api.test_events import _ready

    (code_a, head_a), (code_b, head_b) = await _ready(api), await _ready(api)
    rivals = [
        msgspec.convert(await api.event("courier1", code, "picked_up", head), CustodyEvent)
        for code, head in ((code_a, head_a), (code_b, head_b))
    ]
    one, two = Database(settings.db_url), Database(settings.db_url)
    async with one.read() as conn:
        row = (await conn.execute(select(users).where(users.c.id == api.user_ids["courier1"]))).one()
    user = CurrentUser(row.id, row.username, row.role, row.unit_id, "BC-PLEIKU")
    g1 = one.cache["log_head_guesses"] = repository.HeadGuesses()
    g2 = two.cache["log_head_guesses"] = repository.HeadGuesses()
    steps = {k: asyncio.Event() for k in ("ready1", "go1", "written1", "commit1", "ready2", "go2")}

    async def signal_wait(signal: str, wait: str) -> None:
        steps[signal].set()
        await steps[wait].wait()

    flush = repository.PgIngestWriter.flush

    def paced(self):
        if self.guesses is g1:
            self.ex.run_async(lambda: signal_wait("ready1", "go1"))
            flush(self)
            self.ex.run_async(lambda: signal_wait("written1", "commit1"))
        else:
            self.ex.run_async(lambda: signal_wait("ready2", "go2"))
            flush(self)

    monkeypatch.setattr(repository.PgIngestWriter, "flush", paced)
    now = utcnow()
    try:
        first = asyncio.create_task(service.ingest(one, user, [rivals[0]], now))
        await steps["ready1"].wait()  # the first has its shipment locked and its guess
        second = asyncio.create_task(service.ingest(two, user, [rivals[1]], now))
        await steps["ready2"].wait()  # so has the second: the same head
        steps["go1"].set()
        await steps["written1"].wait()  # the first's write is in; it holds the head's lock
        steps["go2"].set()
        await asyncio.sleep(0.5)
        assert not second.done(), "the second append did not wait for the log's head"
        steps["commit1"].set()
        answers = [await first, await second]
    finally:
        await one.dispose()
        await two.dispose()
    assert [[r.status for r in a] for a in answers] == [["accepted"], ["accepted"]]
    assert (g1.hits, g1.misses) == (1, 0), (g1, g2)
    assert (g2.hits, g2.misses, g2.locked) == (0, 1, 1) and g2.lock_first == repository.LOCK_FIRST_AFTER_MISS
    _check_log(settings.db_url, (await api.call("GET", "/api/v1/log/head")).json())
    indexes = dict(_query(settings.db_url, "SELECT id, log_index FROM custody_events"))
    assert indexes[rivals[1].id] == indexes[rivals[0].id] + 1
