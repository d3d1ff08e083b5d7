from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.params import JSONBody
from msgspec import Meta, Struct
from sqlalchemy import select

from shared import codes
from shared.labels import label_url

from ..auth.security import roles
from ..auth.service import CurrentUser
from ..db.engine import Database
from ..db.models import shipments
from ..deps import DB, Cfg, KeysDep
from ..errors import BadRequest, NotFoundException, TooLarge
from ..keys import ServerKeys
from ..shipments.service import _can_see, parse_code
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
            labels_pdf(infos, sheet=False),
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
            labels_pdf(infos, sheet=True),
            media_type="application/pdf",
            headers={"Content-Disposition": 'inline; filename="nhan-a4.pdf"'},
        )
