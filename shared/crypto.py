"""Ed25519 keys and signatures, raw 32-byte keys in base64url (CUSTODY.md).

libsodium (PyNaCl) is used because it verifies about twice as fast as OpenSSL's
Ed25519 on our machines, and verification is the irreducible per-event cost.
"""

from __future__ import annotations

import base64
import binascii
from functools import lru_cache

import nacl.exceptions
import nacl.signing


class BadSignature(ValueError):
    """A signature that does not verify, or a malformed key or signature."""


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    if not isinstance(text, str) or "=" in text:
        raise ValueError("expected base64url without padding")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValueError("not valid base64url") from exc


class SigningKey:
    """An Ed25519 private key (a device's, or one of the server's)."""

    __slots__ = ("_key", "public_key", "public_key_b64")

    def __init__(self, seed: bytes) -> None:
        self._key = nacl.signing.SigningKey(seed)
        self.public_key = bytes(self._key.verify_key)
        self.public_key_b64 = b64url(self.public_key)

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(bytes(nacl.signing.SigningKey.generate()))

    @property
    def seed(self) -> bytes:
        return bytes(self._key)

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message).signature

    def sign_b64(self, message: bytes) -> str:
        return b64url(self.sign(message))


@lru_cache(maxsize=4096)
def _verify_key(public_key_b64: str) -> nacl.signing.VerifyKey:
    raw = b64url_decode(public_key_b64)
    if len(raw) != 32:
        raise ValueError("an Ed25519 public key has 32 bytes")
    return nacl.signing.VerifyKey(raw)


def check_public_key(public_key_b64: str) -> None:
    """Raise ValueError unless this is a base64url raw Ed25519 public key."""
    _verify_key(public_key_b64)


def verify(public_key_b64: str, signature_b64: str, message: bytes) -> None:
    """Raise BadSignature unless `signature_b64` is the key's signature of `message`."""
    try:
        key = _verify_key(public_key_b64)
        sig = b64url_decode(signature_b64)
        if len(sig) != 64:
            raise BadSignature("an Ed25519 signature has 64 bytes")
        key.verify(message, sig)
    except nacl.exceptions.BadSignatureError as exc:
        raise BadSignature("signature does not verify") from exc
    except ValueError as exc:
        if isinstance(exc, BadSignature):
            raise
        raise BadSignature(str(exc)) from exc
