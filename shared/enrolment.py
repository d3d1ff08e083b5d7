"""The enrolment record: the server's signed statement that a device key belongs to a courier.

A courier's events are signed by their phone's key, which nobody outside the server has
ever seen. The record binds that key to the account (`actor`) at a time, is signed with
the server's event key, and its hash is appended to the Merkle log as a leaf, so an
auditor can check, offline, that the key that signed an event was enrolled to the
courier the event names, before the event reached the log (docs/CUSTODY.md, "Enrolment").

    {"v": 1, "record": "device_enrolment", "device": b64url key, "actor": "courier:42",
     "enrolled_at": "2026-11-22T03:04:05.123Z", "hash": hex, "sig": b64url}

`hash` = SHA-256 of the RFC 8785 JSON of the record without `hash` and `sig`;
`sig` = Ed25519 (server event key) over the ASCII bytes `hoso-enrolment:v1:{hash}`.
The prefix keeps an enrolment signature from ever being taken for an event signature.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from .crypto import BadSignature, SigningKey, verify
from .jcs import canonicalize
from .timeutil import WIRE_PATTERN

RECORD_KIND = "device_enrolment"
_FIELDS = ("v", "record", "device", "actor", "enrolled_at")


class EnrolmentError(ValueError):
    """A record that is malformed, or whose hash or signature does not match."""


def enrolment_body(device: str, actor: str, enrolled_at: str) -> dict[str, Any]:
    return {"v": 1, "record": RECORD_KIND, "device": device, "actor": actor, "enrolled_at": enrolled_at}


def enrolment_hash(body: dict[str, Any]) -> str:
    return hashlib.sha256(canonicalize({k: body[k] for k in _FIELDS})).hexdigest()


def signed_message(hash_hex: str) -> bytes:
    return f"hoso-enrolment:v1:{hash_hex}".encode("ascii")


def make_enrolment(key: SigningKey, device: str, actor: str, enrolled_at: str) -> dict[str, Any]:
    """A signed record (the server's event key signs it)."""
    body = enrolment_body(device, actor, enrolled_at)
    digest = enrolment_hash(body)
    return {**body, "hash": digest, "sig": key.sign_b64(signed_message(digest))}


def check_enrolment(record: Any, keys: list[str]) -> str:
    """Raise EnrolmentError unless `record` is well formed, its hash matches and one of
    `keys` signed it; returns the key that did."""
    if not isinstance(record, dict) or set(record) != {*_FIELDS, "hash", "sig"}:
        raise EnrolmentError(f"an enrolment record has exactly the members {', '.join(_FIELDS)}, hash, sig")
    if record["v"] != 1 or record["record"] != RECORD_KIND:
        raise EnrolmentError("not a version 1 device_enrolment record")
    if not all(isinstance(record[k], str) for k in ("device", "actor", "enrolled_at", "hash", "sig")):
        raise EnrolmentError("device, actor, enrolled_at, hash and sig are strings")
    if not re.match(WIRE_PATTERN, record["enrolled_at"]):
        raise EnrolmentError("enrolled_at is not a UTC time with milliseconds")
    if enrolment_hash(record) != record["hash"]:
        raise EnrolmentError("hash does not match the record (RFC 8785 JSON without hash and sig)")
    for key in keys:
        try:
            verify(key, record["sig"], signed_message(record["hash"]))
            return key
        except BadSignature:
            continue
    raise EnrolmentError("not signed by the server's event key")
