"""The counter's console pages (issue 18): receive a dossier from a citizen, print its receipt
(phiếu tiếp nhận), hand a result over to the citizen who collects it."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.exceptions import HTTPException
from litestar.params import QueryParameter
from litestar.response import Template

from shared.i18n import t

from ..auth.clients import client_ip
from ..auth.security import roles
from ..auth.service import CurrentUser
from ..console import catalog, clerk
from ..console.pages import error_page, lang_of, page
from ..console.service import all_units
from ..deps import DB, Cfg, KeysDep
from ..errors import BadRequest
from ..labels import service as labels
from ..labels.controllers import file_response
from ..shipments import repository as shipments_repo
from ..shipments import service as shipments
from . import service
from .service import COUNTER_STAFF

Req = Request[CurrentUser, Any, Any]
Q = Annotated[str | None, QueryParameter(max_length=100)]


def _form(raw: Any) -> dict[str, str]:
    return {k: str(v) for k, v in raw.items()}


def _signature(form: Any) -> tuple[bytes, bytes]:
    png_url = str(form.get("signature_png", ""))
    png = clerk.decode_signature(png_url) if png_url else b""
    return png, str(form.get("signature_strokes", "")).encode()


class CounterConsole(Controller):
    path = "/console/counter"
    tags = ["console"]
    include_in_schema = False
    exception_handlers = {HTTPException: error_page}

    async def _reception(
        self, request: Req, db: DB, dest: str, procedure: str | None, status: int = 200, **ctx: Any
    ) -> Template:
        """The reception form: step 1 picks the shop and the procedure, step 2 (a procedure
        picked) shows its checklist, fee, the citizen's fields and the signature box."""
        lang = lang_of(request)
        shops = [u for u in await all_units(db) if u.kind == "one_stop_shop"]
        user = request.user
        dest = dest or (user.unit_code if user.unit_kind == "one_stop_shop" else "") or ""
        procedures: list[Any] = []
        chosen = None
        if dest:
            from ..shop import service as shop

            try:
                procedures = (await shop.catalogue(db, dest)).procedures
            except HTTPException as exc:
                ctx.setdefault("error", exc.detail)
            chosen = next((p for p in procedures if p.code == procedure), None)
        ctx.setdefault("error", None)
        ctx.setdefault("form", {})
        return page(
            request,
            "counter.html",
            status=status,
            title=t("nav.counter", lang),
            shops=shops,
            dest=dest,
            procedures=procedures,
            procedure=procedure,
            chosen=chosen,
            other=procedure == "other",
            provinces=[p["name"] for p in catalog.provinces()],
            fields=catalog.FIELDS,
            communes_of=catalog.communes_of,
            **ctx,
        )

    @get("/", operation_id="consoleCounterPage", opt=roles(*COUNTER_STAFF))
    async def reception_page(self, request: Req, db: DB, dest: Q = None, procedure: Q = None) -> Template:
        return await self._reception(request, db, dest or "", procedure or None)

    @post("/", operation_id="consoleCounterReceive", opt=roles(*COUNTER_STAFF), status_code=200)
    async def receive(self, request: Req, db: DB, keys: KeysDep, settings: Cfg) -> Template:
        raw = await request.form()
        form = _form(raw)
        ticked = [str(x) for x in raw.getall("received", [])]
        procedure = form.get("procedure_code") or "other"
        try:
            png, strokes = _signature(raw)
            done = await service.receive(
                db,
                keys,
                settings.attachments_dir,
                settings.base_url,
                request.user,
                {**form, "procedure_code": form.get("procedure_code", "")},
                ticked,
                png,
                strokes,
            )
        except HTTPException as exc:
            return await self._reception(
                request,
                db,
                form.get("dest_unit", ""),
                procedure,
                status=exc.status_code,
                error=exc.detail,
                form=form,
                ticked=ticked,
            )
        lang = lang_of(request)
        return page(request, "counter_done.html", title=t("counter.done", lang), r=done)

    @post(
        "/{code:str}/receipt.pdf",
        operation_id="consoleCounterReceipt",
        opt=roles(*COUNTER_STAFF),
        status_code=200,
    )
    async def receipt(self, request: Req, db: DB, keys: KeysDep, settings: Cfg, code: str) -> Response[bytes]:
        """Phiếu tiếp nhận with the PIN (posted from the reception's answer, never in a URL)."""
        form = await request.form()
        pin = str(form.get("pin", "")).strip() or None
        if pin is not None and (len(pin) != 6 or not pin.isdigit()):
            raise BadRequest("Mã PIN gồm 6 chữ số. (The PIN has 6 digits.)")
        client = client_ip(request, settings.trusted_proxies)
        doc = await labels.counter_receipt(
            db, keys, settings.base_url, settings.attachments_dir, request.user, code, pin, client
        )
        return file_response(doc)

    # ---- a result collected at the counter ----------------------------------------------------

    async def _collect_page(self, request: Req, db: DB, code: str, status: int = 200, **ctx: Any) -> Template:
        lang = lang_of(request)
        ship = None
        if code:
            try:
                async with db.read() as conn:
                    ship = await shipments_repo.visible(conn, request.user, shipments.parse_code(code))
            except HTTPException as exc:
                ctx.setdefault("error", exc.detail)
        ctx.setdefault("error", None)
        ctx.setdefault("form", {})
        return page(
            request,
            "collect.html",
            status=status,
            title=t("counter.collect", lang),
            code=code,
            ship=ship,
            **ctx,
        )

    @get("/collect", operation_id="consoleCollectPage", opt=roles(*COUNTER_STAFF))
    async def collect_page(self, request: Req, db: DB, code: Q = None) -> Template:
        return await self._collect_page(request, db, code or "")

    @post("/collect", operation_id="consoleCollect", opt=roles(*COUNTER_STAFF), status_code=200)
    async def collect(self, request: Req, db: DB, keys: KeysDep, settings: Cfg) -> Template:
        raw = await request.form()
        form = _form(raw)
        code = form.get("code", "")
        try:
            png, strokes = _signature(raw)
            head, flags = await service.collect(
                db, keys, settings.attachments_dir, request.user, code, form, png, strokes
            )
        except HTTPException as exc:
            return await self._collect_page(
                request, db, code, status=exc.status_code, error=exc.detail, form=form
            )
        return await self._collect_page(request, db, code, collected=head, flags=flags)
