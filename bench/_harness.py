"""Shared by the benchmarks: a real `hoso serve` process (one worker) on SQLite or PostgreSQL,
seeded through the CLI and the API, and a client that signs events the way a phone does."""

from __future__ import annotations

import contextlib
import itertools
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import msgspec

from shared.crypto import SigningKey
from shared.events import new_event_id, sign_event
from shared.timeutil import to_wire, utcnow

ROOT = Path(__file__).resolve().parents[1]
PG_DEFAULT = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
PASSWORD = "bench-password"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_serve(
    env: dict[str, str], port: int, root: Path = ROOT, timeout: float = 120.0
) -> subprocess.Popen[bytes]:
    """Start `hoso serve` on 127.0.0.1:port and return it once /health answers 200.

    If it exits first, or does not answer within `timeout` seconds, it is stopped and a
    RuntimeError says which, with the last lines it printed: a test or bench then fails
    there, not later with a connection refused."""
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(
        [sys.executable, "-m", "server.cli", "serve", "--port", str(port)],
        env=env,
        cwd=root,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + timeout
    while True:
        code = proc.poll()
        if code is None:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=10).status_code == 200:
                    return proc
            if time.monotonic() < deadline:
                time.sleep(0.1)
                continue
            proc.terminate()
            proc.wait(timeout=20)
            why = f"did not answer /health within {timeout:.0f} s"
        else:
            why = f"exited with code {code} before answering /health"
        log.seek(0)
        tail = log.read().decode(errors="replace").strip().splitlines()[-15:]
        raise RuntimeError(f"hoso serve on port {port} {why}; its last output:\n" + "\n".join(tail))


def stop_serve(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        proc.wait(timeout=20)


@contextlib.contextmanager
def serving(env: dict[str, str], n: int = 1, root: Path = ROOT) -> Iterator[list[str]]:
    """n `hoso serve` processes on the database `env` names; yields their base URLs once
    each answers. They start one after another: each runs the (idempotent) migration first,
    and two doing so at once on one database is not what an operator does either."""
    procs: list[subprocess.Popen[bytes]] = []
    bases = []
    try:
        for _ in range(n):
            port = free_port()
            procs.append(start_serve(env, port, root))
            bases.append(f"http://127.0.0.1:{port}")
        yield bases
    finally:
        stop_serve(procs)


def _pg_admin(pg_url: str):
    import psycopg

    return psycopg.connect(pg_url.replace("postgresql+asyncpg://", "postgresql://"), autocommit=True)


_DATABASES = itertools.count(1)


@contextlib.contextmanager
def database(backend: str, data_dir: Path, pg_url: str = PG_DEFAULT) -> Iterator[str]:
    """Yield a HOSO_DATABASE_URL for a fresh database (SQLite file or a new PostgreSQL database)."""
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{data_dir / 'hoso.db'}"
        return
    name = f"hoso_bench_{os.getpid()}_{next(_DATABASES)}"  # two servers at once: bench/compare.py
    with _pg_admin(pg_url) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{pg_url.rpartition('/')[0]}/{name}"
    finally:
        with _pg_admin(pg_url) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Server:
    """`hoso serve` in its own process, with a post office, a clerk, a dispatcher and a courier.

    `processes` > 1: that many `hoso serve` processes on the one database, each on its own
    port (`ports`, `procs`); `port` and `proc` are the first."""

    def __init__(
        self,
        backend: str,
        extra_env: dict[str, str] | None = None,
        root: Path | None = None,
        processes: int = 1,
        pg_url: str = PG_DEFAULT,
    ) -> None:
        self.backend = backend
        self.pg_url = pg_url
        self.extra_env = extra_env or {}
        self.root = root or ROOT  # another checkout's server, for bench/compare.py
        self.processes = max(1, processes)
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> Server:
        self.data_dir = Path(self._stack.enter_context(tempfile.TemporaryDirectory(prefix="hoso-bench-")))
        self.db_url = self._stack.enter_context(database(self.backend, self.data_dir, self.pg_url))
        self.env = {
            **os.environ,
            "HOSO_DATA_DIR": str(self.data_dir),
            "HOSO_DATABASE_URL": self.db_url,
            **self.extra_env,
        }
        self._cli(["unit", "add", "BC-1", "--name", "Bưu cục", "--kind", "post_office"])
        for user, role in (("clerk", "clerk"), ("dispatcher", "dispatcher"), ("courier", "courier")):
            self._cli(["user", "add", user, "--role", role, "--unit", "BC-1"], stdin=PASSWORD + "\n")
        self.ports = [free_port() for _ in range(self.processes)]
        self.port = self.ports[0]
        self.base = f"http://127.0.0.1:{self.port}"
        self.procs: list[subprocess.Popen[bytes]] = []
        self._stack.callback(self._stop)
        for port in self.ports:  # one after another: each runs the (idempotent) migration first
            self.procs.append(start_serve(self.env, port, self.root))
        self.proc = self.procs[0]
        self.http = self._stack.enter_context(httpx.Client(base_url=self.base, timeout=120))
        self.tokens = {u: self._login(u) for u in ("clerk", "dispatcher", "courier")}
        self.courier_id = self.http.post(
            "/api/v1/auth/token", json={"username": "courier", "password": PASSWORD}
        ).json()["user"]["id"]
        self.device = SigningKey.generate()
        r = self.http.post(
            "/api/v1/devices", json={"public_key": self.device.public_key_b64}, headers=self.auth("courier")
        )
        r.raise_for_status()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def start(self) -> None:
        """(Re)start the first `hoso serve` on the same port and data, and wait until it answers."""
        self.proc = self.procs[0] = start_serve(self.env, self.port, self.root)

    def _stop(self) -> None:
        stop_serve(self.procs)

    stop = _stop

    def _cli(self, args: list[str], stdin: str | None = None) -> None:
        subprocess.run(
            [sys.executable, "-m", "server.cli", *args],
            env=self.env,
            cwd=self.root,
            input=stdin,
            text=True,
            check=True,
            capture_output=True,
        )

    def _login(self, user: str) -> str:
        r = self.http.post("/api/v1/auth/token", json={"username": user, "password": PASSWORD})
        r.raise_for_status()
        return r.json()["access_token"]

    def auth(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[user]}"}

    def shipments(self, n: int) -> list[tuple[str, str]]:
        """Register and assign n shipments; return (code, head) pairs."""
        out = []
        due = to_wire(utcnow() + timedelta(days=5))
        party = {
            "name": "Nguyễn Văn A",
            "address": "1 Lê Lợi",
            "commune": "Phường Pleiku",
            "province": "Tỉnh Gia Lai",
            "lat": 13.98,
            "lon": 108.0,
        }
        for _ in range(n):
            created = self.register(
                {
                    "kind": "submission",
                    "due_at": due,
                    "sender": party,
                    "recipient": party,
                    "components": ["Tờ khai"],
                    "fee_vnd": 50000,
                }
            )
            out.append((created["code"], created["head"]))
        return out

    def register(self, body: dict) -> dict:
        """A clerk registers a shipment and the dispatcher assigns it to the courier."""
        created = self.http.post("/api/v1/shipments", headers=self.auth("clerk"), json=body)
        created = created.raise_for_status().json()
        self.http.post(
            f"/api/v1/shipments/{created['code']}/assign",
            headers=self.auth("dispatcher"),
            json={"courier_id": self.courier_id},
        ).raise_for_status()
        return created

    def dossier(
        self,
        kind: str,
        citizen: dict,
        shop: dict,
        *,
        due_in: timedelta,
        procedure: str,
        components: list[str],
        **extra: object,
    ) -> dict:
        """`register` a citizen's submission to a one-stop shop, or its result coming back."""
        submission = kind == "submission"
        return self.register(
            {
                "kind": kind,
                "due_at": to_wire(utcnow() + due_in),
                "sender": citizen if submission else shop,
                "recipient": shop if submission else citizen,
                "procedure": procedure,
                "components": components,
                "fee_vnd": 8000 if submission else 0,
                **extra,
            }
        )

    def chain(self, code: str, head: str, length: int) -> list[dict]:
        """A realistic courier chain: pickup with signature, failed attempts, delivery."""
        events, prev = [], head
        now = utcnow()
        for i in range(length):
            t = now + timedelta(seconds=i)
            fields = dict(
                id=new_event_id(),
                shipment=code,
                occurred_at=to_wire(t),
                actor=f"courier:{self.courier_id}",
                location={"lat": 13.98 + i * 1e-4, "lon": 108.0, "accuracy_m": 7.5, "fix_at": to_wire(t)},
                prev=prev,
            )
            if i == 0:
                fields.update(
                    type="picked_up",
                    counterparty={"name": "Nguyễn Văn A", "role": "citizen", "id_last4": "1234"},
                    attachments={"signature": "ab" * 32, "photos": []},
                    data={"components": ["Tờ khai", "CCCD bản sao"], "fee_vnd": 50000},
                )
            elif i == length - 1:
                fields.update(
                    type="delivered",
                    counterparty={"name": "Cán bộ một cửa", "role": "clerk"},
                    attachments={"signature": "cd" * 32, "photos": []},
                )
            else:
                fields.update(type="delivery_failed", data={"reason": "not_home"})
            ev = sign_event(self.device, **fields)
            events.append(msgspec.to_builtins(ev))
            prev = ev.hash
        return events

    def delivered_result(self, party: dict, chain_length: int = 3) -> tuple[dict, dict]:
        """A citizen's whole journey: a submission carried to the shop, its result delivered home.

        Returns the two creation answers (code, head, tracking_url, pin…).
        """
        due = to_wire(utcnow() + timedelta(days=3))
        sub = (
            self.http.post(
                "/api/v1/shipments",
                headers=self.auth("clerk"),
                json={
                    "kind": "submission",
                    "due_at": due,
                    "sender": party,
                    "recipient": party,
                    "procedure": "Đăng ký khai sinh",
                    "components": ["Tờ khai"],
                    "fee_vnd": 0,
                },
            )
            .raise_for_status()
            .json()
        )
        res = (
            self.http.post(
                "/api/v1/shipments",
                headers=self.auth("clerk"),
                json={"kind": "result", "due_at": due, "parent": sub["code"]},
            )
            .raise_for_status()
            .json()
        )
        for created in (sub, res):
            self.http.post(
                f"/api/v1/shipments/{created['code']}/assign",
                headers=self.auth("dispatcher"),
                json={"courier_id": self.courier_id},
            ).raise_for_status()
            r = self.http.post(
                "/api/v1/events",
                headers=self.auth("courier"),
                json={"events": self.chain(created["code"], created["head"], chain_length)},
            ).raise_for_status()
            assert all(x["status"] == "accepted" for x in r.json()["results"])
        return sub, res
