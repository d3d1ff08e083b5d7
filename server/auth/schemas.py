from __future__ import annotations

from typing import Annotated, Literal

from msgspec import Meta, Struct

RoleName = Literal["courier", "clerk", "dispatcher", "admin", "auditor"]
UnitKind = Literal["post_office", "one_stop_shop"]
Username = Annotated[str, Meta(pattern=r"^[a-z0-9._-]{2,64}$")]


class TokenRequest(Struct, forbid_unknown_fields=True):
    username: Annotated[str, Meta(min_length=1, max_length=64)]
    password: Annotated[str, Meta(min_length=1, max_length=256)]


class UserOut(Struct):
    id: int
    username: str
    role: str
    unit: str | None
    full_name: str = ""


class TokenResponse(Struct):
    access_token: str
    token_type: str
    expires_in: int
    user: UserOut


class DeviceRequest(Struct, forbid_unknown_fields=True):
    public_key: Annotated[str, Meta(pattern=r"^[A-Za-z0-9_-]{43}$")]
    label: Annotated[str, Meta(max_length=200)] = ""


class DeviceResponse(Struct):
    device_id: int
    label_public_key: str
    event_public_key: str


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
