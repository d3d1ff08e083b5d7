from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.params import JSONBody
from msgspec import Meta, Struct
from sqlalchemy import select

from shared import codes
from shared.labels import label_url

from ..auth.clients import client_ip
from ..auth.security import roles
from ..auth.service import CurrentUser
from ..citizen.pins import require_pin
from ..custody import attachments as attachment_store
from ..db.engine import Database
from ..db.models import custody_events, shipments, users
from ..deps import DB, Cfg, KeysDep
from ..errors import BadRequest, Conflict, NotFoundException, TooLarge
from ..keys import ServerKeys
from ..shipments.service import _can_see, _load_visible, parse_code
from .documents import Handover, delivery_pdf, handover_pdf, in_thread, receipt_pdf
from .render import LabelInfo, label_png, labels_pdf

MAX_SHEET = 1000
PRINTERS = ("clerk", "dispatcher", "admin")


class LabelSheet(Struct, forbid_unknown_fields=True):
    codes: Annotated[list[Annotated[str, Meta(max_length=20)]], Meta(min_length=1)]


async def _infos(
    db: Database, keys: ServerKeys, base_url: str, user: CurrentUser, wanted: list[str]
) -> list[LabelInfo]:
    async with db.read() as conn:
        rows = {
            r.code: r
            for r in (await conn.execute(select(shipments).where(shipments.c.code.in_(wanted)))).all()
        }
    missing = [c for c in wanted if c not in rows]
    if missing:
        raise NotFoundException(f"No shipment {', '.join(codes.group(c) for c in missing[:5])}.")
    out = []
    for c in wanted:
        r = rows[c]
        if not _can_see(user, r):
            raise NotFoundException(f"No shipment {codes.group(c)} in your unit.")
        recipient = r.recipient or {}
        commune = ", ".join(x for x in (recipient.get("commune"), recipient.get("province")) if x)
        out.append(
            LabelInfo(
                code=c,
                url=label_url(base_url, c, keys.label),
                kind=r.kind,
                recipient_name=recipient.get("name", ""),
                recipient_commune=commune,
                due_at=r.due_at,
            )
        )
    return out


class LabelController(Controller):
    path = "/api/v1"
    tags = ["labels"]

    @get("/shipments/{code:str}/label.png", operation_id="labelPng", opt=roles(*PRINTERS))
    async def png(
        self, code: str, request: Request[CurrentUser, Any, Any], db: DB, keys: KeysDep, settings: Cfg
    ) -> Response[bytes]:
        [info] = await _infos(db, keys, settings.base_url, request.user, [parse_code(code)])
        return Response(label_png(info), media_type="image/png")

    @get("/shipments/{code:str}/label.pdf", operation_id="labelPdf", opt=roles(*PRINTERS))
    async def pdf(
        self, code: str, request: Request[CurrentUser, Any, Any], db: DB, keys: KeysDep, settings: Cfg
    ) -> Response[bytes]:
        infos = await _infos(db, keys, settings.base_url, request.user, [parse_code(code)])
        return Response(
            await in_thread(labels_pdf, infos, sheet=False),
            media_type="application/pdf",
            headers={"Content-Disposition": f'inline; filename="nhan-{infos[0].code}.pdf"'},
        )

    @post("/labels.pdf", operation_id="labelSheet", opt=roles(*PRINTERS), status_code=200)
    async def sheet(
        self,
        data: JSONBody[LabelSheet],
        request: Request[CurrentUser, Any, Any],
        db: DB,
        keys: KeysDep,
        settings: Cfg,
    ) -> Response[bytes]:
        if len(data.codes) > MAX_SHEET:
            raise TooLarge(
                f"At most {MAX_SHEET} labels per sheet request; this one asks for {len(data.codes)}."
            )
        wanted = [parse_code(c) for c in data.codes]
        if len(set(wanted)) != len(wanted):
            raise BadRequest("A code appears twice in codes.")
        infos = await _infos(db, keys, settings.base_url, request.user, wanted)
        return Response(
            await in_thread(labels_pdf, infos, sheet=True),
            media_type="application/pdf",
            headers={"Content-Disposition": 'inline; filename="nhan-a4.pdf"'},
        )


class ReceiptRequest(Struct, forbid_unknown_fields=True):
    pin: Annotated[str, Meta(pattern=r"^[0-9]{6}$")] | None = None


class HandoverRequest(Struct, forbid_unknown_fields=True):
    codes: Annotated[list[Annotated[str, Meta(max_length=20)]], Meta(min_length=1, max_length=500)]


async def _events(db: Database, ship_id: int) -> list[Any]:
    async with db.read() as conn:
        return (
            await conn.execute(
                select(custody_events.c.body, custody_events.c.received_at, custody_events.c.type)
                .where(custody_events.c.shipment_id == ship_id)
                .order_by(custody_events.c.seq)
            )
        ).all()


async def _signature(db: Database, settings: Any, event: dict[str, Any]) -> bytes | None:
    digest = (event.get("attachments") or {}).get("signature")
    if not digest:
        return None
    try:
        content_type, body = await attachment_store.load(db, settings.attachments_dir, digest)
    except NotFoundException:
        return None
    return body if content_type == "image/png" else None


async def _user_names(db: Database, actors: set[str]) -> dict[str, str]:
    ids = [int(a.split(":")[1]) for a in actors if ":" in a]
    async with db.read() as conn:
        rows = (
            await conn.execute(
                select(users.c.id, users.c.role, users.c.full_name, users.c.username).where(
                    users.c.id.in_(ids)
                )
            )
        ).all()
    return {f"{r.role}:{r.id}": f"{r.full_name or r.username} ({r.username})" for r in rows}


async def _visible_ship(db: Database, user: CurrentUser, code_text: str) -> Any:
    code = parse_code(code_text)
    async with db.read() as conn:
        return await _load_visible(conn, user, code)


class DocumentController(Controller):
    path = "/api/v1"
    tags = ["labels"]

    @post(
        "/shipments/{code:str}/receipt.pdf",
        operation_id="receiptPdf",
        status_code=200,
        opt=roles("clerk", "dispatcher", "admin", "courier"),
    )
    async def receipt(
        self,
        code: str,
        data: JSONBody[ReceiptRequest],
        request: Request[CurrentUser, Any, Any],
        db: DB,
        keys: KeysDep,
        settings: Cfg,
    ) -> Response[bytes]:
        ship = await _visible_ship(db, request.user, code)
        if data.pin is not None:  # counted with the citizen page's tries (citizen/pins.py)
            await require_pin(db, ship, data.pin, client_ip(request, settings.trusted_proxies))
        rows = await _events(db, ship.id)
        pickup = next((msgspec.json.decode(r.body) for r in rows if r.type == "picked_up"), None)
        names = await _user_names(db, {pickup["actor"]} if pickup else set())
        fee = (pickup or {}).get("data", {}).get("fee_vnd") if pickup else None
        pdf = await in_thread(
            receipt_pdf,
            ship,
            label_url(settings.base_url, ship.code, keys.label),
            data.pin,
            fee if isinstance(fee, int) else None,
            datetime.fromisoformat(pickup["occurred_at"]) if pickup else None,
            names.get(pickup["actor"]) if pickup else None,
        )
        return Response(
            pdf,
            media_type="application/pdf",
            headers={"Content-Disposition": f'inline; filename="phieu-gui-{ship.code}.pdf"'},
        )

    @post(
        "/handovers.pdf",
        operation_id="handoverPdf",
        status_code=200,
        opt=roles("clerk", "dispatcher", "admin", "auditor"),
    )
    async def handover(
        self,
        data: JSONBody[HandoverRequest],
        request: Request[CurrentUser, Any, Any],
        db: DB,
        keys: KeysDep,
        settings: Cfg,
    ) -> Response[bytes]:
        items: list[Handover] = []
        for code_text in data.codes:
            ship = await _visible_ship(db, request.user, code_text)
            handovers = [
                msgspec.json.decode(r.body)
                for r in await _events(db, ship.id)
                if r.type in ("delivered", "transferred", "returned")
            ]
            if not handovers:
                raise Conflict(f"Shipment {codes.group(ship.code)} has not been handed over yet.")
            ev = handovers[-1]
            names = await _user_names(db, {ev["actor"]})
            cp = ev.get("counterparty") or {}
            items.append(
                Handover(
                    code=ship.code,
                    url=label_url(settings.base_url, ship.code, keys.label),
                    procedure=ship.procedure,
                    kind=ship.kind,
                    when=datetime.fromisoformat(ev["occurred_at"]),
                    giver=names.get(ev["actor"], ev["actor"]),
                    giver_key=ev["device"],
                    receiver=cp.get("name", ""),
                    receiver_role=cp.get("role", ""),
                    signature_png=await _signature(db, settings, ev),
                    place=(ship.recipient or {}).get("name", ""),
                )
            )
        unit = request.user.unit_code or ""
        return Response(
            await in_thread(handover_pdf, items, unit),
            media_type="application/pdf",
            headers={"Content-Disposition": 'inline; filename="bien-ban-giao-nhan.pdf"'},
        )

    @get(
        "/shipments/{code:str}/delivery.pdf",
        operation_id="deliveryPdf",
        opt=roles("clerk", "dispatcher", "admin", "auditor"),
    )
    async def delivery(
        self, code: str, request: Request[CurrentUser, Any, Any], db: DB, keys: KeysDep, settings: Cfg
    ) -> Response[bytes]:
        ship = await _visible_ship(db, request.user, code)
        rows = [r for r in await _events(db, ship.id) if r.type == "delivered"]
        if not rows:
            raise Conflict(f"Shipment {codes.group(ship.code)} has not been delivered yet.")
        ev = msgspec.json.decode(rows[-1].body)
        loc, to = ev.get("location"), ship.recipient or {}
        distance = None
        if loc and to.get("lat") is not None and to.get("lon") is not None:
            from geopy.distance import geodesic

            distance = geodesic((loc["lat"], loc["lon"]), (to["lat"], to["lon"])).meters
        pdf = await in_thread(
            delivery_pdf,
            ship,
            label_url(settings.base_url, ship.code, keys.label),
            ev,
            rows[-1].received_at,
            await _signature(db, settings, ev),
            distance,
        )
        return Response(
            pdf,
            media_type="application/pdf",
            headers={"Content-Disposition": f'inline; filename="bao-phat-{ship.code}.pdf"'},
        )
