"""Caps on guessing a secret: each try is counted before the secret is checked."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from math import ceil

from ..db.engine import Database
from . import repository

# counters whose window ended this long ago are dropped
_KEEP = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Limit:
    key: str
    max_tries: int
    window: timedelta


@dataclass(frozen=True, slots=True)
class Reservation:
    """The outcome of counting one try: allowed or not, tries left after it, when to retry."""

    allowed: bool
    left: int
    retry_at: datetime

    def retry_after_s(self, now: datetime) -> int:
        return max(1, ceil((self.retry_at - now).total_seconds()))


async def reserve(db: Database, limits: Sequence[Limit], now: datetime) -> Reservation:
    """Count one try under every limit in one transaction. A try over any limit is refused
    and counts nowhere; an allowed one stays counted (release it if the secret was right)."""
    async with db.write() as conn:
        left: int | None = None
        retry_at = now
        for i, limit in enumerate(limits):
            count, start = await repository.take_attempt(conn, limit.key, now, limit.window)
            if count > limit.max_tries:
                for taken in limits[: i + 1]:
                    await repository.give_back_attempt(conn, taken.key)
                return Reservation(False, 0, start + limit.window)
            remaining = limit.max_tries - count
            if left is None or remaining < left:
                left, retry_at = remaining, start + limit.window
        await repository.prune_attempts(conn, now - _KEEP)
    return Reservation(True, left or 0, retry_at)


async def release(db: Database, limits: Sequence[Limit]) -> None:
    """The secret was right: the try does not count against anyone."""
    async with db.write() as conn:
        for limit in limits:
            await repository.give_back_attempt(conn, limit.key)
