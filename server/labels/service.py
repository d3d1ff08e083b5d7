"""Labels and paper documents of shipments the user may see: what goes on them, then render."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from msgspec import Struct

from shared import codes
from shared.events import CustodyEvent
from shared.geo import distance_m
from shared.labels import label_url

from ..auth.service import CurrentUser
from ..citizen.pins import require_pin
from ..custody import attachments as attachment_store
from ..db.engine import Database
from ..errors import BadRequest, Conflict, NotFoundException, TooLarge
from ..keys import ServerKeys
from ..shipments import repository
from ..shipments.service import parse_code
from .documents import Handover, counter_receipt_pdf, delivery_pdf, handover_pdf, in_thread, receipt_pdf
from .render import LabelInfo, label_png, labels_pdf

HANDED_OVER = ("delivered", "transferred", "returned")


class Rendered(Struct, frozen=True):
    """A file to send back: its bytes, type and the name the browser offers."""

    body: bytes
    media_type: str
    filename: str


def _pdf(body: bytes, filename: str) -> Rendered:
    return Rendered(body=body, media_type="application/pdf", filename=filename)


async def label_infos(
    db: Database, keys: ServerKeys, base_url: str, user: CurrentUser, wanted: list[str]
) -> list[LabelInfo]:
    async with db.read() as conn:
        rows = await repository.visible_many(conn, user, wanted)
    out = []
    for r in rows:
        recipient = r.recipient or {}
        commune = ", ".join(x for x in (recipient.get("commune"), recipient.get("province")) if x)
        out.append(
            LabelInfo(
                code=r.code,
                url=label_url(base_url, r.code, keys.label),
                kind=r.kind,
                recipient_name=recipient.get("name", ""),
                recipient_commune=commune,
                due_at=r.due_at,
            )
        )
    return out


async def label_image(
    db: Database, keys: ServerKeys, base_url: str, user: CurrentUser, code: str
) -> Rendered:
    [info] = await label_infos(db, keys, base_url, user, [parse_code(code)])
    return Rendered(
        body=await in_thread(label_png, info), media_type="image/png", filename=f"nhan-{info.code}.png"
    )


async def label_pdf(db: Database, keys: ServerKeys, base_url: str, user: CurrentUser, code: str) -> Rendered:
    [info] = await label_infos(db, keys, base_url, user, [parse_code(code)])
    return _pdf(await in_thread(labels_pdf, [info], sheet=False), f"nhan-{info.code}.pdf")


async def label_sheet(
    db: Database, keys: ServerKeys, base_url: str, user: CurrentUser, texts: list[str], limit: int
) -> Rendered:
    """An A4 sheet of labels; `limit` is the most one request may ask for."""
    if len(texts) > limit:
        raise TooLarge(f"At most {limit} labels per sheet request; this one asks for {len(texts)}.")
    wanted = [parse_code(c) for c in texts]
    if len(set(wanted)) != len(wanted):
        raise BadRequest("A code appears twice in codes.")
    infos = await label_infos(db, keys, base_url, user, wanted)
    return _pdf(await in_thread(labels_pdf, infos, sheet=True), "nhan-a4.pdf")


async def _signature(db: Database, root: Path, event: CustodyEvent) -> bytes | None:
    digest = event.attachments.signature
    if not digest:
        return None
    try:
        content_type, body = await attachment_store.load(db, root, digest)
    except NotFoundException:
        return None
    return body if content_type == "image/png" else None


async def receipt(
    db: Database,
    keys: ServerKeys,
    base_url: str,
    user: CurrentUser,
    code: str,
    pin: str | None,
    client: str,
) -> Rendered:
    """Phiếu gửi: the citizen's receipt, with the fee actually collected at pickup. A PIN to
    print on it is checked against the same count as the citizen page's tries."""
    async with db.read() as conn:
        ship = await repository.visible(conn, user, parse_code(code))
    if pin is not None:
        await require_pin(db, ship, pin, client)
    async with db.read() as conn:
        pickups = await repository.events_of(conn, ship.id, types=["picked_up"])
        pickup = pickups[0].event if pickups else None
        names = await repository.user_names(conn, [pickup.actor] if pickup else [])
    fee = pickup.data.get("fee_vnd") if pickup else None
    name = names.get(pickup.actor) if pickup else None
    pdf = await in_thread(
        receipt_pdf,
        ship,
        label_url(base_url, ship.code, keys.label),
        pin,
        fee if isinstance(fee, int) else None,
        datetime.fromisoformat(pickup.occurred_at) if pickup else None,
        name.with_username if name else None,
    )
    return _pdf(pdf, f"phieu-gui-{ship.code}.pdf")


async def counter_receipt(
    db: Database,
    keys: ServerKeys,
    base_url: str,
    root: Path,
    user: CurrentUser,
    code: str,
    pin: str | None,
    client: str,
) -> Rendered:
    """Phiếu tiếp nhận: the receipt of a dossier handed in at a counter (issue 18). The PIN is
    printed only when the one given matches, counted as the citizen page's tries are."""
    async with db.read() as conn:
        ship = await repository.visible(conn, user, parse_code(code))
        first = await repository.events_of(conn, ship.id, types=["registered"])
    event = first[0].event if first else None
    if event is None or event.data.get("channel") != "counter":
        raise Conflict(
            f"Bưu gửi {codes.group(ship.code)} không được tiếp nhận tại quầy; in phiếu gửi thay vào đó. "
            f"(Shipment {codes.group(ship.code)} was not received at a counter; print its receipt instead.)"
        )
    if pin is not None:
        await require_pin(db, ship, pin, client)
    async with db.read() as conn:
        names = await repository.user_names(conn, [event.actor])
        unit = await repository.unit_name(conn, ship.unit_id) if ship.unit_id is not None else ""
    name = names.get(event.actor)
    pdf = await in_thread(
        counter_receipt_pdf,
        ship,
        label_url(base_url, ship.code, keys.label),
        pin,
        event,
        name.with_username if name else event.actor,
        unit,
        await _signature(db, root, event),
    )
    return _pdf(pdf, f"phieu-tiep-nhan-{ship.code}.pdf")


async def handover_record(
    db: Database, keys: ServerKeys, base_url: str, root: Path, user: CurrentUser, texts: list[str]
) -> Rendered:
    """Biên bản giao nhận of the last handover of each shipment."""
    items: list[Handover] = []
    for text in texts:
        async with db.read() as conn:
            ship = await repository.visible(conn, user, parse_code(text))
            handovers = await repository.events_of(conn, ship.id, types=HANDED_OVER)
            if not handovers:
                raise Conflict(f"Shipment {codes.group(ship.code)} has not been handed over yet.")
            ev = handovers[-1].event
            names = await repository.user_names(conn, [ev.actor])
        cp = ev.counterparty
        giver = names.get(ev.actor)
        items.append(
            Handover(
                code=ship.code,
                url=label_url(base_url, ship.code, keys.label),
                procedure=ship.procedure,
                kind=ship.kind,
                when=datetime.fromisoformat(ev.occurred_at),
                giver=giver.with_username if giver else ev.actor,
                giver_key=ev.device,
                receiver=cp.name if cp else "",
                receiver_role=cp.role if cp else "",
                signature_png=await _signature(db, root, ev),
                place=_place(ship, cp.role if cp else ""),
                receiver_unit=await _receiver_unit(db, ship, cp.role if cp else ""),
            )
        )
    return _pdf(await in_thread(handover_pdf, items, user.unit_code or ""), "bien-ban-giao-nhan.pdf")


PRIVATE_RECEIVERS = ("citizen", "proxy", "business")


def _place(ship: Any, receiver_role: str) -> str:
    """Where the handover happened: the citizen's address for a delivery to a person, else
    the receiving agency (the recipient's name is a place only when it is an agency)."""
    to = ship.recipient or {}
    if receiver_role in PRIVATE_RECEIVERS:
        address = ", ".join(x for x in (to.get("address"), to.get("commune"), to.get("province")) if x)
        return f"địa chỉ người nhận: {address}" if address else "nơi ở của người nhận"
    return str(to.get("name", ""))


async def _receiver_unit(db: Database, ship: Any, receiver_role: str) -> str:
    """The unit a receiving clerk or hub works for: the shipment's destination (or, for an
    envelope coming back, the unit that registered it); none for a citizen."""
    if receiver_role in PRIVATE_RECEIVERS or not receiver_role:
        return ""
    unit_id = ship.dest_unit_id if ship.state != "returned" else ship.unit_id
    if unit_id is None:
        return ""
    async with db.read() as conn:
        return await repository.unit_name(conn, unit_id)


async def delivery_notice(
    db: Database, keys: ServerKeys, base_url: str, root: Path, user: CurrentUser, code: str
) -> Rendered:
    """Phiếu báo phát: the last delivery, and how far from the address it was recorded."""
    async with db.read() as conn:
        ship = await repository.visible(conn, user, parse_code(code))
        delivered = await repository.events_of(conn, ship.id, types=["delivered"])
    if not delivered:
        raise Conflict(f"Shipment {codes.group(ship.code)} has not been delivered yet.")
    last = delivered[-1]
    loc, to = last.event.location, ship.recipient or {}
    distance = None
    if loc is not None and to.get("lat") is not None and to.get("lon") is not None:
        distance = distance_m((loc.lat, loc.lon), (to["lat"], to["lon"]))
    pdf = await in_thread(
        delivery_pdf,
        ship,
        label_url(base_url, ship.code, keys.label),
        last.event,
        last.received_at,
        await _signature(db, root, last.event),
        distance,
    )
    return _pdf(pdf, f"bao-phat-{ship.code}.pdf")
