"""Checking a shipment's PIN, the one way every route does it: each try is counted before
argon2 runs, per envelope family (a result shares its parent submission's PIN, so they share
one count) and per client. README "What a PIN proves and how guessing is capped"."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from shared.timeutil import utcnow

from ..auth.limits import Limit, release, reserve
from ..auth.passwords import verify_pin_async
from ..db.engine import Database
from ..errors import BadRequest, TooManyRequests

MAX_TRIES = 5  # wrong PINs per envelope family and per client …
WINDOW = timedelta(hours=1)  # … within an hour


@dataclass(frozen=True, slots=True)
class PinOutcome:
    result: Literal["right", "wrong", "locked"]
    left: int = 0  # wrong tries still allowed after this one
    retry_at: datetime | None = None  # when a locked family or client may try again

    @property
    def ok(self) -> bool:
        return self.result == "right"


def family_code(ship: Any) -> str:
    """The code whose PIN this is: a result carries its parent submission's PIN."""
    code: str = ship.parent_code if ship.kind == "result" and ship.parent_code else ship.code
    return code


def _limits(ship: Any, client: str) -> list[Limit]:
    return [
        Limit(f"pin:code:{family_code(ship)}", MAX_TRIES, WINDOW),
        Limit(f"pin:client:{client}", MAX_TRIES, WINDOW),
    ]


async def check_pin(db: Database, ship: Any, pin: str, client: str, now: datetime) -> PinOutcome:
    """`ship` needs code, kind, parent_code and pin_hash. A right PIN costs no try; the try
    that uses up the last one answers "locked" though it was evaluated."""
    limits = _limits(ship, client)
    reservation = await reserve(db, limits, now)
    if not reservation.allowed:
        return PinOutcome("locked", 0, reservation.retry_at)
    if await verify_pin_async(ship.pin_hash, pin):
        await release(db, limits)
        return PinOutcome("right", reservation.left + 1)
    if reservation.left <= 0:
        return PinOutcome("locked", 0, reservation.retry_at)
    return PinOutcome("wrong", reservation.left, reservation.retry_at)


async def require_pin(db: Database, ship: Any, pin: str, client: str, now: datetime | None = None) -> None:
    """check_pin for the JSON API: a wrong PIN is a 400, past the limit a 429 with Retry-After."""
    now = now or utcnow()
    outcome = await check_pin(db, ship, pin, client, now)
    if outcome.result == "right":
        return
    if outcome.result == "locked":
        assert outcome.retry_at is not None
        wait = max(1, int((outcome.retry_at - now).total_seconds()) + 1)
        raise TooManyRequests(
            f"Too many wrong PINs for this shipment or from this address; try again after "
            f"{outcome.retry_at.strftime('%H:%M')} UTC, or print without the PIN.",
            headers={"Retry-After": str(wait)},
        )
    raise BadRequest(
        "This PIN is not the shipment's; print without it or use the PIN given at registration "
        f"({outcome.left} more wrong tries allowed this hour)."
    )
