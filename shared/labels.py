"""The signed QR label URL (CUSTODY.md §2): `{BASE}/t/{code}?s={sig}&k={key id}`.

Labels printed before key ids existed carry only `s`; they are checked against every
label key that may still verify (the current one and the retired ones), never a revoked one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal
from urllib.parse import parse_qs, urlsplit

from . import codes
from .crypto import BadSignature, SigningKey, b64url, b64url_decode, verify

KeyStatus = Literal["current", "retired", "revoked"]
Verdict = Literal["ok", "forged", "revoked", "unknown_key"]


def label_message(code: str) -> bytes:
    return f"hoso-label:v1:{code}".encode("ascii")


def key_id(public_key_b64: str) -> str:
    """A short, stable name for a public key: base64url of the first 6 bytes of its SHA-256."""
    return b64url(hashlib.sha256(b64url_decode(public_key_b64)).digest()[:6])


def label_signature(code: str, key: SigningKey) -> str:
    return key.sign_b64(label_message(code))


def label_url(base_url: str, code: str, key: SigningKey) -> str:
    sig = label_signature(code, key)
    return f"{base_url.rstrip('/')}/t/{code}?s={sig}&k={key_id(key.public_key_b64)}"


@dataclass(frozen=True, slots=True)
class ScannedLabel:
    code: str
    sig: str | None  # None: a typed code, or a URL without a signature
    kid: str | None  # None: a label printed before key ids (or typed)


def parse_label(text: str) -> ScannedLabel:
    """What a scanned label URL or a typed code says. Raises codes.InvalidCode."""
    text = (text or "").strip()
    if "/t/" not in text:
        return ScannedLabel(codes.normalize(text), None, None)
    parts = urlsplit(text)
    path = parts.path
    code = path[path.rindex("/t/") + 3 :].strip("/")
    query = parse_qs(parts.query)
    return ScannedLabel(codes.normalize(code), query.get("s", [None])[0], query.get("k", [None])[0])


def parse_label_url(text: str) -> tuple[str, str | None]:
    """(code, sig) from a scanned label URL, or (code, None) from a typed code."""
    label = parse_label(text)
    return label.code, label.sig


@dataclass(frozen=True, slots=True)
class LabelKey:
    public_key: str
    status: KeyStatus
    valid_from: str | None = None  # wire time
    valid_until: str | None = None  # wire time it was retired or revoked; None while current

    @property
    def kid(self) -> str:
        return key_id(self.public_key)


@dataclass(frozen=True, slots=True)
class LabelKeySet:
    """Every label key the server has used, current, retired (still verifies what it signed
    while it was current) or revoked (verifies nothing: its labels are refused)."""

    keys: tuple[LabelKey, ...]

    @classmethod
    def of(cls, keys: Iterable[LabelKey]) -> LabelKeySet:
        return cls(tuple(keys))

    @classmethod
    def current_only(cls, public_key: str) -> LabelKeySet:
        return cls((LabelKey(public_key, "current"),))

    def check(self, code: str, sig: str | None, kid: str | None = None) -> Verdict:
        """`ok` signed by a current or retired key; `revoked` signed by a revoked key;
        `unknown_key` a key id this set does not have (a newer key: refresh the set);
        `forged` otherwise. A key id narrows the keys tried to the one it names."""
        if not sig:
            return "forged"
        candidates = [k for k in self.keys if kid is None or k.kid == kid]
        if kid is not None and not candidates:
            return "unknown_key"
        message = label_message(code)
        for key in candidates:
            try:
                verify(key.public_key, sig, message)
            except (BadSignature, ValueError):
                continue
            return "revoked" if key.status == "revoked" else "ok"
        return "forged"

    def usable(self) -> list[str]:
        return [k.public_key for k in self.keys if k.status != "revoked"]


def is_authentic(code: str, sig: str | None, label_public_keys: list[str]) -> bool:
    """True when `sig` is a label signature of `code` by any of the given (current or retired) keys."""
    if not sig:
        return False
    message = label_message(code)
    for key in label_public_keys:
        try:
            verify(key, sig, message)
            return True
        except BadSignature:
            continue
    return False
