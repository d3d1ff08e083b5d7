"""What the courier's phone learns about a handover at the door (issue 19, 13.3).

- `check_sealed_pin`: a PIN the citizen typed, sealed on the phone to the server's seal key
  (shared/pins.py), checked online at once: `POST /api/v1/me/stops/{code}/pin-check`,
  each try counted by the citizen area's PIN attempt limit (citizen/pins.check_pin: the
  envelope family's count is shared with the tracking page).
- `after_sync`: once a batch is applied, a delivered event whose identity is a sealed PIN is
  checked (a mismatch is flagged `pin_mismatch` on the event, shown in the console), and every
  accepted event's flags are reported back to the phone in its sync result.
"""

from __future__ import annotations

from typing import Any

from litestar.exceptions import NotFoundException as NotFound
from sqlalchemy import select, update

from shared import codes
from shared.api import EventResult, PinCheckResult
from shared.events import CustodyEvent, EventType
from shared.pins import BadSeal, open_pin, well_formed
from shared.timeutil import utcnow

from ..auth.passwords import verify_pin_async
from ..auth.service import CurrentUser
from ..citizen.pins import check_pin  # the citizen area's one PIN check and attempt counter
from ..db.engine import Database
from ..db.models import custody_events, shipments
from ..errors import TooManyRequests, Unprocessable
from ..keys import ServerKeys
from ..shipments import repository as shipments_repo


async def _shipment(db: Database, code: str) -> Any:
    async with db.read() as conn:
        return (
            await conn.execute(
                select(
                    shipments.c.id,
                    shipments.c.code,
                    shipments.c.kind,
                    shipments.c.parent_code,
                    shipments.c.pin_hash,
                ).where(shipments.c.code == code)
            )
        ).first()


async def check_sealed_pin(
    db: Database, keys: ServerKeys, user: CurrentUser, code_text: str, sealed: str
) -> PinCheckResult:
    try:
        code = codes.normalize(code_text)
    except codes.InvalidCode as exc:
        raise NotFound(str(exc)) from None
    async with db.read() as conn:  # the one unit-scope rule: 404 unknown, 403 not this courier's
        ship = await shipments_repo.visible(conn, user, code)
    if keys.seal is None:
        raise Unprocessable("This server has no seal key.")
    try:
        pin = open_pin(keys.seal, sealed, code)
    except BadSeal as exc:
        raise Unprocessable(f"{exc}: seal the PIN to seal_public_key of GET /api/v1/keys.") from None
    if not well_formed(pin):
        raise Unprocessable("A PIN has 6 digits.")
    outcome = await check_pin(db, ship, pin, user.actor, utcnow())
    if outcome.result == "locked":
        wait = int((outcome.retry_at - utcnow()).total_seconds()) + 1 if outcome.retry_at else 3600
        raise TooManyRequests(
            "Too many wrong PINs for this shipment: identify the recipient by ID card or record a proxy.",
            headers={"Retry-After": str(max(1, wait))},
        )
    return PinCheckResult(ok=outcome.result == "right", attempts_left=outcome.left)


def sealed_pin(event: CustodyEvent) -> str | None:
    identity = event.data.get("identity") if event.type is EventType.DELIVERED else None
    if isinstance(identity, dict) and identity.get("method") == "pin":
        sealed = identity.get("pin_sealed")
        return sealed if isinstance(sealed, str) else None
    return None


async def after_sync(
    db: Database, keys: ServerKeys, events: list[CustodyEvent], results: list[EventResult]
) -> None:
    """Check sealed PINs of accepted deliveries, flag mismatches, and put each accepted
    event's flags in its result. Runs after the batch is committed, so it never changes
    what was accepted: a wrong PIN is a flag for the dispatcher, not a rejection."""
    accepted = [ev for ev, r in zip(events, results, strict=True) if r.status == "accepted"]
    if not accepted:
        return
    for ev in accepted:
        sealed = sealed_pin(ev)
        if sealed is None:
            continue
        ship = await _shipment(db, ev.shipment)
        try:
            pin = open_pin(keys.seal, sealed, ev.shipment) if keys.seal is not None else None
        except BadSeal:
            pin = None
        right = pin is not None and await verify_pin_async(ship.pin_hash, pin)
        if not right:
            async with db.write() as conn:
                old = await conn.scalar(select(custody_events.c.flags).where(custody_events.c.id == ev.id))
                flags = [*(old or []), "pin_mismatch"]
                await conn.execute(
                    update(custody_events).where(custody_events.c.id == ev.id).values(flags=flags)
                )
    async with db.read() as conn:
        rows = (
            await conn.execute(
                select(custody_events.c.id, custody_events.c.flags).where(
                    custody_events.c.id.in_([ev.id for ev in accepted])
                )
            )
        ).all()
    flags_of = {r.id: list(r.flags or []) for r in rows}
    for r in results:
        if r.status == "accepted" and flags_of.get(r.id):
            r.flags = flags_of[r.id]
