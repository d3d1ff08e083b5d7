"""The server's Ed25519 keys: label, event and log.

Created on first start under `Settings.keys_dir` (mode 0600), never committed.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from shared.crypto import SigningKey, b64url, b64url_decode
from shared.timeutil import to_wire, utcnow

KEY_NAMES = ("label", "event", "log")


@dataclass(frozen=True, slots=True)
class ServerKeys:
    label: SigningKey
    event: SigningKey
    log: SigningKey
    retired: tuple[dict[str, str], ...] = ()

    def public(self) -> dict[str, object]:
        return {
            "label_public_key": self.label.public_key_b64,
            "event_public_key": self.event.public_key_b64,
            "log_public_key": self.log.public_key_b64,
            "retired": list(self.retired),
        }


def _load_or_create(path: Path) -> SigningKey:
    if path.exists():
        data = json.loads(path.read_text())
        return SigningKey(b64url_decode(data["seed"]))
    key = SigningKey.generate()
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(
            {
                "seed": b64url(key.seed),
                "public_key": key.public_key_b64,
                "created_at": to_wire(utcnow()),
            },
            fh,
        )
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return key


def load_keys(keys_dir: Path) -> ServerKeys:
    keys_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    loaded = {name: _load_or_create(keys_dir / f"{name}.key.json") for name in KEY_NAMES}
    retired: list[dict[str, str]] = []
    retired_file = keys_dir / "retired.json"
    if retired_file.exists():
        retired = json.loads(retired_file.read_text())
    return ServerKeys(**loaded, retired=tuple(retired))


def rotate_key(keys_dir: Path, name: str) -> tuple[str, str]:
    """Retire the current `name` key (its public key stays listed) and create a new one.

    Returns (old public key, new public key). The retired private key is kept under
    keys/retired/ for the record; nothing signs with it again.
    """
    if name not in KEY_NAMES:
        raise ValueError(f"key name must be one of {', '.join(KEY_NAMES)}")
    current = load_keys(keys_dir)
    old: SigningKey = getattr(current, name)
    path = keys_dir / f"{name}.key.json"
    archive = keys_dir / "retired"
    archive.mkdir(exist_ok=True, mode=0o700)
    stamp = to_wire(utcnow()).replace(":", "")
    os.replace(path, archive / f"{name}-{stamp}.key.json")
    retired_file = keys_dir / "retired.json"
    retired = json.loads(retired_file.read_text()) if retired_file.exists() else []
    retired.append({"name": name, "public_key": old.public_key_b64, "retired_at": to_wire(utcnow())})
    tmp = retired_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(retired, indent=1))
    os.replace(tmp, retired_file)
    new = _load_or_create(path)
    return old.public_key_b64, new.public_key_b64


def load_secret(keys_dir: Path, name: str) -> str:
    """A random secret kept beside the keys (created on first start, never a default)."""
    keys_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = keys_dir / f"{name}.secret"
    if not path.exists():
        fd = os.open(path.with_suffix(".tmp"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(b64url(os.urandom(32)))
        os.replace(path.with_suffix(".tmp"), path)
    return path.read_text().strip()
