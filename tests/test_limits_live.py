"""Guessing limits against a real `hoso serve`: parallel connections from 127.0.0.1, each
with its own X-Forwarded-For, as a client behind no trusted proxy would send them."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.test_cli import run, serving


@pytest.mark.slow
def test_parallel_wrong_passwords_over_http_stop_at_the_limits(tmp_path):
    run(["unit", "add", "BC-PLEIKU", "--name", "Bưu cục Pleiku", "--kind", "post_office"], tmp_path)
    run(["user", "add", "hung", "--role", "courier", "--unit", "BC-PLEIKU"], tmp_path, stdin="mật-khẩu-dài\n")
    with serving(tmp_path) as base:

        async def burst(usernames: list[str]) -> list[httpx.Response]:
            async with httpx.AsyncClient(base_url=base, timeout=60) as http:
                return await asyncio.gather(
                    *(
                        http.post(
                            "/api/v1/auth/token",
                            json={"username": name, "password": f"wrong-{i}"},
                            headers={"x-forwarded-for": f"203.0.113.{i}"},
                        )
                        for i, name in enumerate(usernames)
                    )
                )

        responses = asyncio.run(burst(["hung"] * 20))
        assert sorted(r.status_code for r in responses) == [401] * 10 + [429] * 10
        locked = next(r for r in responses if r.status_code == 429)
        assert int(locked.headers["retry-after"]) > 800 and "try again" in locked.json()["detail"]
        r = httpx.post(f"{base}/api/v1/auth/token", json={"username": "hung", "password": "mật-khẩu-dài"})
        assert r.status_code == 429
        # 10 tries counted against 127.0.0.1 so far; the per-client limit is 30, whatever the header
        responses = asyncio.run(burst([f"guess{i}" for i in range(25)]))
        assert sorted(r.status_code for r in responses) == [401] * 20 + [429] * 5
