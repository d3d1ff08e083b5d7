"""The one time helper: aware UTC everywhere, ISO 8601 with milliseconds on the wire."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from functools import lru_cache

# ASCII digits only: Python's \d would also match "２" and "٢"
_WIRE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z$")
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


@lru_cache(maxsize=1024)
def _real_day(day: str) -> bool:
    try:
        date.fromisoformat(day)
    except ValueError:
        return False
    return True


def is_real_wire_time(text: str) -> bool:
    """For a text that matches WIRE_PATTERN: does that time exist (month 1-12, a day
    the month has, 23:59:59.999 at the latest)? The pattern alone lets 2026-13-45 by."""
    return _real_day(text[:10]) and text[11:13] < "24" and text[14:16] < "60" and text[17:19] < "60"


def as_utc(dt: datetime) -> datetime:
    """Attach UTC to a naive value read back from SQLite; convert aware ones."""
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)
