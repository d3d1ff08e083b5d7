from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from msgspec import Meta, Struct

from shared.api import Assignment as Assignment
from shared.api import AssignmentList as AssignmentList
from shared.api import Stop as Stop

Text200 = Annotated[str, Meta(max_length=200)]
Kind = Literal["submission", "result"]
ROW_ID_MAX = 2**31 - 1  # ids are INTEGER columns: a larger one names no row, and PostgreSQL refuses it


class Party(Struct, forbid_unknown_fields=True, omit_defaults=True):
    name: Annotated[str, Meta(min_length=1, max_length=200)]
    phone: Annotated[str, Meta(pattern=r"^\+?[0-9 .-]{6,20}$")] | None = None
    address: Annotated[str, Meta(max_length=300)] = ""
    commune: Text200 = ""
    province: Text200 = ""
    id_last4: Annotated[str, Meta(pattern=r"^[0-9]{4}$")] | None = None
    lat: Annotated[float, Meta(ge=-90, le=90)] | None = None
    lon: Annotated[float, Meta(ge=-180, le=180)] | None = None


class ShipmentCreate(Struct, forbid_unknown_fields=True):
    kind: Kind
    due_at: datetime
    dossier_ref: Annotated[str, Meta(max_length=100)] = ""
    procedure: Annotated[str, Meta(max_length=300)] = ""
    field: Text200 = ""
    sender: Party | None = None
    recipient: Party | None = None
    fee_vnd: Annotated[int, Meta(ge=0, le=10**12)] = 0
    components: Annotated[list[Annotated[str, Meta(max_length=200)]], Meta(max_length=50)] = []
    parent: Annotated[str, Meta(pattern=r"^[0-9 ]{13,16}$")] | None = None
    dest_unit: Annotated[str, Meta(max_length=40)] | None = None


class ShipmentCreated(Struct):
    code: str
    state: str
    label_url: str
    tracking_url: str
    pin: str | None
    head: str


class AssignRequest(Struct, forbid_unknown_fields=True):
    courier_id: Annotated[int, Meta(ge=1, le=ROW_ID_MAX)]


class Assigned(Struct, omit_defaults=True):
    """The answer to an assignment; `head` only when custody moved (a dispatcher's reassignment)."""

    code: str
    courier_id: int
    head: str | None = None


class Cancelled(Struct):
    code: str
    head: str


class CancelRequest(Struct, forbid_unknown_fields=True):
    reason: Annotated[str, Meta(min_length=3, max_length=500)]


class Custodian(Struct):
    role: str | None
    name: str | None
    user_id: int | None


class ShipmentSummary(Struct):
    code: str
    kind: str
    state: str
    dossier_ref: str
    procedure: str
    field: str
    recipient_name: str
    recipient_commune: str
    due_at: datetime
    overdue: bool
    assigned_courier_id: int | None
    custodian: Custodian
    attempts: int
    head: str | None
    created_at: datetime
    updated_at: datetime


class ShipmentPage(Struct):
    items: list[ShipmentSummary]
    next_cursor: str | None


class EventView(Struct):
    event: dict[str, Any]  # exactly as signed
    seq: int
    received_at: datetime
    missing_attachments: list[str]
    flags: list[str]


class RejectedView(Struct):
    id: str
    hash: str
    type: str
    actor: str
    reason: str
    received_at: datetime
    event: dict[str, Any]


class ShipmentDetail(Struct):
    code: str
    kind: str
    state: str
    head: str | None
    custodian: Custodian
    attempts: int
    due_at: datetime
    overdue: bool
    dossier_ref: str
    procedure: str
    field: str
    sender: dict[str, Any]
    recipient: dict[str, Any]
    fee_vnd: int
    components: list[Any]
    parent: str | None
    unit: str | None
    dest_unit: str | None
    assigned_courier_id: int | None
    tracking_url: str
    created_at: datetime
    events: list[EventView]
    rejected: list[RejectedView]
    channel: str = "post"  # "counter": handed in at a counter (issue 18)
