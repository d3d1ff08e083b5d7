"""Handovers the server flagged (a wrong PIN, an ID card that does not match): listed on the
board, since a delivered shipment has left the board's open rows and would otherwise be seen
only by whoever opens its page."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from shared import codes
from shared.timeutil import utcnow

from ..auth.service import CurrentUser
from ..db.engine import Database
from ..db.models import custody_events, shipments
from ..shipments.repository import scope

SHOWN_FLAGS = ("pin_mismatch", "identity_mismatch")
WINDOW = timedelta(days=14)
LIMIT = 50


@dataclass(frozen=True, slots=True)
class FlaggedHandover:
    code: str
    grouped: str
    type: str
    flags: list[str]
    received_at: datetime


async def recent(db: Database, user: CurrentUser, now: datetime | None = None) -> list[FlaggedHandover]:
    """The newest flagged handovers of the last two weeks that `user` may see
    (ix_custody_events_flagged; the unit scope of shipments/repository.py)."""
    since = (now or utcnow()) - WINDOW
    async with db.read() as conn:
        rows = (
            await conn.execute(
                select(
                    shipments.c.code,
                    custody_events.c.type,
                    custody_events.c.flags,
                    custody_events.c.received_at,
                )
                .join(shipments, shipments.c.id == custody_events.c.shipment_id)
                .where(custody_events.c.flags.isnot(None), custody_events.c.received_at >= since)
                .where(scope(user))
                .order_by(custody_events.c.received_at.desc())
                .limit(LIMIT * 4)
            )
        ).all()
    out = []
    for r in rows:
        shown = [f for f in (r.flags or []) if f in SHOWN_FLAGS]
        if shown:
            out.append(FlaggedHandover(r.code, codes.group(r.code), r.type, shown, r.received_at))
    return out[:LIMIT]
