"""The composition root: builds, from real services (main.py) or fakes (tests), everything
a running app holds between screens, and wires them together. No Flet here.

    outbox    courier_app.outbox.Outbox        durable queue of signed events, the cache
    sessions  courier_app.session.SessionStore who is signed in, kept across launches
    api       courier_app.api.ApiClient        every call to the server
    sync      courier_app.sync.SyncDriver      one sync pass at a time, with backoff
    today     courier_app.flows.today.TodayFlow today's stops
and the device key, the clock and the GPS the flows are given.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from shared.crypto import SigningKey
from shared.i18n import t

from .api import ApiClient
from .device import FileKeyStore, KeyStore, device_key
from .flows.custody import DeliveryFlow, Identified, Recorder
from .flows.login import LoginFlow
from .flows.today import Row, TodayFlow
from .link import Link
from .outbox import Outbox
from .ports import Clock, Locator
from .session import Session, SessionStore
from .sync import SyncDriver, Syncer, SyncReport


@dataclass
class AppContext:
    data_dir: Path
    server_url: str
    clock: Clock
    locator: Locator
    keystore: KeyStore | None = None  # None: a 0600 file in data_dir (desktop, browser build)
    lang: str = "vi"
    outbox: Outbox = field(init=False)
    sessions: SessionStore = field(init=False)
    api: ApiClient = field(init=False)
    sync: SyncDriver = field(init=False)
    today: TodayFlow = field(init=False)
    link: Link = field(default_factory=Link)  # can the server be reached now (the offline banner)
    _key: SigningKey | None = None

    def __post_init__(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.outbox = Outbox(self.data_dir / "outbox.db")
        self.sessions = SessionStore(self.outbox)
        self._connect(self.server_url)
        # the flow asks whichever client is current: signing in to another server replaces it
        self.today = TodayFlow(
            self.outbox,
            lambda: self.api.assignments(),
            self.clock,
            lambda: self.api.handovers(),
            lambda: self.api.keys(),
        )
        self.today.load_cached()

    def _connect(self, server_url: str) -> None:
        """One client and one sync driver per server: the driver's failures are the backoff state."""
        self.server_url = server_url
        self.api = ApiClient.connect(server_url, self.sessions.token, self.link.heard)
        self.sync = SyncDriver(Syncer(self.outbox, self.api))

    def close(self) -> None:
        self.api.close()
        self.outbox.close()

    def tr(self, key: str, **values: object) -> str:
        return t(key, self.lang, **values)

    @property
    def key(self) -> SigningKey:
        if self._key is None:
            self._key = device_key(self._keystore)
        return self._key

    @property
    def _keystore(self) -> KeyStore:
        if self.keystore is None:
            self.keystore = FileKeyStore(self.data_dir / "device.key")
        return self.keystore

    @property
    def session(self) -> Session | None:
        return self.sessions.current

    @property
    def last_sync_error(self) -> str | None:
        return self.sync.last_error

    def login_flow(self) -> LoginFlow:
        return LoginFlow(self._keystore)

    def signed_in(self, session: Session) -> None:
        self.sessions.save(session)
        self.api.close()
        self._connect(session.server)

    def sign_out(self) -> None:
        """Back to the login screen; the outbox and the device key stay."""
        self.sessions.clear()

    def resume_session(self) -> bool:
        """Reopening the app keeps the courier signed in until the token expires."""
        session = self.sessions.resume()
        if session is None:
            return False
        self.signed_in(session)
        return True

    def recorder(self) -> Recorder:
        assert self.session is not None
        return Recorder(self.outbox, self.key, self.session.actor, self.clock)

    def delivery_flow(self, row: Row, identified: Identified) -> DeliveryFlow:
        """A delivery whose PIN, if used, is sealed to the server's key and checked online."""
        return DeliveryFlow(
            row,
            self.recorder(),
            identified=identified,
            seal_key=self.today.seal_public_key,
            check_online=lambda code, sealed: self.api.check_pin(code, sealed),
        )

    def probe(self) -> bool:
        """Ask the server whether it answers (cheap: GET /health); the link records it."""
        return self.api.health()

    def sync_now(self) -> SyncReport | None:
        """One pass (attachments, then events); None when offline. Raises TokenExpired."""
        return self.sync.sync_now()
