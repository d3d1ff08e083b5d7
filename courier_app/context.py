"""Everything a running app holds between screens, built from real services by main.py and
from fakes by tests: the outbox, the device key, the signed-in session, today's list,
the syncer. No Flet here."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import msgspec

from shared.crypto import SigningKey
from shared.i18n import t

from .device import FileKeyStore, KeyStore, device_key
from .flows.custody import Recorder
from .flows.login import LoginFlow, Session
from .flows.today import TodayFlow
from .outbox import Outbox
from .ports import Clock, Locator
from .sync import ServerUnavailable, Syncer, SyncReport, TokenExpired

HTTP_TIMEOUT = httpx.Timeout(10.0, connect=5.0)


def http_client(base_url: str) -> httpx.Client:
    return httpx.Client(base_url=base_url, timeout=HTTP_TIMEOUT)


@dataclass
class AppContext:
    data_dir: Path
    server_url: str
    clock: Clock
    locator: Locator
    keystore: KeyStore | None = None  # None: a 0600 file in data_dir (desktop, browser build)
    lang: str = "vi"
    session: Session | None = None
    outbox: Outbox = field(init=False)
    today: TodayFlow = field(init=False)
    last_sync_error: str | None = None
    _http: httpx.Client | None = None
    _key: SigningKey | None = None
    _syncer: Syncer | None = None
    _sync_lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.keystore = self.keystore or FileKeyStore(self.data_dir / "device.key")
        self.outbox = Outbox(self.data_dir / "outbox.db")
        self.today = TodayFlow(self.outbox, self._fetch_assignments, self.clock, self._fetch_handovers)
        self.today.load_cached()

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
        self.outbox.close()

    def tr(self, key: str, **values: object) -> str:
        return t(key, self.lang, **values)

    @property
    def key(self) -> SigningKey:
        if self._key is None:
            self._key = device_key(self.keystore)  # type: ignore[arg-type]
        return self._key

    def login_flow(self) -> LoginFlow:
        return LoginFlow(self.keystore, http_client)  # type: ignore[arg-type]

    def signed_in(self, session: Session) -> None:
        self.session = session
        self.outbox.remember("session", msgspec.json.encode(session))
        self.server_url = session.server
        if self._http is not None:
            self._http.close()
        self._http = http_client(session.server)

    def sign_out(self) -> None:
        """Back to the login screen; the outbox and the device key stay."""
        self.session = None
        self.outbox.remember("session", b"null")

    def resume_session(self) -> bool:
        """Reopening the app keeps the courier signed in until the token expires."""
        blob = self.outbox.recall("session")
        session = msgspec.json.decode(blob, type=Session | None) if blob else None
        if session is None or session.expired():
            return False
        self.signed_in(session)
        return True

    @property
    def http(self) -> httpx.Client:
        if self._http is None:
            self._http = http_client(self.server_url)
        return self._http

    def _token(self) -> str:
        if self.session is None or self.session.expired():
            raise TokenExpired("signed out")
        return self.session.token

    def _get(self, path: str) -> httpx.Response:
        """GET an API path as the signed-in courier; offline → ServerUnavailable."""
        try:
            r = self.http.get(path, headers={"Authorization": f"Bearer {self._token()}"})
        except httpx.TransportError as exc:
            raise ServerUnavailable(str(exc)) from exc
        if r.status_code == 401:
            raise TokenExpired(r.json().get("detail", ""))
        if r.status_code != 200:
            raise ServerUnavailable(f"server answered {r.status_code}")
        return r

    def _fetch_assignments(self) -> bytes:
        return self._get("/api/v1/me/assignments").content

    def _fetch_handovers(self) -> list[dict]:
        return self._get("/api/v1/me/handovers").json()["items"]

    def recorder(self) -> Recorder:
        assert self.session is not None
        return Recorder(self.outbox, self.key, self.session.actor, self.clock)

    @property
    def syncer(self) -> Syncer:
        """One syncer per server connection: its failure count is the app's backoff state."""
        if self._syncer is None or self._syncer.http is not self.http:
            self._syncer = Syncer(self.outbox, self.http, self._token)
        return self._syncer

    def sync_now(self) -> SyncReport | None:
        """One pass (attachments, then events); None when offline. Raises TokenExpired."""
        with self._sync_lock:
            try:
                report = self.syncer.run_once()
            except ServerUnavailable as exc:
                self.syncer.failures += 1
                self.last_sync_error = str(exc)
                return None
            self.last_sync_error = None
            return report
