"""Twenty identical intake requests at once against two real `hoso serve` processes on one
database (SQLite file, or PostgreSQL): exactly one shipment, the same answer for all."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bench import _harness as harness
from tests.conftest import PG_URL, STRICT, _pg_admin, _pg_url_for
from tests.test_cli import HOSO, ROOT


@contextlib.contextmanager
def _database(backend: str, tmp_path: Path) -> Iterator[dict[str, str]]:
    env = {**os.environ, "HOSO_DATA_DIR": str(tmp_path), "HOSO_PUBLIC_BASE_URL": "http://hoso.test"}
    env.pop("HOSO_DATABASE_URL", None)
    if backend == "sqlite":
        yield env
        return
    if not PG_URL:
        if STRICT:
            pytest.fail("HOSO_TEST_POSTGRES_URL is not set")
        pytest.skip("PostgreSQL run needs HOSO_TEST_POSTGRES_URL")
    name = f"hoso_live_{uuid.uuid4().hex[:12]}"
    with _pg_admin() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield {**env, "HOSO_DATABASE_URL": _pg_url_for(name)}
    finally:
        with _pg_admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _hoso(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([*HOSO, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


BODY = {
    "kind": "result",
    "dossier_ref": "000.00.12.H21-261202-0042",
    "procedure": "Cấp giấy chứng nhận quyền sử dụng đất",
    "sender": {"name": "Trung tâm Phục vụ hành chính công tỉnh Gia Lai"},
    "recipient": {"name": "Nguyễn Thị Bích", "phone": "0905123456", "address": "12 Trần Hưng Đạo"},
    "due_at": "2026-12-10T17:00:00+07:00",
}


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_twenty_identical_requests_on_two_servers_make_one_shipment(backend, tmp_path):
    with _database(backend, tmp_path) as env:
        _hoso(env, "unit", "add", "TTHCC-GL", "--name", "TTHCC Gia Lai", "--kind", "one_stop_shop")
        key = _hoso(env, "apikey", "create", "TTHCC-GL", "--name", "Phần mềm một cửa").strip()
        assert key.startswith("hoso_ak_")
        with harness.serving(env, 2) as bases:

            async def burst(bodies: list[dict]) -> list[httpx.Response]:
                clients = [httpx.AsyncClient(base_url=b, timeout=60) for b in bases]
                try:
                    return await asyncio.gather(
                        *(
                            clients[i % 2].post(
                                "/api/v1/shipments", json=body, headers={"Authorization": f"Bearer {key}"}
                            )
                            for i, body in enumerate(bodies)
                        )
                    )
                finally:
                    for c in clients:
                        await c.aclose()

            rs = asyncio.run(burst([BODY] * 20))
            assert sorted(r.status_code for r in rs) == [200] * 19 + [201], [r.text for r in rs]
            assert len({r.text for r in rs}) == 1  # the very same body, PIN included
            code = rs[0].json()["code"]
            listed = httpx.get(f"{bases[0]}/api/v1/shipments/{code}", headers={"X-API-Key": key}).json()
            assert listed["dossier_ref"] == BODY["dossier_ref"]
            # twenty different bodies under one new code: one shipment, nineteen 409
            rs = asyncio.run(burst([{**BODY, "dossier_ref": "HS-2", "fee_vnd": i} for i in range(20)]))
            assert sorted(r.status_code for r in rs) == [201] + [409] * 19, [r.text for r in rs]
        _hoso(env, "apikey", "revoke", key)
        listed_keys = _hoso(env, "apikey", "list")
        assert "revoked" in listed_keys
