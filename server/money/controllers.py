"""Money (docs/API.md "Money"): remittances over the JSON API, and the console's money pages."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.exceptions import HTTPException
from litestar.params import Parameter, QueryParameter
from litestar.response import Redirect, Template
from msgspec import Meta, Struct

from shared import codes
from shared.i18n import t

from ..auth.security import roles
from ..auth.service import CurrentUser
from ..console import clerk
from ..console.pages import error_page, lang_of, page
from ..custody import attachments as attachment_store
from ..deps import DB, Cfg
from ..errors import BadRequest, Conflict, NotFoundException, TooManyRequests, Unprocessable
from ..labels.documents import in_thread
from . import service
from .documents import statement_pdf, statement_xlsx
from .service import CASHIERS, MAX_AMOUNT, MAX_ITEMS, MAX_REASON, VIEWERS

Req = Request[CurrentUser, Any, Any]
Short = Annotated[str | None, QueryParameter(max_length=40)]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class RemittanceCreate(Struct, forbid_unknown_fields=True):
    """A courier hands cash to the post office's cashier, who records it with the courier's signature."""

    courier_id: Annotated[int, Meta(ge=1, le=2**31 - 1)]
    codes: Annotated[list[Annotated[str, Meta(max_length=20)]], Meta(min_length=1, max_length=MAX_ITEMS)]
    amount_vnd: Annotated[int, Meta(ge=0, le=MAX_AMOUNT)]
    signature_png: Annotated[str, Meta(max_length=3_000_000, description="the PNG, base64")]
    signature_strokes: Annotated[str, Meta(max_length=1_000_000)] = ""
    difference_reason: Annotated[str, Meta(max_length=MAX_REASON)] = ""


class RemittanceOut(Struct):
    id: int
    hash: str  # SHA-256 of `record` as canonical JSON (RFC 8785), hex
    record: dict[str, Any]  # the canonical remittance record (docs/API.md "Money")
    flag: str | None  # short | over | None


def _out(v: service.RemittanceView) -> RemittanceOut:
    return RemittanceOut(id=v.id, hash=v.hash, record=v.record, flag=v.flag)


def _png(b64: str) -> bytes:
    try:
        return base64.b64decode(b64.removeprefix("data:image/png;base64,"), validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest("signature_png must be the PNG of the courier's signature, base64.") from None


class MoneyController(Controller):
    path = "/api/v1"
    tags = ["money"]

    @post(
        "/remittances",
        operation_id="createRemittance",
        opt=roles(*CASHIERS),
        status_code=201,
        raises=[NotFoundException, Conflict, Unprocessable, TooManyRequests],
    )
    async def create(self, request: Req, db: DB, settings: Cfg, data: RemittanceCreate) -> RemittanceOut:
        """Record a signed remittance: the fees of `codes`, collected by the courier at pickup and
        not remitted yet; `amount_vnd` must equal their sum unless `difference_reason` is given."""
        rid = await service.remit(
            db,
            settings.attachments_dir,
            request.user,
            data.courier_id,
            data.codes,
            data.amount_vnd,
            data.difference_reason,
            _png(data.signature_png),
            data.signature_strokes.encode(),
        )
        return _out(await service.remittance(db, request.user, rid))

    @get(
        "/remittances/{remittance_id:int}",
        operation_id="getRemittance",
        opt=roles(*VIEWERS),
        raises=[NotFoundException],
    )
    async def read(
        self, request: Req, db: DB, remittance_id: Annotated[int, Parameter(ge=1, le=2**31 - 1)]
    ) -> RemittanceOut:
        return _out(await service.remittance(db, request.user, remittance_id))


def _file(body: bytes, media_type: str, name: str) -> Response[bytes]:
    return Response(
        body, media_type=media_type, headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )


def _amount(text: str) -> int:
    cleaned = text.replace(".", "").replace(",", "").replace(" ", "").replace("₫", "").strip()
    if not cleaned.isdigit():
        raise BadRequest("amount_vnd: the cash counted is a whole number of đồng, e.g. 150.000.")
    return int(cleaned)


class MoneyConsoleController(Controller):
    path = "/console/money"
    tags = ["console"]
    include_in_schema = False
    exception_handlers = {HTTPException: error_page}

    @get(["/", ""], operation_id="consoleMoney", opt=roles(*VIEWERS))
    async def sheet(
        self,
        request: Req,
        db: DB,
        start: Annotated[str | None, QueryParameter(name="from", max_length=40)] = None,
        end: Annotated[str | None, QueryParameter(name="to", max_length=40)] = None,
    ) -> Template:
        lang = lang_of(request)
        sheet = await service.day_sheet(db, request.user, start, end)
        return page(
            request,
            "money.html",
            title=t("nav.money", lang),
            sheet=sheet,
            agencies=await service.agencies(db),
            month=sheet.end.strftime("%Y-%m"),
            can_remit=request.user.role in CASHIERS,
        )

    def _remit_page(self, request: Req, owes: service.CourierOwes, status: int = 200, **ctx: Any) -> Template:
        return page(
            request,
            "remit.html",
            status=status,
            title=t("money.remit_title", lang_of(request)),
            owes=owes,
            **{"error": None, "form": {}, **ctx},
        )

    @get("/remit", operation_id="consoleRemitPage", opt=roles(*CASHIERS))
    async def remit_page(self, request: Req, db: DB, courier: Short = None) -> Template:
        if not courier or not courier.isdigit():
            raise BadRequest(t("receive.pick_courier", lang_of(request)))
        return self._remit_page(request, await service.owed(db, request.user, int(courier)))

    @post("/remit", operation_id="consoleRemit", opt=roles(*CASHIERS), status_code=303)
    async def remit(self, request: Req, db: DB, settings: Cfg) -> Redirect | Template:
        form = await request.form()
        courier = str(form.get("courier_id", ""))
        if not courier.isdigit():
            raise BadRequest(t("receive.pick_courier", lang_of(request)))
        fields = {k: str(form.get(k, "")) for k in ("amount_vnd", "difference_reason")}
        try:
            rid = await service.remit(
                db,
                settings.attachments_dir,
                request.user,
                int(courier),
                [str(c) for c in form.getall("code", [])],
                _amount(fields["amount_vnd"]),
                fields["difference_reason"],
                clerk.decode_signature(str(form.get("signature_png", ""))),
                str(form.get("signature_strokes", "")).encode(),
            )
        except HTTPException as exc:
            if exc.status_code == 404:
                raise
            owes = await service.owed(db, request.user, int(courier))
            return self._remit_page(request, owes, status=exc.status_code, error=exc.detail, form=fields)
        return Redirect(f"/console/money/remittances/{rid}", status_code=303)

    @get("/remittances/{remittance_id:int}", operation_id="consoleRemittance", opt=roles(*VIEWERS))
    async def remittance(self, request: Req, db: DB, remittance_id: int) -> Template:
        v = await service.remittance(db, request.user, remittance_id)
        return page(
            request,
            "remittance.html",
            title=t("money.slip", lang_of(request)),
            r=v,
            group=codes.group,
        )

    @get(
        "/remittances/{remittance_id:int}/signature.png",
        operation_id="consoleRemittanceSignature",
        opt=roles(*VIEWERS),
    )
    async def signature(self, request: Req, db: DB, settings: Cfg, remittance_id: int) -> Response[bytes]:
        v = await service.remittance(db, request.user, remittance_id)
        content_type, body = await attachment_store.load(db, settings.attachments_dir, v.signature)
        return Response(
            body, media_type=content_type, headers=attachment_store.served_headers(v.signature, content_type)
        )

    @get("/statement", operation_id="consoleMoneyStatement", opt=roles(*VIEWERS))
    async def statement(
        self,
        request: Req,
        db: DB,
        agency: Short = None,
        month: Short = None,
        format_: Annotated[str | None, QueryParameter(name="format", max_length=10)] = None,
    ) -> Template | Response[bytes]:
        s = await service.statement(db, request.user, agency, month)
        name = f"bang-ke-thu-ho-{s.agency_code}-{s.month}"
        if format_ == "pdf":
            return _file(await in_thread(statement_pdf, s), "application/pdf", f"{name}.pdf")
        if format_ == "xlsx":
            return _file(await in_thread(statement_xlsx, s), XLSX, f"{name}.xlsx")
        if format_:
            raise BadRequest("format is pdf or xlsx (or none for the page).")
        return page(
            request,
            "statement.html",
            title=t("money.statement", lang_of(request)),
            s=s,
            group=codes.group,
        )
