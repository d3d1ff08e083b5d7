"""The wire between the courier's phone and the server: every JSON body the two exchange,
as msgspec Structs, and the paths they are exchanged on.

The server's handlers return and accept these types (its OpenAPI document is generated
from them); the app's `ApiClient` decodes into the same types. Changing a field here
changes both sides at once, so they cannot drift apart.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Final, Literal

from msgspec import Meta, Struct

from .events import CustodyEvent

__all__ = [
    "ASSIGNMENTS",
    "ATTACHMENTS",
    "DEVICES",
    "EVENTS",
    "HANDOVERS",
    "KEYS",
    "TOKEN",
    "Assignment",
    "AssignmentList",
    "DeviceRequest",
    "DeviceResponse",
    "EventBatch",
    "EventBatchResult",
    "EventResult",
    "Keys",
    "LabelKeyOut",
    "PagesDigitised",
    "PendingHandover",
    "PendingHandovers",
    "PinCheckRequest",
    "PinCheckResult",
    "Stop",
    "TokenRequest",
    "TokenResponse",
    "UserOut",
    "attachment_path",
    "pages_path",
    "pin_check_path",
]

# Paths (the server mounts its controllers under /api/v1; these are the full paths) ---------
TOKEN: Final = "/api/v1/auth/token"
DEVICES: Final = "/api/v1/devices"
KEYS: Final = "/api/v1/keys"
ASSIGNMENTS: Final = "/api/v1/me/assignments"
HANDOVERS: Final = "/api/v1/me/handovers"
EVENTS: Final = "/api/v1/events"
ATTACHMENTS: Final = "/api/v1/attachments"


def attachment_path(sha256: str) -> str:
    """Where an attachment is uploaded and read: content-addressed by its SHA-256."""
    return f"{ATTACHMENTS}/{sha256}"


# Tokens and devices ---------------------------------------------------------------------------
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


class LabelKeyOut(Struct):
    """One label key (CUSTODY.md §2): `retired` still verifies what it signed while it was
    current; `revoked` verifies nothing."""

    kid: str
    public_key: str
    status: Literal["current", "retired", "revoked"]
    valid_from: str | None = None
    valid_until: str | None = None


class Keys(Struct):
    label_public_key: str
    event_public_key: str
    log_public_key: str
    retired: list[dict[str, Any]]
    # added after v1 first shipped; older servers omit them
    label_keys: list[LabelKeyOut] = []
    seal_public_key: str = ""  # X25519, base64url: the phone seals a typed PIN to it


# Today's assignments --------------------------------------------------------------------------
class Stop(Struct):
    kind: Literal["pickup", "delivery"]
    lat: float | None
    lon: float | None
    address: str
    commune: str
    province: str
    contact_name: str
    contact_phone: str | None
    # last 4 digits of the ID card on record for this stop's person (not a secret like the
    # PIN: the phone checks them at the door); None when none is on record
    id_last4: str | None = None
    contact_unit: str | None = None  # the unit's code when the stop is a unit (a one-stop shop)

    @property
    def point(self) -> tuple[float, float] | None:
        return (self.lat, self.lon) if self.lat is not None and self.lon is not None else None


class Assignment(Struct):
    code: str
    kind: str
    state: str
    head: str | None
    due_at: datetime
    overdue: bool
    attempts: int
    dossier_ref: str
    procedure: str
    fee_vnd: int
    components: list[Any]
    recipient_id_last4_known: bool
    stop: Stop
    next_events: list[str]
    label_sig: str
    has_pin: bool = False  # a PIN is on record (the phone never holds anything that reveals it)
    next_stop: Stop | None = None  # the delivery stop, while `stop` is still the pickup
    # "counter": the dossier was handed in at a counter (issue 18); it is picked up from that
    # unit's clerk, its components checked and its fee taken there already
    channel: str = "post"


class AssignmentList(Struct):
    items: list[Assignment]
    label_public_key: str
    event_public_key: str


# Handovers a clerk signed for on the console -------------------------------------------------
class PendingHandover(Struct):
    id: int
    codes: list[str]
    counterparty: dict[str, Any]
    signature: str  # sha256 of the clerk's signature PNG: put it in attachments.signature
    strokes: str | None
    created_at: datetime


class PendingHandovers(Struct):
    items: list[PendingHandover]


# Sync -------------------------------------------------------------------------------------------
class EventBatch(Struct, forbid_unknown_fields=True):
    events: list[CustodyEvent]


class EventResult(Struct, omit_defaults=True):
    id: str
    status: str  # accepted | duplicate | rejected
    reason: str | None = None
    head: str | None = None
    flags: list[str] = []  # what the dispatcher is shown about an accepted event (pin_mismatch, …)


# A dossier's pages photographed at the pickup, bound and signed by the server -------------------
def pages_path(code: str) -> str:
    """Where the courier app uploads a dossier's page photos (multipart, one `page` part each)."""
    return f"/api/v1/shipments/{code}/pages"


class PagesDigitised(Struct):
    code: str
    head: str  # the shipment's head now: the `digitised` event's hash (the next event's prev)
    event: CustodyEvent  # the server-signed `digitised` event (CUSTODY.md §4.1)
    pages: dict[str, Any]  # its data.pages
    ocr_note: str
    repeated: bool = False  # these pages were recorded before: this is that event


# A PIN typed at the door, checked online at once ----------------------------------------------
def pin_check_path(code: str) -> str:
    return f"/api/v1/me/stops/{code}/pin-check"


class PinCheckRequest(Struct, forbid_unknown_fields=True):
    sealed: Annotated[str, Meta(min_length=1, max_length=400)]  # SealedBox to seal_public_key


class PinCheckResult(Struct):
    ok: bool
    attempts_left: int | None = None


class EventBatchResult(Struct):
    results: list[EventResult]
