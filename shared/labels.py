"""The signed QR label URL (CUSTODY.md §2): `{BASE}/t/{code}?s={sig}`."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from . import codes
from .crypto import BadSignature, SigningKey, verify


def label_message(code: str) -> bytes:
    return f"hoso-label:v1:{code}".encode("ascii")


def label_signature(code: str, key: SigningKey) -> str:
    return key.sign_b64(label_message(code))


def label_url(base_url: str, code: str, key: SigningKey) -> str:
    return f"{base_url.rstrip('/')}/t/{code}?s={label_signature(code, key)}"


def parse_label_url(text: str) -> tuple[str, str | None]:
    """(code, sig) from a scanned label URL, or (code, None) from a typed code.

    Raises codes.InvalidCode when there is no valid shipment code in it.
    """
    text = (text or "").strip()
    if "/t/" not in text:
        return codes.normalize(text), None
    parts = urlsplit(text)
    path = parts.path
    code = path[path.rindex("/t/") + 3 :].strip("/")
    sig = parse_qs(parts.query).get("s", [None])[0]
    return codes.normalize(code), sig


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
