from __future__ import annotations

import asyncio
import time
from datetime import timedelta

from litestar.handlers import HTTPRouteHandler
from sqlalchemy import update

from server.auth import service as auth_service
from server.db.models import api_tokens
from shared.crypto import SigningKey
from shared.timeutil import utcnow
from tests.api.conftest import table_counts
from tests.conftest import PASSWORD


async def test_token_and_wrong_credentials(api):
    ok = await api.client.post(
        "/api/v1/auth/token", json={"username": "courier1", "password": "test-password-1"}
    )
    assert ok.status_code == 200
    body = ok.json()
    assert body["token_type"] == "bearer" and body["expires_in"] > 0
    assert body["user"]["role"] == "courier" and body["user"]["unit"] == "BC-PLEIKU"
    for creds in ({"username": "courier1", "password": "nope"}, {"username": "ghost", "password": "x"}):
        r = await api.client.post("/api/v1/auth/token", json=creds)
        assert r.status_code == 401 and r.json()["detail"] == "Wrong username or password."


async def test_bad_bodies_name_the_problem(api):
    r = await api.client.post(
        "/api/v1/auth/token", content=b'{"username": "a", ', headers={"content-type": "application/json"}
    )
    assert r.status_code == 400 and "JSON" in r.json()["detail"]
    r = await api.client.post("/api/v1/auth/token", json={"username": "a", "password": "b", "admin": True})
    assert r.status_code == 400 and "unknown field `admin`" in r.json()["detail"]
    r = await api.client.post("/api/v1/auth/token", json={"username": 5, "password": "b"})
    assert r.status_code == 400 and "Expected `str`, got `int`" in r.json()["detail"]
    assert "username" in r.json()["detail"]


async def test_missing_bad_and_expired_tokens(api, db, monkeypatch):
    r = await api.client.get("/api/v1/me/assignments")
    assert r.status_code == 401 and "Sign in" in r.json()["detail"]
    r = await api.client.get("/api/v1/me/assignments", headers={"Authorization": "Bearer forged"})
    assert r.status_code == 401 and "not valid" in r.json()["detail"]
    headers = await api.login("courier1")
    assert (await api.client.get("/api/v1/me/assignments", headers=headers)).status_code == 200
    async with db.write() as conn:
        await conn.execute(update(api_tokens).values(expires_at=utcnow() - timedelta(seconds=1)))
    # an edit made behind the server's back applies once the token's cached row is due to be read again
    assert (await api.client.get("/api/v1/me/assignments", headers=headers)).status_code == 200
    later = time.monotonic() + auth_service.TOKEN_CACHE_SECONDS
    monkeypatch.setattr(auth_service, "_clock", lambda: later)
    r = await api.client.get("/api/v1/me/assignments", headers=headers)
    assert r.status_code == 401 and r.json()["detail"] == "The access token has expired: sign in again."


async def test_a_cached_token_still_expires_on_time(api, monkeypatch):
    headers = await api.login("courier1")
    assert (await api.client.get("/api/v1/me/assignments", headers=headers)).status_code == 200
    cache = api.client.app.state.db.cache["tokens"]
    ((_, expires_at, _, _),) = cache.values()
    monkeypatch.setattr(auth_service, "utcnow", lambda: expires_at)
    r = await api.client.get("/api/v1/me/assignments", headers=headers)
    assert r.status_code == 401 and r.json()["detail"] == "The access token has expired: sign in again."
    assert not cache


async def test_roles_are_enforced(api, db):
    cases = [
        ("GET", "/api/v1/shipments", "courier1"),
        ("POST", "/api/v1/shipments", "courier1"),
        ("POST", "/api/v1/shipments", "auditor"),
        ("POST", "/api/v1/events", "dispatcher"),
        ("POST", "/api/v1/events", "clerk"),
        ("POST", "/api/v1/devices", "dispatcher"),
        ("GET", "/api/v1/me/assignments", "clerk"),
        ("POST", "/api/v1/shipments/1234567890123/assign", "clerk"),
        ("POST", "/api/v1/users", "dispatcher"),
        ("GET", "/api/v1/attachments/" + "ab" * 32, "courier1"),
    ]
    for _, _, user in cases:
        await api.login(user)
    before = await table_counts(db)
    for method, path, user in cases:
        r = await api.call(method, path, user, json={})
        assert r.status_code == 403, (method, path, user, r.text)
        assert "may not do this" in r.json()["detail"]
    assert await table_counts(db) == before


def test_every_route_declares_roles_or_is_public(client):
    for route in client.app.routes:
        for handler in getattr(route, "route_handlers", []):
            if (
                not isinstance(handler, HTTPRouteHandler)
                or route.path.startswith("/schema")
                or handler.http_methods == {"OPTIONS"}
            ):
                continue
            assert handler.opt.get("roles") or handler.opt.get("exclude_from_auth"), route.path


async def test_device_enrolment(api):
    key = SigningKey.generate()
    r1 = await api.call("POST", "/api/v1/devices", "courier1", json={"public_key": key.public_key_b64})
    assert r1.status_code == 201
    keys = (await api.call("GET", "/api/v1/keys")).json()
    assert r1.json()["label_public_key"] == keys["label_public_key"]
    assert r1.json()["event_public_key"] == keys["event_public_key"]
    r2 = await api.call("POST", "/api/v1/devices", "courier1", json={"public_key": key.public_key_b64})
    assert r2.json()["device_id"] == r1.json()["device_id"]
    r3 = await api.call("POST", "/api/v1/devices", "courier2", json={"public_key": key.public_key_b64})
    assert r3.status_code == 409
    r4 = await api.call("POST", "/api/v1/devices", "courier1", json={"public_key": "not-a-key"})
    assert r4.status_code == 400 and "public_key" in r4.json()["detail"]


async def test_admin_creates_users(api):
    r = await api.call(
        "POST",
        "/api/v1/users",
        "admin",
        json={"username": "courier9", "password": "a-long-password", "role": "courier", "unit": "BC-PLEIKU"},
    )
    assert r.status_code == 201
    r = await api.client.post(
        "/api/v1/auth/token", json={"username": "courier9", "password": "a-long-password"}
    )
    assert r.status_code == 200
    r = await api.call(
        "POST",
        "/api/v1/users",
        "admin",
        json={"username": "courier9", "password": "a-long-password", "role": "courier", "unit": "BC-PLEIKU"},
    )
    assert r.status_code == 409
    r = await api.call(
        "POST",
        "/api/v1/users",
        "admin",
        json={"username": "x1", "password": "short", "role": "courier", "unit": "BC-PLEIKU"},
    )
    assert r.status_code == 400 and "password" in r.json()["detail"]
    r = await api.call(
        "POST",
        "/api/v1/users",
        "admin",
        json={"username": "x2", "password": "a-long-password", "role": "courier", "unit": "NOWHERE"},
    )
    assert r.status_code == 404 and "NOWHERE" in r.json()["detail"]


async def test_wrong_passwords_lock_the_account_for_a_while(api, monkeypatch):
    """30 wrong passwords in parallel: 10 are checked, the rest and then the right one wait."""
    from server.auth import passwords

    checked = []
    real = passwords.verify_password
    monkeypatch.setattr(passwords, "verify_password", lambda h, p: checked.append(p) or real(h, p))
    wrong = {"username": "courier1", "password": "not-the-password"}
    responses = await asyncio.gather(*(api.client.post("/api/v1/auth/token", json=wrong) for _ in range(30)))
    assert sorted(r.status_code for r in responses) == [401] * 10 + [429] * 20
    assert len(checked) == 10
    locked = next(r for r in responses if r.status_code == 429)
    assert "Too many wrong passwords" in locked.json()["detail"] and "try again" in locked.json()["detail"]
    assert 800 < int(locked.headers["retry-after"]) <= 900
    r = await api.client.post("/api/v1/auth/token", json={"username": "courier1", "password": PASSWORD})
    assert r.status_code == 429 and len(checked) == 10
    r = await api.client.post("/api/v1/auth/token", json={"username": "clerk", "password": PASSWORD})
    assert r.status_code == 200  # another account from the same client still signs in


async def test_wrong_passwords_lock_the_client_across_accounts(api):
    """Spreading guesses over many usernames hits the per-client limit (30 per 15 minutes),
    and a new X-Forwarded-For does not help: no proxy is trusted by default."""
    responses = await asyncio.gather(
        *(
            api.client.post(
                "/api/v1/auth/token",
                json={"username": f"guess{i}", "password": "x"},
                headers={"x-forwarded-for": f"198.51.100.{i}"},
            )
            for i in range(35)
        )
    )
    assert sorted(r.status_code for r in responses) == [401] * 30 + [429] * 5
    r = await api.client.post("/api/v1/auth/token", json={"username": "clerk", "password": PASSWORD})
    assert r.status_code == 429


async def test_a_right_password_costs_no_try(api):
    for _ in range(15):
        r = await api.client.post("/api/v1/auth/token", json={"username": "courier1", "password": PASSWORD})
        assert r.status_code == 200


def test_client_ip_trusts_forwarded_for_only_from_configured_proxies():
    from types import SimpleNamespace

    from litestar.datastructures import Headers

    from server.auth.clients import client_ip

    def conn(peer: str, xff: str | None):  # type: ignore[no-untyped-def]
        headers = Headers({"x-forwarded-for": xff} if xff else {})
        return SimpleNamespace(client=SimpleNamespace(host=peer), headers=headers)

    assert client_ip(conn("127.0.0.1", "203.0.113.9"), ()) == "127.0.0.1"
    assert client_ip(conn("10.0.0.5", "203.0.113.9"), ("10.0.0.5",)) == "203.0.113.9"
    chain = "198.51.100.1, 203.0.113.9, 10.0.0.7"
    assert client_ip(conn("10.0.0.5", chain), ("10.0.0.0/24",)) == "203.0.113.9"
    assert client_ip(conn("192.0.2.1", chain), ("10.0.0.0/24",)) == "192.0.2.1"
    assert client_ip(conn("10.0.0.5", "garbage"), ("10.0.0.0/24",)) == "10.0.0.5"
    assert client_ip(conn("10.0.0.5", None), ("10.0.0.0/24",)) == "10.0.0.5"


def test_trusted_proxies_setting():
    import pytest

    from server.settings import Settings, SettingsError

    s = Settings.from_env({"HOSO_TRUSTED_PROXIES": "10.0.0.5, 192.168.0.0/24"})
    assert s.trusted_proxies == ("10.0.0.5", "192.168.0.0/24")
    assert Settings.from_env({}).trusted_proxies == ()
    with pytest.raises(SettingsError, match="neither"):
        Settings.from_env({"HOSO_TRUSTED_PROXIES": "10.0.0.5, proxy.local"})


async def test_a_nul_character_in_a_new_account_is_refused_not_a_server_error(api):
    """On PostgreSQL a NUL in `full_name` was a 500."""
    r = await api.call(
        "POST",
        "/api/v1/users",
        "admin",
        json={"username": "nul-name", "password": "long-enough-1", "role": "auditor", "full_name": "\x00"},
    )
    assert r.status_code == 400 and "NUL" in r.json()["detail"], r.text
    r = await api.call(
        "POST",
        "/api/v1/users",
        "admin",
        json={
            "username": "backslash",
            "password": "long-enough-1",
            "role": "auditor",
            "full_name": "\\u0000",
        },
    )
    assert r.status_code == 201, r.text
