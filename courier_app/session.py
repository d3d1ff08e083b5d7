"""Who is signed in on this phone: the session (token, its expiry, the server's keys) and
where it is kept between launches (the outbox's small key-value table), so reopening the
app keeps the courier signed in until the token expires."""

from __future__ import annotations

import time
from dataclasses import dataclass

import msgspec

from .api import TokenExpired
from .outbox import Outbox

_KEY = "session"


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


class SessionStore:
    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox
        self.current: Session | None = None

    def save(self, session: Session) -> None:
        self.current = session
        self.outbox.remember(_KEY, msgspec.json.encode(session))

    def clear(self) -> None:
        """Signed out; the outbox and the device key stay."""
        self.current = None
        self.outbox.remember(_KEY, b"null")

    def resume(self) -> Session | None:
        """The session kept from the last launch, unless it has expired."""
        blob = self.outbox.recall(_KEY)
        session = msgspec.json.decode(blob, type=Session | None) if blob else None
        if session is None or session.expired():
            return None
        self.current = session
        return session

    def token(self) -> str:
        """The bearer token for the next call; raises TokenExpired once it has run out."""
        if self.current is None or self.current.expired():
            raise TokenExpired("signed out")
        return self.current.token
