"""Signing in and enrolling this device against a real `hoso serve`."""

from __future__ import annotations

import stat

import httpx
import pytest

from bench._harness import PASSWORD, Server
from courier_app.api import ApiClient
from courier_app.device import FileKeyStore, device_key
from courier_app.flows.login import LoginFlow
from shared.i18n import t


@pytest.fixture(scope="module")
def server():
    with Server("sqlite") as srv:
        yield srv


def _flow(tmp_path, **kw):
    return LoginFlow(FileKeyStore(tmp_path / "device.key"), ApiClient.connect, **kw)


def test_sign_in_enrols_one_key_that_survives_a_new_sign_in(server, tmp_path):
    flow = _flow(tmp_path)
    session = flow.submit(server.base + "/", "courier", PASSWORD)
    assert session is not None and flow.error is None and session.actor == f"courier:{server.courier_id}"
    keys = httpx.get(f"{server.base}/api/v1/keys").json()
    assert session.label_public_key == keys["label_public_key"]
    key_file = tmp_path / "device.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    first = device_key(FileKeyStore(key_file)).public_key_b64
    again = _flow(tmp_path, clock=lambda: 0.0).submit(
        server.base, "courier", PASSWORD
    )  # token expired → sign in
    assert again is not None and device_key(FileKeyStore(key_file)).public_key_b64 == first
    assert not again.expired(now=1.0) and again.expired(now=again.expires_at)
    r = httpx.get(
        f"{server.base}/api/v1/me/assignments", headers={"Authorization": f"Bearer {session.token}"}
    )
    assert r.status_code == 200


@pytest.mark.parametrize(
    ("server_url", "user", "password", "error"),
    [
        ("127.0.0.1:8000", "courier", "x", "login.bad_server"),
        (None, "", "x", "login.missing"),
        (None, "courier", "wrong-password", "login.wrong"),
        (None, "dispatcher", PASSWORD, "login.not_courier"),
        ("http://127.0.0.1:9", "courier", PASSWORD, "login.unreachable"),
    ],
)
def test_failures_say_what_to_do(server, tmp_path, server_url, user, password, error):
    flow = _flow(tmp_path)
    assert flow.submit(server_url or server.base, user, password) is None
    assert flow.error == error
    assert t(error) != error and t(error, "en") != error


def test_a_phone_enrolled_to_someone_else_is_refused(server, tmp_path):
    assert _flow(tmp_path).submit(server.base, "courier", PASSWORD) is not None
    server._cli(["user", "add", "courier2", "--role", "courier", "--unit", "BC-1"], stdin=PASSWORD + "\n")
    flow = _flow(tmp_path)  # same key file, another courier
    assert flow.submit(server.base, "courier2", PASSWORD) is None and flow.error == "login.device_taken"
