"""What the courier's phone learns about a handover at the door (issue 19, 13.3).

- `check_sealed_pin`: a PIN the citizen typed, sealed on the phone to the server's seal key
  (shared/pins.py), checked online at once: `POST /api/v1/me/stops/{code}/pin-check`,
  each try counted by the citizen area's PIN attempt limit (citizen/pins.check_pin: the
  envelope family's count is shared with the tracking page).
- `pin_mismatches`: before a batch is applied, a delivered event whose identity is a sealed
  PIN is checked; a mismatch is flagged `pin_mismatch` on the event as it is written (shown
  in the console), and ingest reports every accepted event's flags back to the phone in its
  sync result.
"""

from __future__ import annotations

from litestar.exceptions import NotFoundException as NotFound

from shared import codes
from shared.api import PinCheckResult
from shared.events import CustodyEvent
from shared.lifecycle import EventType
from shared.pins import BadSeal, open_pin, well_formed
from shared.timeutil import utcnow

from ..auth.passwords import verify_pin_async
from ..auth.service import CurrentUser
from ..citizen import repository as citizen_repo
from ..citizen.pins import check_pin  # the citizen area's one PIN check and attempt counter
from ..db.engine import Database
from ..errors import TooManyRequests, Unprocessable
from ..keys import ServerKeys
from ..shipments import repository as shipments_repo


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


async def pin_mismatches(db: Database, keys: ServerKeys, events: list[CustodyEvent]) -> frozenset[str]:
    """The ids of deliveries whose identity is a sealed PIN that is not the shipment's PIN
    (or cannot be opened). Checked before the batch is applied, so the flag `pin_mismatch`
    is written with the event, once: a wrong PIN is a flag for the dispatcher, not a
    rejection (the phone checked it online when it could)."""
    bad: set[str] = set()
    for ev in events:
        sealed = sealed_pin(ev)
        if sealed is None:
            continue
        ship = await citizen_repo.pin_row(db, ev.shipment)
        if ship is None:
            continue  # unknown shipment: the batch rejects it anyway
        try:
            pin = open_pin(keys.seal, sealed, ev.shipment) if keys.seal is not None else None
        except BadSeal:
            pin = None
        if pin is None or not await verify_pin_async(ship.pin_hash, pin):
            bad.add(ev.id)
    return frozenset(bad)
