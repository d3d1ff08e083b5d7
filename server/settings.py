"""One typed Settings object, read from HOSO_* environment variables."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

MiB = 1024 * 1024


class SettingsError(ValueError):
    pass


def _bool(text: str) -> bool:
    return text.strip().lower() in {"1", "true", "yes", "on"}


def parse_proxies(text: str) -> tuple[str, ...]:
    """`10.0.0.5, 192.168.0.0/24` -> ("10.0.0.5", "192.168.0.0/24"), each checked."""
    out = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise SettingsError(
                f"HOSO_TRUSTED_PROXIES takes IP addresses or CIDR ranges separated by commas; "
                f"{item!r} is neither"
            ) from None
        out.append(item)
    return tuple(out)


_OUTBOX_ENV: tuple[tuple[str, str, type], ...] = (
    ("HOSO_OUTBOX_ROWS", "outbox_rows", bool),
    ("HOSO_OUTBOX_WORKER", "outbox_worker", bool),
    ("HOSO_OUTBOX_BATCH", "outbox_batch", int),
    ("HOSO_OUTBOX_LEASE", "outbox_lease_s", float),
    ("HOSO_OUTBOX_MAX_ATTEMPTS", "outbox_max_attempts", int),
    ("HOSO_OUTBOX_BACKOFF", "outbox_backoff_s", float),
    ("HOSO_OUTBOX_POLL", "outbox_poll_s", float),
    ("HOSO_SMPP_HOST", "smpp_host", str),
    ("HOSO_SMPP_PORT", "smpp_port", int),
    ("HOSO_SMPP_SYSTEM_ID", "smpp_system_id", str),
    ("HOSO_SMPP_PASSWORD", "smpp_password", str),
    ("HOSO_SMPP_SYSTEM_TYPE", "smpp_system_type", str),
    ("HOSO_SMPP_SOURCE_ADDR", "smpp_source_addr", str),
    ("HOSO_SMPP_RATE", "smpp_rate", float),
    ("HOSO_ZALO_TOKEN", "zalo_token", str),
    ("HOSO_ZALO_URL", "zalo_url", str),
    ("HOSO_ZALO_RATE", "zalo_rate", float),
    ("HOSO_WEBHOOK_RATE", "webhook_rate", float),
    ("HOSO_HTTPS_CA_FILE", "https_ca_file", str),
)


@dataclass(frozen=True, slots=True)
class Settings:
    data_dir: Path = Path("var")
    database_url: str = ""  # empty: SQLite file under data_dir
    public_base_url: str = ""  # empty: http://HOST:PORT of `hoso serve`
    host: str = "127.0.0.1"
    port: int = 8000
    token_ttl_s: int = 12 * 3600
    demo: bool = False
    max_batch: int = 500
    max_body_bytes: int = 16 * MiB
    attachment_limits: Mapping[str, int] = field(
        default_factory=lambda: {
            "image/png": 2 * MiB,
            "image/jpeg": 8 * MiB,
            "application/json": 1 * MiB,
        }
    )
    redis_url: str = ""
    tile_url: str = ""  # https://tiles.example/{z}/{x}/{y}.png; empty: no map, nothing fetched outside
    # helper processes that check event signatures beside the one worker (custody/verifier.py);
    # 0: every check in the worker's own process
    verify_processes: int = field(default_factory=lambda: min(os.cpu_count() or 1, 4))
    merkle_log: bool = True  # HOSO_MERKLE_LOG=0 exists only for bench/log.py's comparison
    # peers whose X-Forwarded-For names the client (a reverse proxy in front); empty: none, the
    # TCP peer is the client (HOSO_TRUSTED_PROXIES=10.0.0.5,192.168.0.0/24)
    trusted_proxies: tuple[str, ...] = ()
    # wrong passwords before POST /api/v1/auth/token answers 429, per account and per client,
    # within login_window_s (README "What a PIN proves and how guessing is capped")
    login_failures_per_account: int = 10
    login_failures_per_client: int = 30
    login_window_s: int = 15 * 60
    # attachment pixels per kind (a signature is PNG, a photo JPEG), checked at upload
    max_signature_pixels: int = 2_000_000
    max_photo_pixels: int = 12_000_000
    max_json_depth: int = 32  # stroke data nests 3 deep
    # bytes one account may have uploaded that no custody event references yet
    max_unreferenced_bytes: int = 50 * MiB
    # ingest's SQLite writer: "fast" (plain sqlite3 on its own thread) or "core" (SQLAlchemy's
    # connection); the same statements and stored bytes, the tests run both
    sqlite_writer: str = "fast"
    # --- the outbox (docs/NOTIFICATIONS.md) ---
    outbox_rows: bool = True  # HOSO_OUTBOX_ROWS=0 exists only for bench/outbox.py's comparison
    outbox_worker: bool = True  # `hoso serve` runs one worker in its process (HOSO_OUTBOX_WORKER=0: none)
    outbox_batch: int = 100  # rows a worker claims at once
    outbox_lease_s: float = 60.0  # a claimed row is another worker's to take after this
    outbox_max_attempts: int = 8  # then the row is a dead letter
    outbox_backoff_s: float = 5.0  # first retry after 2.5-5 s, doubling, at most outbox_backoff_cap_s
    outbox_backoff_cap_s: float = 3600.0
    outbox_poll_s: float = 1.0  # a worker with nothing due looks again after this
    # SMS over SMPP 3.4 (a brand-name SMS gateway); no host: no SMS is sent
    smpp_host: str = ""
    smpp_port: int = 2775
    smpp_system_id: str = ""
    smpp_password: str = ""
    smpp_system_type: str = ""
    smpp_source_addr: str = ""  # the brand name (alphanumeric, at most 11) a unit may override
    smpp_rate: float = 30.0  # submit_sm per second per worker process
    # Zalo ZNS; no token: no ZNS is sent
    zalo_token: str = ""
    zalo_url: str = "https://business.openapi.zalo.me/message/template"
    zalo_rate: float = 10.0
    webhook_rate: float = 10.0  # requests per second per receiving host per worker process
    https_ca_file: str = ""  # a CA bundle to trust for Zalo and webhooks instead of the system's

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        if v := env.get("HOSO_DATA_DIR"):
            values["data_dir"] = Path(v)
        if v := env.get("HOSO_DATABASE_URL"):
            values["database_url"] = v
        if v := env.get("HOSO_PUBLIC_BASE_URL"):
            values["public_base_url"] = v.rstrip("/")
        if v := env.get("HOSO_TOKEN_TTL"):
            try:
                values["token_ttl_s"] = int(v)
            except ValueError:
                raise SettingsError(f"HOSO_TOKEN_TTL must be seconds, got {v!r}") from None
        if v := env.get("HOSO_DEMO"):
            values["demo"] = _bool(v)
        if v := env.get("HOSO_MERKLE_LOG"):
            values["merkle_log"] = _bool(v)
        if v := env.get("HOSO_VERIFY_PROCESSES"):
            try:
                values["verify_processes"] = int(v)
            except ValueError:
                raise SettingsError(
                    f"HOSO_VERIFY_PROCESSES must be a number of processes, got {v!r}"
                ) from None
            if values["verify_processes"] < 0:
                raise SettingsError(f"HOSO_VERIFY_PROCESSES must be 0 or more, got {v}")
        if v := env.get("HOSO_SQLITE_WRITER"):
            if v not in ("fast", "core"):
                raise SettingsError(f"HOSO_SQLITE_WRITER must be fast or core, got {v!r}")
            values["sqlite_writer"] = v
        if v := env.get("HOSO_REDIS_URL"):
            values["redis_url"] = v
        if v := env.get("HOSO_TILE_URL"):
            values["tile_url"] = v
        for name, key in (
            ("HOSO_LOGIN_FAILURES_PER_ACCOUNT", "login_failures_per_account"),
            ("HOSO_LOGIN_FAILURES_PER_CLIENT", "login_failures_per_client"),
        ):
            if v := env.get(name):
                if not v.isdigit() or int(v) < 1:
                    raise SettingsError(f"{name} must be a number of tries, 1 or more; got {v!r}")
                values[key] = int(v)
        for name, key, kind in _OUTBOX_ENV:
            if (v := env.get(name)) is None or v == "":
                continue
            try:
                values[key] = kind(v) if kind is not bool else _bool(v)
            except ValueError:
                what = {int: "a whole number", float: "a number"}.get(kind, "a value")
                raise SettingsError(f"{name} must be {what}, got {v!r}") from None
        if v := env.get("HOSO_TRUSTED_PROXIES"):
            values["trusted_proxies"] = parse_proxies(v)
        values.update(overrides)
        return cls(**values)

    def __post_init__(self) -> None:
        parse_proxies(",".join(self.trusted_proxies))
        # SMPP 3.4's bind_transmitter: system_id at most 15 octets, password at most 8
        if len(self.smpp_system_id) > 15 or len(self.smpp_password) > 8:
            raise SettingsError(
                "HOSO_SMPP_SYSTEM_ID takes at most 15 characters and HOSO_SMPP_PASSWORD at most 8 "
                "(SMPP 3.4); the gateway's own limits may be shorter"
            )

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **changes)

    @property
    def db_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'hoso.db').resolve()}"

    @property
    def base_url(self) -> str:
        return self.public_base_url or f"http://{self.host}:{self.port}"

    @property
    def keys_dir(self) -> Path:
        return self.data_dir / "keys"

    @property
    def attachments_dir(self) -> Path:
        return self.data_dir / "attachments"
