"""The console's intake pages: batch registration from a CSV/XLSX file (with its template),
and the citizen's receipt with the PIN right after registering, or reprinted without it."""

from __future__ import annotations

import re
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.exceptions import HTTPException
from litestar.response import Template

from shared.i18n import t

from ..auth.clients import client_ip
from ..auth.security import roles
from ..auth.service import CurrentUser
from ..console.pages import error_page, lang_of, page
from ..deps import DB, Cfg, KeysDep
from ..errors import BadRequest, TooLarge
from ..labels import service as labels
from ..labels.controllers import file_response
from . import batch
from .service import visible

Req = Request[CurrentUser, Any, Any]
PRINTERS = ("clerk", "dispatcher", "admin")
IMPORTERS = ("clerk", "dispatcher")  # shipments are registered as the importer's unit
MAX_FILE = 8 * 1024 * 1024
_PIN = re.compile(r"^[0-9]{6}$")


class IntakeConsole(Controller):
    path = "/console"
    tags = ["console"]
    include_in_schema = False
    exception_handlers = {HTTPException: error_page}

    # ---- the citizen's receipt --------------------------------------------------------------

    @post(
        "/shipments/{code:str}/receipt.pdf",
        operation_id="consoleReceiptWithPin",
        opt=roles(*PRINTERS),
        status_code=200,
    )
    async def receipt_with_pin(
        self, request: Req, db: DB, keys: KeysDep, settings: Cfg, code: str
    ) -> Response[bytes]:
        """The receipt with the PIN, from the page shown right after registering (the PIN is in
        that page's form only: the server keeps its argon2 hash, checked here like any try)."""
        pin = str((await request.form()).get("pin", "")).strip()
        await visible(db, request.user, code)  # 404 / 403 before anything is said about the PIN
        if not _PIN.match(pin):
            raise BadRequest(
                "Mã PIN là 6 chữ số, chỉ có ngay sau khi đăng ký; in lại phiếu thì không có mã PIN. "
                "(The PIN is 6 digits, known only right after registering; a reprint has none.)"
            )
        client = client_ip(request, settings.trusted_proxies)
        doc = await labels.receipt(db, keys, settings.base_url, request.user, code, pin, client)
        return file_response(doc)

    @get("/shipments/{code:str}/receipt.pdf", operation_id="consoleReceiptReprint", opt=roles(*PRINTERS))
    async def receipt_reprint(
        self, request: Req, db: DB, keys: KeysDep, settings: Cfg, code: str
    ) -> Response[bytes]:
        client = client_ip(request, settings.trusted_proxies)
        doc = await labels.receipt(db, keys, settings.base_url, request.user, code, None, client)
        return file_response(doc)

    # ---- batch intake from a file -----------------------------------------------------------

    def _page(self, request: Req, status: int = 200, **ctx: Any) -> Template:
        ctx.setdefault("result", None)
        ctx.setdefault("error", None)
        ctx.setdefault("error_at", None)
        return page(
            request,
            "intake.html",
            status=status,
            title=t("intake.title", lang_of(request)),
            columns=batch.COLUMNS,
            **ctx,
        )

    @get("/intake", operation_id="consoleIntakePage", opt=roles(*IMPORTERS))
    async def intake_page(self, request: Req) -> Template:
        return self._page(request)

    @get(
        ["/intake/template.xlsx", "/intake/template.csv"],
        operation_id="consoleIntakeTemplate",
        opt=roles(*IMPORTERS),
    )
    async def intake_template(self, request: Req) -> Response[bytes]:
        body, media_type, name = batch.template(request.url.path.rsplit(".", 1)[1])
        return Response(
            body, media_type=media_type, headers={"Content-Disposition": f'attachment; filename="{name}"'}
        )

    @post("/intake", operation_id="consoleIntake", opt=roles(*IMPORTERS), status_code=200)
    async def intake(self, request: Req, db: DB, keys: KeysDep, settings: Cfg) -> Template:
        upload = (await request.form()).get("file")
        try:
            if not isinstance(upload, UploadFile):
                raise BadRequest("Chọn một tệp CSV hoặc XLSX. (Choose a CSV or XLSX file.)")
            body = await upload.read()
            if len(body) > MAX_FILE:
                raise TooLarge(
                    f"Tệp lớn hơn {MAX_FILE // 2**20} MiB. (The file is over {MAX_FILE // 2**20} MiB.)"
                )
            result = await batch.import_file(db, keys, settings.base_url, request.user, body)
        except HTTPException as exc:
            return self._page(request, status=exc.status_code, error=exc.detail, error_at=exc.extra or None)
        return self._page(request, result=result, filename=upload.filename or "")
