"""The courier app's pages (docs/API.md "Digitised pages"): the photos of a dossier's pages
taken at the pickup, bound and signed by the server (the console's upload is in console/)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, post
from litestar.status_codes import HTTP_201_CREATED

from shared.api import PagesDigitised
from shared.pages import MAX_UPLOAD_BYTES, MiB

from ..auth.security import roles
from ..auth.service import CurrentUser
from ..deps import DB, Cfg, KeysDep
from ..errors import Conflict, NotFoundException, TooLarge, Unprocessable, UnsupportedMediaType
from ..openapi import ShipmentCode, multipart_files
from . import service


async def _multipart_only(request: Request[Any, Any, Any]) -> None:
    media_type = request.content_type[0]
    if media_type != "multipart/form-data":
        raise UnsupportedMediaType(
            f"Gửi các ảnh trang dạng multipart/form-data / Send the page images as multipart/form-data "
            f"(one part '{service.PART}' per page); this request says {media_type or 'nothing'}."
        )
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_UPLOAD_BYTES:
        raise TooLarge(
            f"Tối đa {MAX_UPLOAD_BYTES // MiB} MiB mỗi lần gửi / At most {MAX_UPLOAD_BYTES // MiB} MiB of "
            f"pages per request; this one declares {int(declared) // MiB} MiB. Take the pages at 1600×1200."
        )


class PagesController(Controller):
    path = "/api/v1"
    tags = ["custody"]

    @post(
        "/shipments/{code:str}/pages",
        operation_id="courierDigitise",
        opt=roles("courier"),
        before_request=_multipart_only,
        request_max_body_size=MAX_UPLOAD_BYTES,
        status_code=HTTP_201_CREATED,
        operation_class=multipart_files(service.PART, "the page images (JPEG or PNG), in order, at most 40"),
        raises=[
            NotFoundException,
            Conflict,
            TooLarge,
            Unprocessable,
            UnsupportedMediaType,
        ],
    )
    async def courier_digitise(
        self,
        code: ShipmentCode,
        request: Request[CurrentUser, Any, Any],
        db: DB,
        keys: KeysDep,
        settings: Cfg,
    ) -> PagesDigitised:
        """The page photos of a dossier this courier picked up and holds (multipart, one part
        `page` per page, in order, at most 40): each is checked (too dark, blurred, cut off: 422
        naming the page and its score), the server binds them into one PDF and records a
        server-signed `digitised` event (CUSTODY.md §4.1). The same pages sent again answer with
        the event already recorded (`repeated`)."""
        uploads = await service.uploads_of(await request.form())
        done = await service.digitise(
            db,
            keys,
            settings.attachments_dir,
            request.user,
            code,
            uploads,
            max_unreferenced=settings.max_unreferenced_bytes,
        )
        assert done.event is not None
        return PagesDigitised(
            code=done.code,
            head=done.head,
            event=done.event,
            pages=done.pages,
            ocr_note=done.ocr_note,
            repeated=done.repeated,
        )
