"""Alembic, driven from code: `hoso db upgrade`, `hoso serve` and the tests call upgrade()."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["database_url"] = url
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Apply migrations (synchronously: call it before the event loop starts, or in a thread)."""
    command.upgrade(alembic_config(url), revision)
