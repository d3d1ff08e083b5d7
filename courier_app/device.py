"""The phone's own Ed25519 key. On Android it lives in secure storage (flet-secure-storage);
on a desktop or in the browser build, a file readable by its owner only. Both behind one
small interface so flows and tests never care which."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

from shared.crypto import SigningKey, b64url, b64url_decode


class KeyStore(Protocol):
    def load(self) -> bytes | None: ...
    def save(self, seed: bytes) -> None: ...


class FileKeyStore:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    def load(self) -> bytes | None:
        try:
            return b64url_decode(self.path.read_text().strip())
        except FileNotFoundError:
            return None

    def save(self, seed: bytes) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(b64url(seed))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)


def device_key(store: KeyStore) -> SigningKey:
    """This device's key: made once, then always the same (it is what the server enrolled)."""
    seed = store.load()
    if seed is None:
        key = SigningKey.generate()
        store.save(key.seed)
        return key
    return SigningKey(seed)
