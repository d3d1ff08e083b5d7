from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.params import JSONBody
from msgspec import Meta, Struct

from ..auth.clients import client_ip
from ..auth.security import roles
from ..auth.service import CurrentUser
from ..deps import DB, Cfg, KeysDep
from ..errors import Conflict, NotFoundException, TooLarge
from ..openapi import ShipmentCode
from . import service
from .service import Rendered

MAX_SHEET = 1000
PRINTERS = ("clerk", "dispatcher", "admin")
PDF, PNG = "application/pdf", "image/png"
Req = Request[CurrentUser, Any, Any]


class LabelSheet(Struct, forbid_unknown_fields=True):
    codes: Annotated[list[Annotated[str, Meta(max_length=20)]], Meta(min_length=1)]


class ReceiptRequest(Struct, forbid_unknown_fields=True):
    pin: Annotated[str, Meta(pattern=r"^[0-9]{6}$")] | None = None


class HandoverRequest(Struct, forbid_unknown_fields=True):
    codes: Annotated[list[Annotated[str, Meta(max_length=20)]], Meta(min_length=1, max_length=500)]


def file_response(f: Rendered) -> Response[bytes]:
    """A rendered label or document as the browser should show it."""
    if f.media_type == "image/png":
        return Response(f.body, media_type=f.media_type)
    return Response(
        f.body,
        media_type=f.media_type,
        headers={"Content-Disposition": f'inline; filename="{f.filename}"'},
    )


class LabelController(Controller):
    path = "/api/v1"
    tags = ["labels"]

    @get(
        "/shipments/{code:str}/label.png",
        operation_id="labelPng",
        opt=roles(*PRINTERS),
        media_type=PNG,
        raises=[NotFoundException],
    )
    async def png(
        self, code: ShipmentCode, request: Req, db: DB, keys: KeysDep, settings: Cfg
    ) -> Response[bytes]:
        return file_response(await service.label_image(db, keys, settings.base_url, request.user, code))

    @get(
        "/shipments/{code:str}/label.pdf",
        operation_id="labelPdf",
        opt=roles(*PRINTERS),
        media_type=PDF,
        raises=[NotFoundException],
    )
    async def pdf(
        self, code: ShipmentCode, request: Req, db: DB, keys: KeysDep, settings: Cfg
    ) -> Response[bytes]:
        return file_response(await service.label_pdf(db, keys, settings.base_url, request.user, code))

    @post(
        "/labels.pdf",
        operation_id="labelSheet",
        opt=roles(*PRINTERS),
        status_code=200,
        media_type=PDF,
        raises=[NotFoundException, TooLarge],
    )
    async def sheet(
        self, data: JSONBody[LabelSheet], request: Req, db: DB, keys: KeysDep, settings: Cfg
    ) -> Response[bytes]:
        sheet = await service.label_sheet(db, keys, settings.base_url, request.user, data.codes, MAX_SHEET)
        return file_response(sheet)


class DocumentController(Controller):
    path = "/api/v1"
    tags = ["labels"]

    @post(
        "/shipments/{code:str}/receipt.pdf",
        operation_id="receiptPdf",
        status_code=200,
        media_type=PDF,
        raises=[NotFoundException],
        opt=roles("clerk", "dispatcher", "admin", "courier"),
    )
    async def receipt(
        self,
        code: ShipmentCode,
        data: JSONBody[ReceiptRequest],
        request: Req,
        db: DB,
        keys: KeysDep,
        settings: Cfg,
    ) -> Response[bytes]:
        client = client_ip(request, settings.trusted_proxies)
        doc = await service.receipt(db, keys, settings.base_url, request.user, code, data.pin, client)
        return file_response(doc)

    @post(
        "/handovers.pdf",
        operation_id="handoverPdf",
        status_code=200,
        media_type=PDF,
        raises=[NotFoundException, Conflict],
        opt=roles("clerk", "dispatcher", "admin", "auditor"),
    )
    async def handover(
        self, data: JSONBody[HandoverRequest], request: Req, db: DB, keys: KeysDep, settings: Cfg
    ) -> Response[bytes]:
        doc = await service.handover_record(
            db, keys, settings.base_url, settings.attachments_dir, request.user, data.codes
        )
        return file_response(doc)

    @get(
        "/shipments/{code:str}/delivery.pdf",
        operation_id="deliveryPdf",
        opt=roles("clerk", "dispatcher", "admin", "auditor"),
        media_type=PDF,
        raises=[NotFoundException, Conflict],
    )
    async def delivery(
        self, code: ShipmentCode, request: Req, db: DB, keys: KeysDep, settings: Cfg
    ) -> Response[bytes]:
        doc = await service.delivery_notice(
            db, keys, settings.base_url, settings.attachments_dir, request.user, code
        )
        return file_response(doc)
