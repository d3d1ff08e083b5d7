from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.params import JSONBody, Parameter, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from ..auth.security import roles
from ..auth.service import CurrentUser
from ..deps import DB, Cfg, KeysDep
from ..errors import Conflict, NotFoundException, Unprocessable
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
        opt=roles("clerk", "dispatcher"),
        raises=[Conflict, Unprocessable],
    )
    async def create(
        self,
        data: JSONBody[ShipmentCreate],
        request: Request[CurrentUser, Any, Any],
        db: DB,
        keys: KeysDep,
        settings: Cfg,
    ) -> ShipmentCreated:
        return await service.create(db, keys, settings.base_url, request.user, data)

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
        opt=roles(*ALL_STAFF),
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
