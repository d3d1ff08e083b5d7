from __future__ import annotations

from typing import Annotated, Literal

from msgspec import Meta, Struct

from shared.api import DeviceRequest as DeviceRequest
from shared.api import DeviceResponse as DeviceResponse
from shared.api import TokenRequest as TokenRequest
from shared.api import TokenResponse as TokenResponse
from shared.api import UserOut as UserOut

RoleName = Literal["courier", "clerk", "dispatcher", "admin", "auditor"]
UnitKind = Literal["post_office", "one_stop_shop"]
Username = Annotated[str, Meta(pattern=r"^[a-z0-9._-]{2,64}$")]


class UserCreate(Struct, forbid_unknown_fields=True):
    username: Username
    password: Annotated[str, Meta(min_length=8, max_length=256)]
    role: RoleName
    unit: Annotated[str, Meta(max_length=40)] | None = None
    full_name: Annotated[str, Meta(max_length=200)] = ""


class UnitCreate(Struct, forbid_unknown_fields=True):
    code: Annotated[str, Meta(pattern=r"^[A-Za-z0-9._-]{2,40}$")]
    name: Annotated[str, Meta(min_length=1, max_length=200)]
    kind: UnitKind


class UnitOut(Struct):
    id: int
    code: str
    name: str
    kind: str
