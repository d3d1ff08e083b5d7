"""The `hoso` command as an operator uses it: real processes, real files."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bench import _harness as harness
from shared.crypto import SigningKey

HOSO = [sys.executable, "-m", "server.cli"]
ROOT = Path(__file__).resolve().parents[1]


def run(args: list[str], data_dir: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HOSO_DATA_DIR": str(data_dir)}
    env.pop("HOSO_DATABASE_URL", None)
    return subprocess.run(
        [*HOSO, *args], input=stdin, capture_output=True, text=True, env=env, cwd=ROOT, timeout=120
    )


@contextlib.contextmanager
def serving(data_dir: Path) -> Iterator[str]:
    """`hoso serve` on a free port over data_dir; yields its base URL once /health answers."""
    env = {**os.environ, "HOSO_DATA_DIR": str(data_dir)}
    env.pop("HOSO_DATABASE_URL", None)
    with harness.serving(env) as (base,):
        yield base


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unit_and_user_add(tmp_path):
    assert run(["db", "upgrade"], tmp_path).returncode == 0
    r = run(["unit", "add", "BC-PLEIKU", "--name", "Bưu cục Pleiku", "--kind", "post_office"], tmp_path)
    assert r.returncode == 0 and "BC-PLEIKU" in r.stdout
    r = run(["unit", "add", "BC-PLEIKU", "--name", "again", "--kind", "post_office"], tmp_path)
    assert r.returncode == 1 and r.stderr.strip().count("\n") == 0 and "already exists" in r.stderr
    r = run(
        ["user", "add", "hung", "--role", "courier", "--unit", "BC-PLEIKU"], tmp_path, stdin="mật-khẩu-dài\n"
    )
    assert r.returncode == 0, r.stderr
    r = run(["user", "add", "lan", "--role", "courier", "--unit", "NOWHERE"], tmp_path, stdin="a-long-one\n")
    assert r.returncode == 1 and "NOWHERE" in r.stderr and r.stderr.count("\n") == 1
    r = run(["user", "add", "lan", "--role", "courier"], tmp_path, stdin="a-long-one\n")
    assert r.returncode == 1 and "--unit" in r.stderr
    r = run(["user", "add", "lan", "--role", "emperor", "--unit", "BC-PLEIKU"], tmp_path, stdin="x\n")
    assert r.returncode == 2  # argparse: invalid choice
    keys = list((tmp_path / "keys").glob("*.key.json")) if (tmp_path / "keys").exists() else []
    assert keys == []  # keys are made by the server on first start, not by user admin


@pytest.mark.slow
def test_serve_migrates_and_answers(tmp_path):
    run(["unit", "add", "BC-PLEIKU", "--name", "Bưu cục Pleiku", "--kind", "post_office"], tmp_path)
    run(["user", "add", "hung", "--role", "courier", "--unit", "BC-PLEIKU"], tmp_path, stdin="mật-khẩu-dài\n")
    with serving(tmp_path) as base:
        assert httpx.get(f"{base}/health").json()["db"] == "ok"
        r = httpx.post(f"{base}/api/v1/auth/token", json={"username": "hung", "password": "mật-khẩu-dài"})
        assert r.status_code == 200
        assert sorted(p.name for p in (tmp_path / "keys").iterdir()) == [
            "csrf.secret",
            "event.key.json",
            "label.key.json",
            "log.key.json",
            "seal.key.json",
        ]
        assert oct((tmp_path / "keys" / "event.key.json").stat().st_mode & 0o777) == "0o600"
        assert oct((tmp_path / "keys" / "seal.key.json").stat().st_mode & 0o777) == "0o600"
        assert httpx.get(f"{base}/schema/openapi.json").status_code == 200


@pytest.mark.slow
def test_demo_builds_a_verifiable_data_set(tmp_path):
    import asyncio

    import msgspec
    from sqlalchemy import func, select

    from server.db.engine import Database
    from server.db.models import custody_events, shipments
    from shared.events import CustodyEvent, verify_event

    r = run(["demo", "--no-serve"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert "dieuphoi" in r.stdout and "hoso-demo" in r.stdout

    async def check() -> tuple[dict[str, int], int]:
        db = Database(f"sqlite+aiosqlite:///{tmp_path / 'demo' / 'hoso.db'}")
        try:
            async with db.read() as conn:
                states = dict(
                    (
                        await conn.execute(
                            select(shipments.c.state, func.count()).group_by(shipments.c.state)
                        )
                    ).all()
                )
                rows = (
                    await conn.execute(
                        select(custody_events.c.shipment_id, custody_events.c.body).order_by(
                            custody_events.c.shipment_id, custody_events.c.seq
                        )
                    )
                ).all()
        finally:
            await db.dispose()
        heads: dict[int, str | None] = {}
        for ship_id, body in rows:
            ev = msgspec.json.decode(body, type=CustodyEvent)
            verify_event(ev)
            assert ev.prev == heads.get(ship_id)
            heads[ship_id] = ev.hash
        return states, len(rows)

    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:  # its own thread: no other event loop can be in the way
        states, n_events = pool.submit(asyncio.run, check()).result()
    assert sum(states.values()) == 50
    assert set(states) == {"registered", "in_custody", "delivered", "returned", "cancelled"}
    assert n_events > 100


@pytest.mark.slow
def test_verify_against_a_saved_head_catches_a_rewritten_log(tmp_path):
    import sqlite3
    from datetime import timedelta

    from shared.timeutil import to_wire, utcnow

    data = tmp_path / "data"
    run(["unit", "add", "BC-1", "--name", "Bưu cục", "--kind", "post_office"], data)
    run(["user", "add", "lan", "--role", "clerk", "--unit", "BC-1"], data, stdin="mật-khẩu-dài\n")
    with serving(data) as base:
        token = httpx.post(
            f"{base}/api/v1/auth/token", json={"username": "lan", "password": "mật-khẩu-dài"}
        ).json()["access_token"]
        party = {"name": "Nguyễn Văn An", "commune": "Phường Pleiku", "province": "Tỉnh Gia Lai"}

        def register() -> None:
            r = httpx.post(
                f"{base}/api/v1/shipments",
                headers={"Authorization": f"Bearer {token}"},
                json={
                    "kind": "submission",
                    "due_at": to_wire(utcnow() + timedelta(days=2)),
                    "sender": party,
                    "recipient": party,
                },
            )
            assert r.status_code == 201, r.text

        for _ in range(3):
            register()
        saved = tmp_path / "head.json"
        saved.write_text(httpx.get(f"{base}/api/v1/log/head").text)
        register()
        r = run(["verify", "--against", str(saved), base], data)
        assert r.returncode == 0 and "[ok  ] consistency" in r.stdout, r.stdout + r.stderr

        from shared import merkle

        with sqlite3.connect(data / "hoso.db") as conn:  # someone with database access rebuilds the log
            leaves = [h for (h,) in conn.execute("SELECT hash FROM log_nodes WHERE level = 0 ORDER BY idx")]
            leaves[1] = merkle.leaf_hash(b"\x42" * 32)
            conn.execute("DELETE FROM log_nodes")
            nodes = merkle.append_nodes(0, leaves, lambda level, index: b"")
            conn.executemany(
                "INSERT INTO log_nodes (level, idx, hash) VALUES (?, ?, ?)",
                [(lv, i, h) for (lv, i), h in nodes.items()],
            )
        register()
        r = run(["verify", "--against", str(saved), base], data)
        assert r.returncode == 1 and "[FAIL] consistency" in r.stdout and "rewritten" in r.stdout, r.stdout
        r = run(["verify"], data)
        assert r.returncode == 2 and "give an export bundle" in r.stderr
        r = run(["verify", str(tmp_path / "missing.json")], data)
        assert r.returncode == 2 and "cannot read" in r.stderr


def test_demo_serves_the_api_and_the_courier_app(tmp_path):
    """What the README's first command starts: the server with demo data and the courier app."""
    port, app_port = free_port(), free_port()
    env = {**os.environ, "HOSO_DATA_DIR": str(tmp_path)}
    env.pop("HOSO_DATABASE_URL", None)
    proc = subprocess.Popen(
        [*HOSO, "demo", "--port", str(port), "--app-port", str(app_port)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        health = app = None
        while time.monotonic() < deadline and (health is None or app is None):
            with contextlib.suppress(httpx.TransportError):
                health = health or httpx.get(f"http://127.0.0.1:{port}/health").json()
                page = httpx.get(f"http://127.0.0.1:{app_port}/")
                app = page.text if page.status_code == 200 else None
            time.sleep(0.3)
        assert health and health["status"] == "ok"
        assert app and "flutter" in app.lower()  # the Flet web client, served locally
        courier = httpx.post(
            f"http://127.0.0.1:{port}/api/v1/auth/token", json={"username": "buuta1", "password": "hoso-demo"}
        ).json()
        todo = httpx.get(
            f"http://127.0.0.1:{port}/api/v1/me/assignments",
            headers={"Authorization": f"Bearer {courier['access_token']}"},
        ).json()
        assert todo["items"], "the demo courier has stops to visit"
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
    assert f"http://127.0.0.1:{app_port}/" in out
    assert (tmp_path / "demo" / "courier-app").is_dir()  # the phone's outbox lives with the demo data


def test_verify_exit_status_says_what_was_proven(tmp_path):
    """0 authentic under pinned keys, 1 a check failed, 2 bad usage, 3 consistent but unproven."""
    import json

    from tests.forgery import forge_bundle
    from tests.unit.test_bundle import Server, build

    server = Server()
    honest = tmp_path / "bundle.json"
    honest.write_text(json.dumps(build(server)))
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(forge_bundle(build(server))))
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps(server.keys()))

    r = run(["verify", str(honest), "--trust", str(keys)], tmp_path)
    assert r.returncode == 0 and "authentic under the pinned keys" in r.stdout, r.stdout + r.stderr
    assert "[ok  ] device enrolment" in r.stdout and "received_at is the server's clock" in r.stdout
    for bundle in (honest, forged):
        r = run(["verify", str(bundle)], tmp_path)
        assert r.returncode == 3, r.stdout + r.stderr
        assert "[ -- ] authenticity" in r.stdout and "authenticity unproven" in r.stderr
        assert r.stderr.count("\n") == 1
    r = run(["verify", str(forged), "--trust", str(keys)], tmp_path)
    assert r.returncode == 1 and "[FAIL] tree head signature" in r.stdout
    witness = SigningKey.generate().public_key_b64
    # a base64url key may start with '-': written with '=' argparse takes it as the value
    r = run(["verify", str(honest), "--trust", str(keys), f"--trust={witness}"], tmp_path)
    assert r.returncode == 1 and "has not co-signed" in r.stdout
    r = run(["verify", str(honest), "--trust", str(tmp_path / "nowhere.json")], tmp_path)
    assert r.returncode == 2 and "not a keys file or a witness key" in r.stderr
    r = run(["verify", str(honest), "--trust", str(honest)], tmp_path)
    assert r.returncode == 2 and "bundle.json is not a keys file" in r.stderr


def test_app_keeps_the_phone_in_the_data_dir_it_is_given(tmp_path):
    """`hoso app --data-dir DIR` as the README says: the outbox lives in DIR, and the web
    client it serves names nothing outside the machine (no CDN)."""
    port = free_port()
    phone = tmp_path / "phone"
    env = {**os.environ}
    env.pop("FLET_WEB_NO_CDN", None)
    proc = subprocess.Popen(
        [
            *HOSO,
            "app",
            "--server",
            "http://127.0.0.1:9",
            "--port",
            str(port),
            "--no-browser",
            "--data-dir",
            str(phone),
        ],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        page = None
        while time.monotonic() < deadline and page is None:
            with contextlib.suppress(httpx.TransportError):
                r = httpx.get(f"{base}/")
                page = r.text if r.status_code == 200 else None
            time.sleep(0.3)
        assert page and "flutter" in page.lower()
        assert "flet.noCdn=true" in page and "canvaskit/" in page  # CanvasKit from this server
        for entry in ("main.dart.js", "main.dart.wasm"):
            body = httpx.get(f"{base}/{entry}", timeout=30).content
            assert len(body) > 1_000_000 and b"cdn.jsdelivr.net" not in body, entry
        assert (phone / "web-assets" / "main.dart.js").exists()  # the phone's folder is the one given
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
    assert f"http://127.0.0.1:{port}/" in out and f"data {phone}" in out
    r = run(["app", "--data-dir"], tmp_path)
    assert r.returncode == 2 and "--data-dir" in r.stderr  # argparse: the folder is missing
