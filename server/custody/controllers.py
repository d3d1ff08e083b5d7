from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post, put
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Schema
from litestar.params import JSONBody, Parameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from shared.api import EventBatch as EventBatch
from shared.api import EventBatchResult as EventBatchResult
from shared.api import PinCheckRequest, PinCheckResult
from shared.events import HEX64, unreal_time
from shared.timeutil import utcnow

from ..auth.security import roles
from ..auth.service import CurrentUser
from ..deps import DB, Cfg, KeysDep, Signatures
from ..errors import (
    BadRequest,
    NotFoundException,
    TooLarge,
    TooManyRequests,
    Unprocessable,
    UnsupportedMediaType,
)
from ..openapi import BINARY, ShipmentCode, also_as
from ..strict import strict_json_body
from . import attachments, door, export, service

Sha256Path = Annotated[str, Parameter(pattern=HEX64, description="SHA-256 of the body, lowercase hex")]


async def _json_only(request: Request[Any, Any, Any]) -> None:
    """Only a JSON body is decoded strictly (a string is not taken for a number): refuse
    any other before it is read, then decode it as the app does every JSON body (this
    hook replaces the app's)."""
    media_type = request.content_type[0]
    if media_type != "application/json":
        raise UnsupportedMediaType(
            f"Send the batch as Content-Type: application/json; this request says {media_type or 'nothing'}."
        )
    await strict_json_body(request)


class CustodyController(Controller):
    path = "/api/v1"
    tags = ["custody"]

    @post(
        "/events",
        status_code=HTTP_200_OK,
        operation_id="syncEvents",
        opt=roles("courier"),
        before_request=_json_only,
        raises=[UnsupportedMediaType],
    )
    async def sync_events(
        self,
        data: JSONBody[EventBatch],
        request: Request[CurrentUser, Any, Any],
        db: DB,
        settings: Cfg,
        signatures: Signatures,
        keys: KeysDep,
    ) -> EventBatchResult:
        if len(data.events) > settings.max_batch:
            raise TooLarge(
                f"A batch holds at most {settings.max_batch} events; this one has "
                f"{len(data.events)}. Send them in smaller batches."
            )
        for i, event in enumerate(data.events):
            if bad := unreal_time(event):
                field, text = bad
                raise BadRequest(
                    f"Invalid request body at `events[{i}].{field}`: {text} is not a real UTC time "
                    "(a month from 01 to 12, a day that month has, 23:59:59.999 at the latest)."
                )
        wrong_pins = await door.pin_mismatches(db, keys, data.events)  # flagged as they are written
        return EventBatchResult(
            results=await service.ingest(db, request.user, data.events, utcnow(), signatures, wrong_pins)
        )

    @post(
        "/me/stops/{code:str}/pin-check",
        status_code=HTTP_200_OK,
        operation_id="checkStopPin",
        opt=roles("courier"),
        raises=[NotFoundException, Unprocessable, TooManyRequests],
    )
    async def pin_check(
        self,
        code: str,
        data: JSONBody[PinCheckRequest],
        request: Request[CurrentUser, Any, Any],
        db: DB,
        keys: KeysDep,
    ) -> PinCheckResult:
        """A PIN the citizen typed at the door, sealed to the server's seal key, checked at once."""
        return await door.check_sealed_pin(db, keys, request.user, code, data.sealed)

    @put(
        "/attachments/{sha256:str}",
        operation_id="putAttachment",
        opt=roles("courier", "clerk", "dispatcher", "admin"),
        raises=[TooLarge, Unprocessable, TooManyRequests],
        responses={201: ResponseSpec(dict[str, Any], description="stored (200: it was already there)")},
    )
    async def put_attachment(
        self, sha256: Sha256Path, request: Request[CurrentUser, Any, Any], db: DB, settings: Cfg
    ) -> Response[dict[str, Any]]:
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        limits = dict(settings.attachment_limits)
        declared = request.headers.get("content-length")
        if (
            declared
            and declared.isdigit()
            and content_type in limits
            and int(declared) > limits[content_type]
        ):
            raise TooLarge(
                f"{content_type} attachments are limited to {limits[content_type] // 1024} KiB; "
                f"this one declares {int(declared) // 1024} KiB."
            )
        body = await request.body()
        attachments.check_content(
            content_type,
            body,
            limits,
            max_pixels={"image/png": settings.max_signature_pixels, "image/jpeg": settings.max_photo_pixels},
            max_json_depth=settings.max_json_depth,
        )
        created = await attachments.store(
            db,
            settings.attachments_dir,
            sha256,
            content_type,
            body,
            request.user.id,
            max_unreferenced=settings.max_unreferenced_bytes,
        )
        return Response(
            {"sha256": sha256, "size": len(body), "created": created},
            status_code=HTTP_201_CREATED if created else HTTP_200_OK,
        )

    @get(
        "/attachments/{sha256:str}",
        operation_id="getAttachment",
        opt=roles("clerk", "dispatcher", "admin", "auditor"),
        media_type="image/png",
        operation_class=also_as({"image/jpeg": BINARY, "application/json": Schema()}),
        raises=[NotFoundException],
    )
    async def get_attachment(
        self, sha256: Sha256Path, request: Request[CurrentUser, Any, Any], db: DB, settings: Cfg
    ) -> Response[bytes]:
        content_type, body = await attachments.load_visible(
            db, settings.attachments_dir, request.user, sha256
        )
        return Response(
            body, media_type=content_type, headers=attachments.served_headers(sha256, content_type)
        )

    @get(
        "/shipments/{code:str}/custody",
        operation_id="exportCustody",
        opt=roles("clerk", "dispatcher", "admin", "auditor"),
        raises=[NotFoundException],
    )
    async def export_custody(
        self, code: ShipmentCode, request: Request[CurrentUser, Any, Any], db: DB, keys: KeysDep
    ) -> Response[dict[str, Any]]:
        body = await export.bundle(db, keys, request.user, code)
        return Response(
            body,
            headers={
                "Content-Disposition": f'attachment; filename="hoso-{body["shipment"]["code"]}-custody.json"'
            },
        )
