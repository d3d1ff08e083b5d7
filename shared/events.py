"""The custody event (CUSTODY.md §3): wire format, canonical hash, signatures.

`hash` = SHA-256 of the RFC 8785 canonical JSON of the event without `hash` and
`sig`; `sig` = Ed25519 over the 32 raw hash bytes, base64url.
Optional nested fields use UNSET so that what the device omitted stays omitted
when the server re-canonicalizes: an explicit null and a missing key hash differently.
"""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

from .crypto import BadSignature, SigningKey, verify
from .jcs import NotPlain, canonicalize, encode_sorted, prepare
from .lifecycle import EventType
from .timeutil import WIRE_PATTERN, is_real_wire_time

HEX64 = r"^[0-9a-f]{64}$"
Sha256Hex = Annotated[str, Meta(pattern=HEX64, description="SHA-256, lowercase hex")]
B64Url = Annotated[str, Meta(pattern=r"^[A-Za-z0-9_-]+$", max_length=200)]
WireTime = Annotated[str, Meta(pattern=WIRE_PATTERN, description="UTC, ms: 2026-11-22T03:04:05.123Z")]
ShipmentCode = Annotated[str, Meta(pattern=r"^[0-9]{13}$")]
EventId = Annotated[str, Meta(pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")]
Actor = Annotated[str, Meta(pattern=r"^(citizen|(courier|clerk|dispatcher|admin|auditor):[0-9]+)$")]
ShortText = Annotated[str, Meta(max_length=500)]

CounterpartyRole = Literal["citizen", "clerk", "courier", "hub", "proxy", "business"]


class Counterparty(Struct, forbid_unknown_fields=True):
    name: Annotated[str, Meta(min_length=1, max_length=200)]
    role: CounterpartyRole
    id_last4: Annotated[str, Meta(pattern=r"^[0-9]{4}$")] | UnsetType | None = UNSET
    user_id: int | UnsetType = UNSET  # a receiving courier's account, for `transferred`
    unit: Annotated[str, Meta(max_length=40)] | UnsetType = UNSET  # a receiving unit's code


class Location(Struct, forbid_unknown_fields=True):
    lat: Annotated[float, Meta(ge=-90, le=90)]
    lon: Annotated[float, Meta(ge=-180, le=180)]
    accuracy_m: Annotated[float, Meta(ge=0)] | None
    fix_at: WireTime


class Attachments(Struct, forbid_unknown_fields=True):
    signature: Sha256Hex | None
    photos: Annotated[list[Sha256Hex], Meta(max_length=10)]


class CustodyEvent(Struct, forbid_unknown_fields=True, kw_only=True):
    v: Literal[1]
    id: EventId
    shipment: ShipmentCode
    type: EventType
    occurred_at: WireTime
    actor: Actor
    device: B64Url
    counterparty: Counterparty | None
    location: Location | None
    attachments: Attachments
    data: dict[str, Any]
    prev: Sha256Hex | None
    hash: Sha256Hex
    sig: B64Url

    def signed_body(self) -> dict[str, Any]:
        body: dict[str, Any] = msgspec.to_builtins(self)
        del body["hash"], body["sig"]
        return body

    def attachment_hashes(self) -> list[str]:
        a = self.attachments
        return ([a.signature] if a.signature else []) + list(a.photos)


def unreal_time(event: CustodyEvent) -> tuple[str, str] | None:
    """(field, text) of the first of the event's times that fits the wire pattern but
    does not exist, such as 2026-13-45T25:61:00.000Z; None when both are real."""
    if not is_real_wire_time(event.occurred_at):
        return "occurred_at", event.occurred_at
    if event.location is not None and not is_real_wire_time(event.location.fix_at):
        return "location.fix_at", event.location.fix_at
    return None


def event_hash(body: dict[str, Any]) -> str:
    """SHA-256 hex of the canonical JSON of an event body (without `hash` and `sig`)."""
    return hashlib.sha256(canonicalize(body)).hexdigest()


_encode = msgspec.json.encode


def _for_encoder(event: CustodyEvent) -> CustodyEvent:
    """The event as msgspec's key-sorted encoder must see it to write RFC 8785: itself, or
    a copy with integral floats as ints (GPS accuracy is often a whole number of metres).
    Raises NotPlain when only the general path can write it (see shared.jcs)."""
    loc, cp, data = event.location, event.counterparty, event.data
    if cp is not None and cp.user_id is not UNSET:
        prepare(cp.user_id)
    new_data = prepare(data)
    new_loc = loc
    if loc is not None:
        lat, lon, acc = prepare(loc.lat), prepare(loc.lon), prepare(loc.accuracy_m)
        if lat is not loc.lat or lon is not loc.lon or acc is not loc.accuracy_m:
            new_loc = msgspec.structs.replace(loc, lat=lat, lon=lon, accuracy_m=acc)
    if new_data is data and new_loc is loc:
        return event
    return msgspec.structs.replace(event, data=new_data, location=new_loc)


def canonical_body(event: CustodyEvent) -> bytes:
    """The RFC 8785 canonical JSON of the event without `hash` and `sig`.

    Usually the event's own key-sorted encoding with those two members cut out: with
    sorted keys `hash` follows `device` and `sig` follows `prev`, and only `location`
    (fixed keys) is an object after them, so the last `,"hash":` and `,"sig":` members
    with the event's exact values are the top-level ones. What msgspec cannot write as
    RFC 8785 does takes the general path through a dict.
    """
    try:
        raw = encode_sorted(_for_encoder(event))
    except NotPlain:
        return canonicalize(event.signed_body())
    h = b',"hash":' + _encode(event.hash)
    s = b',"sig":' + _encode(event.sig)
    i, j = raw.rfind(h), raw.rfind(s)  # both always there: the encoder wrote them just so
    return raw[:i] + raw[i + len(h) : j] + raw[j + len(s) :]


def compute_hash(event: CustodyEvent) -> str:
    return hashlib.sha256(canonical_body(event)).hexdigest()


class EventIntegrityError(ValueError):
    """The event's hash or signature does not match its body."""


def verify_event(event: CustodyEvent, public_key_b64: str | None = None) -> None:
    """Check `hash` against the body and `sig` against `public_key_b64` (default: `device`)."""
    expected = compute_hash(event)
    if expected != event.hash:
        raise EventIntegrityError(
            "hash does not match the event body (RFC 8785 canonical JSON without hash and sig)"
        )
    try:
        verify(public_key_b64 or event.device, event.sig, bytes.fromhex(event.hash))
    except BadSignature as exc:
        raise EventIntegrityError(f"signature: {exc}") from exc


def sign_event(key: SigningKey, **fields: Any) -> CustodyEvent:
    """Build a signed event from its body fields; `device` is set to the key's public key."""
    body = {
        "v": 1,
        "counterparty": None,
        "location": None,
        "attachments": {"signature": None, "photos": []},
        "data": {},
        "prev": None,
        **fields,
        "device": key.public_key_b64,
    }
    body = msgspec.to_builtins(body)
    digest = event_hash(body)
    body["hash"] = digest
    body["sig"] = key.sign_b64(bytes.fromhex(digest))
    return msgspec.convert(body, CustodyEvent)


def new_event_id(now_ms: int | None = None) -> str:
    """A UUIDv7 (RFC 9562): time-ordered, so outboxes and logs sort naturally."""
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | (rand >> 68 & 0xFFF) << 64
    value |= 0b10 << 62 | (rand & ((1 << 62) - 1))
    return str(uuid.UUID(int=value))


event_decoder = msgspec.json.Decoder(CustodyEvent)
event_encoder = msgspec.json.Encoder()
