from __future__ import annotations

from typing import Any

from litestar import Controller, Request, post
from litestar.params import JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from ..deps import DB, Cfg, KeysDep
from ..errors import Conflict, NotAuthorizedException, NotFoundException, TooManyRequests
from . import service
from .clients import client_ip
from .schemas import (
    DeviceRequest,
    DeviceResponse,
    TokenRequest,
    TokenResponse,
    UnitCreate,
    UnitOut,
    UserCreate,
    UserOut,
)
from .security import PUBLIC, roles
from .service import CurrentUser


class AuthController(Controller):
    path = "/api/v1"
    tags = ["auth"]

    @post(
        "/auth/token",
        status_code=HTTP_200_OK,
        operation_id="issueToken",
        opt=PUBLIC,
        raises=[NotAuthorizedException, TooManyRequests],
    )
    async def token(
        self, data: JSONBody[TokenRequest], request: Request[Any, Any, Any], db: DB, settings: Cfg
    ) -> TokenResponse:
        token, user = await service.issue_token(
            db,
            data.username,
            data.password,
            settings.token_ttl_s,
            client=client_ip(request, settings.trusted_proxies),
            limits=service.LoginLimits.of(settings),
        )
        return TokenResponse(
            access_token=token,
            token_type="bearer",
            expires_in=settings.token_ttl_s,
            user=UserOut(
                id=user.id,
                username=user.username,
                role=user.role,
                unit=user.unit_code,
                full_name=user.full_name,
            ),
        )

    @post(
        "/devices",
        status_code=HTTP_201_CREATED,
        operation_id="enrollDevice",
        opt=roles("courier"),
        raises=[Conflict],
    )
    async def enroll(
        self,
        data: JSONBody[DeviceRequest],
        request: Request[CurrentUser, Any, Any],
        db: DB,
        keys: KeysDep,
    ) -> DeviceResponse:
        device_id = await service.enroll_device(db, keys, request.user, data.public_key, data.label)
        return DeviceResponse(
            device_id=device_id,
            label_public_key=keys.label.public_key_b64,
            event_public_key=keys.event.public_key_b64,
        )

    @post(
        "/users",
        status_code=HTTP_201_CREATED,
        operation_id="createUser",
        opt=roles("admin"),
        raises=[NotFoundException, Conflict],
    )
    async def create_user(self, data: JSONBody[UserCreate], db: DB) -> UserOut:
        user_id = await service.add_user(
            db, data.username, data.password, data.role, data.unit, data.full_name
        )
        return UserOut(
            id=user_id,
            username=data.username,
            role=data.role,
            unit=data.unit,
            full_name=data.full_name,
        )

    @post(
        "/units",
        status_code=HTTP_201_CREATED,
        operation_id="createUnit",
        opt=roles("admin"),
        raises=[Conflict],
    )
    async def create_unit(self, data: JSONBody[UnitCreate], db: DB) -> UnitOut:
        unit_id = await service.add_unit(db, data.code, data.name, data.kind)
        return UnitOut(id=unit_id, code=data.code, name=data.name, kind=data.kind)
