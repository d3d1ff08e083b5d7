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

from ..api import ApiClient, ApiError, DeviceTaken, ServerError, ServerUnavailable, WrongPassword
from ..device import KeyStore, device_key
from ..session import Session

__all__ = ["LoginFlow", "Session"]

DEVICE_LABEL = "HoSo courier"


@dataclass
class LoginFlow:
    keystore: KeyStore
    connect: Callable[[str], ApiClient] = ApiClient.connect  # server URL -> a client not yet signed in
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
            with self.connect(server) as api:
                tokens = api.login(username.strip(), password)
                if tokens.user.role != "courier":
                    self.error = "login.not_courier"
                    return None
                keys = api.enrol_device(tokens.access_token, key.public_key_b64, DEVICE_LABEL)
        except WrongPassword:
            self.error = "login.wrong"
            return None
        except DeviceTaken:
            self.error = "login.device_taken"
            return None
        except ServerError:
            self.error = "login.server_error"
            return None
        except ServerUnavailable:
            self.error = "login.unreachable"
            return None
        except ApiError:
            self.error = "login.server_error"
            return None
        user = tokens.user
        self.session = Session(
            server,
            tokens.access_token,
            self.clock() + tokens.expires_in,
            user.id,
            user.username,
            user.full_name,
            keys.label_public_key,
            keys.event_public_key,
        )
        return self.session
