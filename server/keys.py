"""The server's Ed25519 keys: label, event and log; and its X25519 seal key, to which the
courier's phone seals the PIN a citizen types at the door (CUSTODY.md §3, "What a PIN proves").

Created on first start under `Settings.keys_dir` (mode 0600), never committed.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import nacl.public

from shared.crypto import SigningKey, b64url, b64url_decode
from shared.labels import LabelKey, LabelKeySet, key_id
from shared.timeutil import to_wire, utcnow

KEY_NAMES = ("label", "event", "log")


@dataclass(frozen=True, slots=True)
class ServerKeys:
    label: SigningKey
    event: SigningKey
    log: SigningKey
    retired: tuple[dict[str, str], ...] = ()
    seal: nacl.public.PrivateKey | None = None
    label_since: str | None = None  # when the current label key was made

    @property
    def seal_public_key(self) -> str:
        return b64url(bytes(self.seal.public_key)) if self.seal is not None else ""

    def label_keys(self) -> LabelKeySet:
        """Every label key: the current one, the retired ones and the revoked ones (§2)."""
        keys = [LabelKey(self.label.public_key_b64, "current", self.label_since)]
        for k in self.retired:
            if k.get("name") != "label":
                continue
            revoked = k.get("revoked_at")
            keys.append(
                LabelKey(
                    k["public_key"],
                    "revoked" if revoked else "retired",
                    k.get("valid_from"),
                    revoked or k.get("retired_at"),
                )
            )
        return LabelKeySet.of(keys)

    def public(self) -> dict[str, object]:
        return {
            "label_public_key": self.label.public_key_b64,
            "event_public_key": self.event.public_key_b64,
            "log_public_key": self.log.public_key_b64,
            "retired": list(self.retired),
            "label_keys": [
                {
                    "kid": k.kid,
                    "public_key": k.public_key,
                    "status": k.status,
                    "valid_from": k.valid_from,
                    "valid_until": k.valid_until,
                }
                for k in self.label_keys().keys
            ],
            "seal_public_key": self.seal_public_key,
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


def _created_at(path: Path) -> str | None:
    created = json.loads(path.read_text()).get("created_at") if path.exists() else None
    return created if isinstance(created, str) else None


def _load_or_create_seal(path: Path) -> nacl.public.PrivateKey:
    if path.exists():
        return nacl.public.PrivateKey(b64url_decode(json.loads(path.read_text())["secret"]))
    key = nacl.public.PrivateKey.generate()
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(
            {
                "secret": b64url(bytes(key)),
                "public_key": b64url(bytes(key.public_key)),
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
    return ServerKeys(
        **loaded,
        retired=tuple(retired),
        seal=_load_or_create_seal(keys_dir / "seal.key.json"),
        label_since=_created_at(keys_dir / "label.key.json"),
    )


def _write_retired(keys_dir: Path, retired: list[dict[str, str]]) -> None:
    retired_file = keys_dir / "retired.json"
    tmp = retired_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(retired, indent=1))
    os.replace(tmp, retired_file)


def revoke_key(keys_dir: Path, name: str, kid: str) -> str:
    """Mark a retired `name` key as revoked (what it signed no longer verifies); returns its
    public key. The current key cannot be revoked: rotate first, then revoke the old one."""
    if name != "label":
        raise ValueError("only label keys can be revoked (event and log keys sign the record itself)")
    current = load_keys(keys_dir)
    if key_id(current.label.public_key_b64) == kid:
        raise ValueError(f"{kid} is the current label key: run `hoso keys rotate label` first")
    retired = (
        json.loads((keys_dir / "retired.json").read_text()) if (keys_dir / "retired.json").exists() else []
    )
    for entry in retired:
        if entry.get("name") == name and key_id(entry["public_key"]) == kid:
            entry.setdefault("revoked_at", to_wire(utcnow()))
            _write_retired(keys_dir, retired)
            return str(entry["public_key"])
    known = ", ".join(key_id(e["public_key"]) for e in retired if e.get("name") == name) or "none"
    raise ValueError(f"no retired {name} key {kid} (retired label keys: {known})")


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
    since = _created_at(path)
    stamp = to_wire(utcnow()).replace(":", "")
    os.replace(path, archive / f"{name}-{stamp}.key.json")
    retired_file = keys_dir / "retired.json"
    retired = json.loads(retired_file.read_text()) if retired_file.exists() else []
    entry = {"name": name, "public_key": old.public_key_b64, "retired_at": to_wire(utcnow())}
    if since:
        entry["valid_from"] = since
    retired.append(entry)
    _write_retired(keys_dir, retired)
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
