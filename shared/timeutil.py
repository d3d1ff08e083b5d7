"""The one time helper: aware UTC everywhere, ISO 8601 with milliseconds on the wire."""

from __future__ import annotations

import re
from datetime import UTC, datetime

_WIRE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
WIRE_PATTERN = _WIRE.pattern


def utcnow() -> datetime:
    return datetime.now(UTC)


def to_wire(dt: datetime) -> str:
    """`2026-11-22T03:04:05.123Z` — UTC, millisecond precision (CUSTODY.md §3)."""
    if dt.tzinfo is None:
        raise ValueError("naive datetime: use an aware UTC datetime")
    dt = dt.astimezone(UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def from_wire(text: str) -> datetime:
    if not _WIRE.match(text):
        raise ValueError(f"expected a UTC time like 2026-11-22T03:04:05.123Z, got {text!r}")
    return datetime.fromisoformat(text)


def as_utc(dt: datetime) -> datetime:
    """Attach UTC to a naive value read back from SQLite; convert aware ones."""
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)
