"""The citizen's 6-digit PIN: checked against its argon2 hash (the server only), and sealed
on the courier's phone to the server's X25519 key so that the event carries the PIN the
citizen typed without the phone ever holding anything that reveals it (CUSTODY.md §3).

A sealed PIN is `SealedBox(seal_public_key).encrypt("hoso-pin:v1:{code}:{pin}")`, base64url:
anyone can seal, only the server can open, and the code inside keeps a sealed PIN from one
shipment from being replayed on another.
"""

from __future__ import annotations

import nacl.exceptions
import nacl.public
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from .crypto import b64url, b64url_decode

# verification reads its cost parameters from the hash, so one hasher checks every PIN hash
_verifier = PasswordHasher()
_PREFIX = "hoso-pin:v1:"


def verify_pin(pin_hash: str, pin: str) -> bool:
    try:
        return _verifier.verify(pin_hash, pin)
    except (VerificationError, InvalidHashError):
        return False


def well_formed(pin: str) -> bool:
    return len(pin) == 6 and pin.isdigit()


def seal_pin(seal_public_key: str, code: str, pin: str) -> str:
    box = nacl.public.SealedBox(nacl.public.PublicKey(b64url_decode(seal_public_key)))
    return b64url(box.encrypt(f"{_PREFIX}{code}:{pin}".encode("ascii")))


class BadSeal(ValueError):
    pass


def open_pin(seal_key: nacl.public.PrivateKey, sealed: str, code: str) -> str:
    """The PIN sealed for `code`; raises BadSeal when it does not open or names another code."""
    try:
        text = nacl.public.SealedBox(seal_key).decrypt(b64url_decode(sealed)).decode("ascii")
    except (nacl.exceptions.CryptoError, ValueError, UnicodeDecodeError) as exc:
        raise BadSeal("the sealed PIN does not open with the server's seal key") from exc
    prefix = f"{_PREFIX}{code}:"
    if not text.startswith(prefix):
        raise BadSeal("the sealed PIN was sealed for another shipment")
    return text[len(prefix) :]
