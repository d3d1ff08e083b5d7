"""What a citizen sees when scanning the envelope, and confirming receipt with the PIN."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import msgspec

from shared import codes, labels
from shared.i18n import t
from shared.lifecycle import EventType
from shared.timeutil import utcnow

from ..custody.service import append_server_event, lock_shipments
from ..db.engine import Database
from ..keys import ServerKeys
from . import repository
from .pins import check_pin

VN = ZoneInfo("Asia/Ho_Chi_Minh")


@dataclass
class Step:
    text: str
    when: str
    done: bool = True


@dataclass
class Journey:
    code: str
    kind: str
    state: str
    steps: list[Step]
    now: str
    holder: str
    due: str
    late: bool
    attempts: int
    masked_name: str
    name_role: str  # whose name that is: the sender of a submission, the recipient of a result
    confirmable_code: str | None  # the delivered result shipment a PIN can confirm
    confirmed: bool
    authentic: bool | None  # None: no signature given
    fresh_until: datetime | None = None  # when `late` would turn true (an open shipment past due)


def label_is_authentic(keys: ServerKeys, code: str, sig: str | None) -> bool | None:
    """None when no signature was given (a typed code), else whether a current or retired key signed it."""
    if sig is None:
        return None
    return _authentic(code, sig, tuple(keys.label_keys().usable()))  # never a revoked key


@lru_cache(maxsize=20_000)
def _authentic(code: str, sig: str, label_keys: tuple[str, ...]) -> bool:
    # a pure function of its arguments, and the same envelope is scanned again and again
    return labels.is_authentic(code, sig, list(label_keys))


def mask_name(name: str) -> str:
    """`Nguyễn Thị Bích` -> `Nguyễn T*** B***`: enough to recognise, not to identify."""
    words = name.split()
    if not words:
        return ""
    return " ".join([words[0], *(w[0] + "***" for w in words[1:])])


def _local(dt: datetime) -> str:
    return dt.astimezone(VN).strftime("%H:%M %d/%m/%Y")


def _step_text(kind: str, etype: str, body: str, lang: str) -> str:
    if etype == "registered":
        key = "step.result_registered" if kind == "result" else "step.registered"
        if kind != "result" and (msgspec.json.decode(body).get("data") or {}).get("channel") == "counter":
            key = "step.counter"  # handed in at a counter (issue 18)
    elif etype == "picked_up":
        key = "step.result_on_way" if kind == "result" else "step.picked_up"
    elif etype == "delivered":
        key = "step.delivered" if kind == "result" else "step.at_shop"
    else:
        key = f"step.{etype}"
    text = t(key, lang)
    if etype == "delivery_failed":
        reason = (msgspec.json.decode(body).get("data") or {}).get("reason")
        if reason:
            text = f"{text}: {t(f'reason.{reason}', lang)}"
    return text


async def journey(db: Database, keys: ServerKeys, code: str, sig: str | None, lang: str) -> Journey | None:
    joined = await repository.family_with_events(db, code)
    family = list({r.id: r for r in joined}.values())
    ship = next((r for r in family if r.code == code), None)
    if ship is None:
        return None
    if ship.kind == "result":
        legs = [r for r in family if r.code == ship.parent_code] + [ship]
    else:
        legs = [ship, *(r for r in family if r.parent_code == ship.code)]
    rows = [r for r in joined if r.shipment_id is not None]
    by_leg: dict[int, list[Any]] = {}
    for r in rows:
        by_leg.setdefault(r.shipment_id, []).append(r)
    steps: list[Step] = []
    for leg in legs:
        for r in by_leg.get(leg.id, []):
            steps.append(Step(_step_text(leg.kind, r.type, r.body, lang), _local(r.occurred_at)))
    current = legs[-1]
    result = next((leg for leg in reversed(legs) if leg.kind == "result"), None)
    citizen = (result.recipient if result is not None else legs[0].sender) or {}
    due_leg = result or legs[0]
    now = utcnow()
    late = current.state in ("registered", "in_custody") and due_leg.due_at < now
    confirmed = any(r.type == "confirmed" for r in by_leg.get(result.id, [])) if result is not None else False
    authentic = label_is_authentic(keys, code, sig)
    fresh_until = due_leg.due_at if current.state in ("registered", "in_custody") and not late else None
    holder_role = current.custodian_role or "sender"
    return Journey(
        code=code,
        kind=ship.kind,
        state=current.state,
        steps=steps,
        now=steps[-1].text if steps else "",
        holder=t(f"holder.{holder_role}", lang),
        due=due_leg.due_at.astimezone(VN).strftime("%d/%m/%Y"),
        late=late,
        attempts=sum(leg.attempts for leg in legs),
        masked_name=mask_name(citizen.get("name", "")),
        name_role="recipient" if result is not None else "sender",
        confirmable_code=result.code if result is not None and result.state == "delivered" else None,
        confirmed=confirmed,
        authentic=authentic,
        fresh_until=fresh_until,
    )


async def family_version(db: Database, code: str) -> tuple[tuple[Any, ...], ...]:
    """What changes whenever anything the journey page shows changes: each shipment of the
    family (the same rows `journey` reads) with its chain head and last update."""
    return await repository.family_version(db, code)


@dataclass
class ConfirmOutcome:
    status: int
    message: str
    ok: bool = False
    details: dict[str, Any] = field(default_factory=dict)
    retry_at: datetime | None = None  # a 429's time to try again


async def confirm(
    db: Database,
    keys: ServerKeys,
    code: str,
    pin: str,
    rating: int,
    comment: str | None,
    client: str,
    lang: str,
) -> ConfirmOutcome:
    now = utcnow()
    if not (len(pin) == 6 and pin.isdigit()):
        return ConfirmOutcome(422, t("page.bad_pin_format", lang))
    if not 1 <= rating <= 5:
        return ConfirmOutcome(422, t("page.bad_rating", lang))
    ship = await repository.pin_row(db, code)
    if ship is None:
        return ConfirmOutcome(404, t("page.not_found", lang, code=codes.group(code)))
    checked = await check_pin(db, ship, pin, client, now)
    if checked.result == "locked":
        assert checked.retry_at is not None
        return ConfirmOutcome(
            429,
            t("page.locked", lang, at=checked.retry_at.astimezone(VN).strftime("%H:%M")),
            retry_at=checked.retry_at,
        )
    if checked.result == "wrong":
        return ConfirmOutcome(403, t("page.wrong_pin", lang, left=checked.left))
    if ship.kind != "result" or ship.state != "delivered":
        return ConfirmOutcome(409, t("page.not_delivered", lang))
    async with db.write() as conn:
        if await repository.is_confirmed(conn, code):
            return ConfirmOutcome(409, t("page.already_confirmed", lang))
        locked = (await lock_shipments(conn, [code]))[code]
        data: dict[str, Any] = {"rating": rating}
        if comment:
            data["comment"] = comment
        await append_server_event(
            conn,
            keys.event,
            locked,
            event_type=EventType.CONFIRMED,
            role="citizen",
            actor="citizen",
            data=data,
            now=now,
            merkle_log=db.merkle_log,
        )
    db.changed("confirmed", [code])
    recipient = ship.recipient or {}
    return ConfirmOutcome(
        200, t("page.thanks", lang), ok=True, details={"name": recipient.get("name", ""), "rating": rating}
    )
