"""Signing in: server address, username, password → token, and this device's key enrolled.

The flow keeps what the rest of the app needs (token and its expiry, the server's label
and event keys for offline checks) and turns every failure into an i18n key a courier
can act on. Signing in again after the token expired reuses the same device key, so
events already in the outbox stay valid.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from ..device import KeyStore, device_key


@dataclass
class Session:
    server: str
    token: str
    expires_at: float  # time.time() seconds
    user_id: int
    username: str
    full_name: str
    label_public_key: str
    event_public_key: str

    @property
    def actor(self) -> str:
        return f"courier:{self.user_id}"

    def expired(self, now: float | None = None) -> bool:
        return (now if now is not None else time.time()) >= self.expires_at


@dataclass
class LoginFlow:
    keystore: KeyStore
    client: Callable[[str], httpx.Client]  # base URL -> client (tests pass a real one)
    clock: Callable[[], float] = time.time
    error: str | None = None  # i18n key of the last failure
    session: Session | None = None

    def submit(self, server: str, username: str, password: str) -> Session | None:
        self.error = None
        server = server.strip().rstrip("/")
        if not server.startswith(("http://", "https://")):
            self.error = "login.bad_server"
            return None
        if not username.strip() or not password:
            self.error = "login.missing"
            return None
        key = device_key(self.keystore)
        try:
            with self.client(server) as http:
                r = http.post("/api/v1/auth/token", json={"username": username.strip(), "password": password})
                if r.status_code == 401:
                    self.error = "login.wrong"
                    return None
                r.raise_for_status()
                body = r.json()
                if body["user"]["role"] != "courier":
                    self.error = "login.not_courier"
                    return None
                token = body["access_token"]
                e = http.post(
                    "/api/v1/devices",
                    json={"public_key": key.public_key_b64, "label": "HoSo courier"},
                    headers={"Authorization": f"Bearer {token}"},
                )
                if e.status_code == 409:
                    self.error = "login.device_taken"
                    return None
                e.raise_for_status()
                keys = e.json()
        except httpx.TransportError:
            self.error = "login.unreachable"
            return None
        except httpx.HTTPStatusError:
            self.error = "login.server_error"
            return None
        user = body["user"]
        self.session = Session(
            server,
            token,
            self.clock() + body["expires_in"],
            user["id"],
            user["username"],
            user.get("full_name", ""),
            keys["label_public_key"],
            keys["event_public_key"],
        )
        return self.session
