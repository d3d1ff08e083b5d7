"""Checking an export bundle (CUSTODY.md §6) offline, trusting nothing but the keys in it
and the maths: what `hoso verify FILE` runs, and what an auditor's own program would do."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgspec

from . import lifecycle, merkle
from .crypto import BadSignature, verify
from .events import CustodyEvent, EventIntegrityError, verify_event
from .jcs import canonicalize


@dataclass
class Check:
    name: str
    ok: bool = True
    failures: list[str] = field(default_factory=list)

    def fail(self, message: str) -> None:
        self.ok = False
        self.failures.append(message)


def head_message(size: int, root_hex: str, timestamp: int) -> bytes:
    return canonicalize({"size": size, "root": root_hex, "timestamp": timestamp})


def _keys(bundle: dict[str, Any], name: str) -> list[str]:
    keys = bundle.get("keys") or {}
    current = keys.get(f"{name}_public_key")
    retired = [k["public_key"] for k in keys.get("retired") or [] if k.get("name") == name]
    return [k for k in [current, *retired] if k]


def _verifies(keys: list[str], sig: str, message: bytes) -> bool:
    for key in keys:
        try:
            verify(key, sig, message)
            return True
        except BadSignature:
            continue
    return False


def verify_bundle(bundle: dict[str, Any]) -> list[Check]:
    """Every check of §6, each with the events or items that failed it."""
    structure, hashes, sigs, chain, life = (
        Check("structure"),
        Check("event hashes"),
        Check("signatures"),
        Check("chain links"),
        Check("lifecycle"),
    )
    inclusion, head_sig, wit = (
        Check("inclusion proofs"),
        Check("tree head signature"),
        Check("witness cosignatures"),
    )
    checks = [structure, hashes, sigs, chain, life, inclusion, head_sig, wit]
    if bundle.get("v") != 1:
        structure.fail(f"unknown bundle version {bundle.get('v')!r}")
        return checks
    events: list[CustodyEvent] = []
    for i, raw in enumerate(bundle.get("events") or []):
        try:
            events.append(msgspec.convert(raw, CustodyEvent))
        except msgspec.ValidationError as exc:
            structure.fail(f"event #{i + 1}: {exc}")
    if not structure.ok:
        return checks
    if not events:
        structure.fail("the bundle has no events")
        return checks
    ship = bundle.get("shipment") or {}
    event_keys = _keys(bundle, "event")

    prev = None
    state: str | None = None
    for n, ev in enumerate(events, start=1):
        label = f"event #{n} {ev.type} {ev.id}"
        if ev.shipment != ship.get("code"):
            chain.fail(f"{label}: belongs to shipment {ev.shipment}, not {ship.get('code')}")
        try:
            verify_event(ev, public_key_b64=ev.device)
        except EventIntegrityError as exc:
            (hashes if "hash" in str(exc).split(":")[0] else sigs).fail(f"{label}: {exc}")
        server_signed = lifecycle.TRANSITIONS[ev.type].server_signed or ev.actor.startswith(
            ("clerk:", "dispatcher:")
        )
        if server_signed and ev.device not in event_keys:
            sigs.fail(f"{label}: recorded by the server but not signed with one of its event keys")
        if ev.prev != prev:
            chain.fail(
                f"{label}: prev {str(ev.prev)[:12]}… does not link to the previous event {str(prev)[:12]}…"
            )
        prev = ev.hash
        role = "citizen" if ev.actor == "citizen" else ev.actor.split(":")[0]
        try:
            state = lifecycle.check(role, ev.type, state)
        except lifecycle.IllegalTransition as exc:
            life.fail(f"{label}: {exc}")
    if ship.get("head") != prev:
        chain.fail(
            f"the shipment's head {str(ship.get('head'))[:12]}… is not its last event {str(prev)[:12]}…"
        )
    if life.ok and ship.get("state") != state:
        life.fail(f"the events lead to state {state}, the bundle says {ship.get('state')}")

    head = bundle.get("tree_head") or {}
    try:
        size, root_hex, ts, sig = (
            int(head["size"]),
            str(head["root"]),
            int(head["timestamp"]),
            str(head["sig"]),
        )
        root = bytes.fromhex(root_hex)
    except (KeyError, TypeError, ValueError):
        head_sig.fail("tree_head needs size, root (hex), timestamp and sig")
        return checks
    message = head_message(size, root_hex, ts)
    if not _verifies(_keys(bundle, "log"), sig, message):
        head_sig.fail("the tree head is not signed by the log key (current or retired)")

    proofs = {p.get("leaf"): p for p in bundle.get("proofs") or []}
    for n, ev in enumerate(events, start=1):
        p = proofs.get(ev.hash)
        if p is None:
            inclusion.fail(f"event #{n} {ev.id}: no inclusion proof")
            continue
        try:
            merkle.verify_inclusion(
                merkle.leaf_hash(bytes.fromhex(ev.hash)),
                int(p["index"]),
                size,
                [bytes.fromhex(x) for x in p["proof"]],
                root,
            )
        except (merkle.ProofError, ValueError, KeyError, TypeError) as exc:
            inclusion.fail(f"event #{n} {ev.id}: {exc}")

    for w in bundle.get("witnesses") or []:
        if not _verifies([w.get("public_key", "")], w.get("sig", ""), message):
            wit.fail(f"witness {w.get('name')!r}: cosignature does not verify for this tree head")
    if not bundle.get("witnesses"):
        wit.failures.append("none (no one-stop shop has co-signed this tree head yet)")
    return checks


def check_consistency(
    old: dict[str, Any], new: dict[str, Any], proof: list[str], log_keys: list[str]
) -> list[Check]:
    """Is the tree head `new` an append-only extension of the earlier head `old`?"""
    sig_check, cons = Check("tree head signatures"), Check("consistency")
    for name, head in (("saved", old), ("current", new)):
        if not _verifies(log_keys, head["sig"], head_message(head["size"], head["root"], head["timestamp"])):
            sig_check.fail(f"the {name} tree head is not signed by the log key")
    try:
        merkle.verify_consistency(
            int(old["size"]),
            int(new["size"]),
            [bytes.fromhex(p) for p in proof],
            bytes.fromhex(old["root"]),
            bytes.fromhex(new["root"]),
        )
    except (merkle.ProofError, ValueError) as exc:
        cons.fail(f"size {old['size']} → {new['size']}: {exc}; the log was rewritten or truncated")
    return [sig_check, cons]
