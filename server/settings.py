"""One typed Settings object, read from HOSO_* environment variables."""

from __future__ import annotations

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
    # ingest's SQLite writer: "fast" (plain sqlite3 on its own thread) or "core" (SQLAlchemy's
    # connection); the same statements and stored bytes, the tests run both
    sqlite_writer: str = "fast"

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
        values.update(overrides)
        return cls(**values)

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
