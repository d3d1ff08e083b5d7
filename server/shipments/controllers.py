from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.openapi import ResponseSpec
from litestar.params import JSONBody, Parameter, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from ..auth.security import roles
from ..auth.service import CurrentUser
from ..deps import DB, Cfg, KeysDep
from ..errors import Conflict, NotFoundException, Unprocessable
from ..intake import service as intake
from ..openapi import ShipmentCode
from . import service
from .schemas import (
    ROW_ID_MAX,
    Assigned,
    AssignmentList,
    AssignRequest,
    Cancelled,
    CancelRequest,
    ShipmentCreate,
    ShipmentCreated,
    ShipmentDetail,
    ShipmentPage,
)

ALL_STAFF = ("courier", "clerk", "dispatcher", "admin", "auditor")


class ShipmentController(Controller):
    path = "/api/v1"
    tags = ["shipments"]

    @post(
        "/shipments",
        status_code=HTTP_201_CREATED,
        operation_id="createShipment",
        opt=roles("clerk", "dispatcher", api_key=True),
        raises=[Conflict, Unprocessable],
        responses={
            200: ResponseSpec(
                ShipmentCreated,
                description="With an API key: the same request for this dossier code again; "
                "the shipment it registered the first time (docs/API.md, Intake)",
            )
        },
    )
    async def create(
        self,
        data: JSONBody[ShipmentCreate],
        request: Request[CurrentUser, Any, Any],
        db: DB,
        keys: KeysDep,
        settings: Cfg,
    ) -> Response[ShipmentCreated]:
        if request.user.api_key_id is not None:  # a unit's software: idempotent by dossier code
            done = await intake.register(db, keys, settings.base_url, request.user, data)
            return Response(done.created, status_code=HTTP_201_CREATED if done.new else HTTP_200_OK)
        created = await service.create(db, keys, settings.base_url, request.user, data)
        return Response(created, status_code=HTTP_201_CREATED)

    @get(
        "/shipments",
        operation_id="listShipments",
        opt=roles("clerk", "dispatcher", "admin", "auditor"),
    )
    async def list_(
        self,
        request: Request[CurrentUser, Any, Any],
        db: DB,
        state_filter: Annotated[str | None, QueryParameter(name="state")] = None,
        courier: Annotated[int | None, Parameter(ge=1, le=ROW_ID_MAX)] = None,
        unit: str | None = None,
        field: str | None = None,
        overdue: bool | None = None,
        q: Annotated[str | None, Parameter(max_length=100)] = None,
        cursor: str | None = None,
        limit: Annotated[int, Parameter(ge=1, le=200)] = service.PAGE_SIZE,
    ) -> ShipmentPage:
        return await service.search(
            db,
            request.user,
            state=state_filter,
            courier=courier,
            unit=unit,
            field=field,
            overdue=overdue,
            q=q,
            cursor=cursor,
            limit=limit,
        )

    @get(
        "/shipments/{code:str}",
        operation_id="getShipment",
        opt=roles(*ALL_STAFF, api_key=True),
        raises=[NotFoundException],
    )
    async def get_one(
        self,
        code: ShipmentCode,
        request: Request[CurrentUser, Any, Any],
        db: DB,
        keys: KeysDep,
        settings: Cfg,
    ) -> ShipmentDetail:
        return await service.detail(db, keys, settings.base_url, request.user, code)

    @post(
        "/shipments/{code:str}/assign",
        status_code=HTTP_200_OK,
        operation_id="assignShipment",
        opt=roles("dispatcher"),
        raises=[NotFoundException, Conflict, Unprocessable],
    )
    async def assign(
        self,
        code: ShipmentCode,
        data: JSONBody[AssignRequest],
        request: Request[CurrentUser, Any, Any],
        db: DB,
        keys: KeysDep,
    ) -> Assigned:
        return await service.assign(db, keys, request.user, code, data.courier_id)

    @post(
        "/shipments/{code:str}/cancel",
        status_code=HTTP_200_OK,
        operation_id="cancelShipment",
        opt=roles("clerk", "dispatcher"),
        raises=[NotFoundException, Conflict],
    )
    async def cancel(
        self,
        code: ShipmentCode,
        data: JSONBody[CancelRequest],
        request: Request[CurrentUser, Any, Any],
        db: DB,
        keys: KeysDep,
    ) -> Cancelled:
        return await service.cancel(db, keys, request.user, code, data.reason)

    @get("/me/assignments", operation_id="myAssignments", opt=roles("courier"))
    async def my_assignments(
        self, request: Request[CurrentUser, Any, Any], db: DB, keys: KeysDep
    ) -> AssignmentList:
        items = await service.assignments(db, keys, request.user)
        return AssignmentList(
            items=items,
            label_public_key=keys.label.public_key_b64,
            event_public_key=keys.event.public_key_b64,
        )
