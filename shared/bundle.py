"""Checking an export bundle offline (docs/CUSTODY.md, "Export bundle" and "Trust"):
what `hoso verify FILE` runs, and what an auditor's own program would do.

The maths alone shows that a bundle is consistent: hashes, signatures, chain links,
inclusion proofs. It cannot show who made it: anyone can make fresh keys and a bundle
that is consistent under them. Authenticity needs keys the auditor pinned beforehand
(a `Trust`): the server's keys saved from `GET /api/v1/keys`, or a witness's public
key whose co-signature the tree head must carry. Without them every check still runs,
against the keys the bundle carries, and the `authenticity` check says it is unproven.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import msgspec

from . import lifecycle, merkle
from .crypto import BadSignature, verify
from .enrolment import EnrolmentError, check_enrolment
from .events import CustodyEvent, EventIntegrityError, verify_event
from .jcs import canonicalize
from .pages import file_problem, files_named, pages_problem
from .timeutil import to_wire

BUNDLE_VERSIONS = (1, 2)  # 2 adds `enrolments` and `received_at_status`
VERIFIED, UNPROVEN, FAILED = "verified", "unproven", "failed"


@dataclass
class Check:
    name: str
    ok: bool = True
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what the check established, or could not
    unproven: bool = False  # passed as far as it goes, but rests on nothing the auditor pinned

    def fail(self, message: str) -> None:
        self.ok = False
        self.failures.append(message)

    def leave_unproven(self, message: str) -> None:
        self.unproven = True
        self.notes.append(message)


_B64_KEY = re.compile(r"^[A-Za-z0-9_-]{43}$")


@dataclass(frozen=True)
class Trust:
    """Keys an auditor pinned: from a keys file saved earlier, and/or witnesses."""

    log_keys: tuple[str, ...] = ()
    event_keys: tuple[str, ...] = ()
    witness_keys: tuple[str, ...] = ()

    @property
    def server_pinned(self) -> bool:
        return bool(self.log_keys)

    @property
    def pinned(self) -> bool:
        return bool(self.log_keys or self.witness_keys)

    def __or__(self, other: Trust) -> Trust:
        return Trust(
            self.log_keys + other.log_keys,
            self.event_keys + other.event_keys,
            self.witness_keys + other.witness_keys,
        )

    @classmethod
    def from_keys(cls, doc: dict[str, Any]) -> Trust:
        """From the answer of `GET /api/v1/keys` (current and retired keys)."""
        return cls(log_keys=tuple(key_set(doc, "log")), event_keys=tuple(key_set(doc, "event")))


def parse_trust(text: str) -> Trust:
    """What `--trust` names: a saved `GET /api/v1/keys` answer (JSON), a witness entry
    (JSON with `public_key`), or a witness's raw Ed25519 public key in base64url."""
    text = text.strip()
    if _B64_KEY.match(text):
        return Trust(witness_keys=(text,))
    try:
        doc = json.loads(text)
    except ValueError:
        raise ValueError("neither a keys file (JSON) nor a base64url Ed25519 public key") from None
    if isinstance(doc, str) and _B64_KEY.match(doc):
        return Trust(witness_keys=(doc,))
    if isinstance(doc, dict) and isinstance(doc.get("log_public_key"), str):
        trust = Trust.from_keys(doc)
        if not all(_B64_KEY.match(k) for k in trust.log_keys + trust.event_keys):
            raise ValueError("the keys file has a key that is not a base64url Ed25519 public key")
        return trust
    if isinstance(doc, dict) and isinstance(doc.get("public_key"), str) and _B64_KEY.match(doc["public_key"]):
        return Trust(witness_keys=(doc["public_key"],))
    raise ValueError("a keys file has log_public_key and event_public_key (GET /api/v1/keys)")


def head_message(size: int, root_hex: str, timestamp: int) -> bytes:
    return canonicalize({"size": size, "root": root_hex, "timestamp": timestamp})


def key_set(keys: dict[str, Any], name: str) -> list[str]:
    """The current and retired public keys called `name` in a keys document."""
    current = keys.get(f"{name}_public_key")
    retired = [
        k.get("public_key")
        for k in keys.get("retired") or []
        if isinstance(k, dict) and k.get("name") == name
    ]
    return [k for k in [current, *retired] if isinstance(k, str) and k]


def _verifies(keys: Iterable[str], sig: str, message: bytes) -> bool:
    for key in keys:
        try:
            verify(key, sig, message)
            return True
        except BadSignature:
            continue
    return False


def _short(key: str) -> str:
    return f"{key[:10]}…"


def _server_signed(ev: CustodyEvent) -> bool:
    return lifecycle.TRANSITIONS[ev.type].server_signed or ev.actor.startswith(("clerk:", "dispatcher:"))


def outcome(checks: list[Check]) -> str:
    """FAILED if any check failed; UNPROVEN if all passed but some rest on unpinned keys."""
    if not all(c.ok for c in checks):
        return FAILED
    return UNPROVEN if any(c.unproven for c in checks) else VERIFIED


class _Checks:
    """The checks of one bundle, in the order they are reported."""

    def __init__(self) -> None:
        self.structure = Check("structure")
        self.hashes = Check("event hashes")
        self.sigs = Check("signatures")
        self.enrol = Check("device enrolment")
        self.chain = Check("chain links")
        self.life = Check("lifecycle")
        self.inclusion = Check("inclusion proofs")
        self.head_sig = Check("tree head signature")
        self.wit = Check("witness cosignatures")
        self.auth = Check("authenticity")
        self.receipts = Check("receipt times")
        self.paged = Check("digitised pages")

    def all(self) -> list[Check]:
        return [
            self.structure, self.hashes, self.sigs, self.enrol, self.chain, self.life,
            self.inclusion, self.head_sig, self.wit, self.receipts, self.paged, self.auth,
        ]  # fmt: skip


@dataclass
class _Bundle:
    """A bundle's parts, read and shape-checked, and the keys its checks use."""

    version: int
    events: list[CustodyEvent]
    records: list[dict[str, Any]]
    received: dict[str, Any]
    files: dict[str, Any]
    ship: dict[str, Any]
    carried: dict[str, Any]
    event_keys: list[str]
    log_keys: list[str]
    whose: str  # "a pinned" | "the bundle's": whose keys the messages name
    size: int
    root_hex: str
    root: bytes
    timestamp: int
    head_sig: str
    proofs: dict[Any, dict[str, Any]]

    def leaf_index(self, leaf: str) -> int | None:
        p = self.proofs.get(leaf)
        try:
            return int(p["index"]) if p is not None else None
        except (KeyError, TypeError, ValueError):
            return None


def verify_bundle(bundle: dict[str, Any], trust: Trust | None = None) -> list[Check]:
    """Every check of the bundle, each with the events or items that failed it."""
    trust = trust or Trust()
    c = _Checks()
    b = _read(bundle, trust, c.structure)
    if b is None:
        return c.all()
    _check_events(b, c)
    enrolled = _check_enrolments(b, c.enrol)
    message = head_message(b.size, b.root_hex, b.timestamp)
    _check_log(b, enrolled, message, c)
    _check_witnesses(bundle.get("witnesses") or [], trust, message, c.wit)
    _check_pages(b.events, b.files, c.paged)
    _check_receipts(b, c.receipts)
    _check_authenticity(b, trust, c)
    return c.all()


def _read(bundle: dict[str, Any], trust: Trust, structure: Check) -> _Bundle | None:
    """The bundle's parts, or None (with `structure` failed) when its shape is wrong."""
    version = bundle.get("v")
    if version not in BUNDLE_VERSIONS:
        structure.fail(f"unknown bundle version {version!r} (this verifier reads {BUNDLE_VERSIONS})")
        return None
    events: list[CustodyEvent] = []
    for i, raw in enumerate(bundle.get("events") or []):
        try:
            events.append(msgspec.convert(raw, CustodyEvent))
        except msgspec.ValidationError as exc:
            structure.fail(f"event #{i + 1}: {exc}")
        except RecursionError:
            structure.fail(f"event #{i + 1}: nested too deeply to check")
    records = (bundle.get("enrolments") or []) if version >= 2 else []
    if not isinstance(records, list):
        structure.fail("enrolments is a list of enrolment records")
    received = bundle.get("received_at") or {}
    if not isinstance(received, dict):
        structure.fail("received_at maps event ids to times")
    files = bundle.get("files") or {}
    if not isinstance(files, dict):
        structure.fail("files maps SHA-256 hex to base64url file contents")
    if not structure.ok:
        return None
    if not events:
        structure.fail("the bundle has no events")
        return None
    carried = bundle.get("keys") or {}
    head = bundle.get("tree_head") or {}
    try:
        size, root_hex, ts, head_sig = (
            int(head["size"]),
            str(head["root"]),
            int(head["timestamp"]),
            str(head["sig"]),
        )
        root = bytes.fromhex(root_hex)
    except (KeyError, TypeError, ValueError):
        structure.fail("tree_head needs size, root (hex), timestamp and sig")
        return None
    return _Bundle(
        version=version,
        events=events,
        records=records,
        received=received,
        files=files,
        ship=bundle.get("shipment") or {},
        carried=carried,
        event_keys=list(trust.event_keys) if trust.server_pinned else key_set(carried, "event"),
        log_keys=list(trust.log_keys) if trust.server_pinned else key_set(carried, "log"),
        whose="a pinned" if trust.server_pinned else "the bundle's",
        size=size,
        root_hex=root_hex,
        root=root,
        timestamp=ts,
        head_sig=head_sig,
        proofs={p.get("leaf"): p for p in bundle.get("proofs") or [] if isinstance(p, dict)},
    )


def _check_events(b: _Bundle, c: _Checks) -> None:
    """Each event's hash and signature, its link to the one before, and the lifecycle."""
    prev = None
    state: str | None = None
    for n, ev in enumerate(b.events, start=1):
        label = f"event #{n} {ev.type} {ev.id}"
        if ev.shipment != b.ship.get("code"):
            c.chain.fail(f"{label}: belongs to shipment {ev.shipment}, not {b.ship.get('code')}")
        try:
            verify_event(ev, public_key_b64=ev.device)
        except RecursionError:
            c.hashes.fail(f"{label}: nested too deeply to hash (see docs/CUSTODY.md, canonical JSON)")
        except EventIntegrityError as exc:
            (c.hashes if "hash" in str(exc).split(":")[0] else c.sigs).fail(f"{label}: {exc}")
        if _server_signed(ev) and ev.device not in b.event_keys:
            c.sigs.fail(f"{label}: recorded by the server but not signed with {b.whose} event key")
        if ev.prev != prev:
            c.chain.fail(
                f"{label}: prev {str(ev.prev)[:12]}… does not link to the previous event {str(prev)[:12]}…"
            )
        prev = ev.hash
        role = "citizen" if ev.actor == "citizen" else ev.actor.split(":")[0]
        try:
            state = lifecycle.check(role, ev.type, state)
        except lifecycle.IllegalTransition as exc:
            c.life.fail(f"{label}: {exc}")
    if b.ship.get("head") != prev:
        c.chain.fail(
            f"the shipment's head {str(b.ship.get('head'))[:12]}… is not its last event {str(prev)[:12]}…"
        )
    if c.life.ok and b.ship.get("state") != state:
        c.life.fail(f"the events lead to state {state}, the bundle says {b.ship.get('state')}")


def _check_enrolments(b: _Bundle, enrol: Check) -> dict[str, dict[str, Any]]:
    """Device keys: each enrolled to the event's actor, by the server, before the event.
    The valid enrolment records, by device key."""
    device_events = [(n, ev) for n, ev in enumerate(b.events, start=1) if not _server_signed(ev)]
    enrolled: dict[str, dict[str, Any]] = {}
    for i, record in enumerate(b.records, start=1):
        try:
            check_enrolment(record, b.event_keys)
        except EnrolmentError as exc:
            enrol.fail(f"enrolment record #{i}: {exc} ({b.whose} event key)")
            continue
        enrolled[record["device"]] = record
    if b.version < 2:
        if device_events:
            enrol.leave_unproven(
                "a version 1 bundle carries no enrolment records: nothing shows the device keys "
                "were enrolled to the couriers named"
            )
        return enrolled
    for n, ev in device_events:
        label = f"event #{n} {ev.type} {ev.id}"
        held = enrolled.get(ev.device)
        if held is None:
            enrol.fail(f"{label}: device key {_short(ev.device)} has no valid enrolment record")
            continue
        if held["actor"] != ev.actor:
            enrol.fail(f"{label}: key {_short(ev.device)} is enrolled to {held['actor']}, not {ev.actor}")
        at, ev_at = b.leaf_index(held["hash"]), b.leaf_index(ev.hash)
        if at is not None and ev_at is not None and not at < ev_at:
            enrol.fail(
                f"{label}: the device's enrolment entered the log after the event (leaf {at} ≥ {ev_at})"
            )
        got = b.received.get(ev.id)
        if isinstance(got, str) and held["enrolled_at"] > got:
            enrol.fail(f"{label}: received {got}, before the device was enrolled at {held['enrolled_at']}")
    if enrol.ok and enrolled:
        enrol.notes.append(
            f"{len(enrolled)} device key(s), each enrolled by {b.whose} event key before its events"
        )
    return enrolled


def _check_log(b: _Bundle, enrolled: dict[str, dict[str, Any]], message: bytes, c: _Checks) -> None:
    """The log: inclusion of every event and enrolment record in one signed tree head."""
    if not _verifies(b.log_keys, b.head_sig, message):
        c.head_sig.fail(f"the tree head is not signed by {b.whose} log key (current or retired)")
    leaves = [(f"event #{n} {ev.id}", ev.hash) for n, ev in enumerate(b.events, start=1)]
    leaves += [(f"enrolment of {_short(r['device'])}", r["hash"]) for r in enrolled.values()]
    for what, leaf in leaves:
        p = b.proofs.get(leaf)
        if p is None:
            c.inclusion.fail(f"{what}: no inclusion proof")
            continue
        try:
            merkle.verify_inclusion(
                merkle.leaf_hash(bytes.fromhex(leaf)),
                int(p["index"]),
                b.size,
                [bytes.fromhex(x) for x in p["proof"]],
                b.root,
            )
        except (merkle.ProofError, ValueError, KeyError, TypeError) as exc:
            c.inclusion.fail(f"{what}: {exc}")


def _check_witnesses(witnesses: list[Any], trust: Trust, message: bytes, wit: Check) -> None:
    cosigned: set[str] = set()
    for w in witnesses:
        if _verifies([w.get("public_key", "")], w.get("sig", ""), message):
            cosigned.add(w.get("public_key", ""))
        else:
            wit.fail(f"witness {w.get('name')!r}: cosignature does not verify for this tree head")
    for key in trust.witness_keys:
        if key not in cosigned:
            wit.fail(f"the pinned witness {_short(key)} has not co-signed this tree head")
    if not witnesses and not trust.witness_keys:
        wit.failures.append("none (no one-stop shop has co-signed this tree head yet)")


def _check_receipts(b: _Bundle, receipts: Check) -> None:
    """received_at: the server's clock, neither signed nor in the log (docs/CUSTODY.md)."""
    head_time = _wire_ms(b.timestamp)
    late = [eid for eid, at in b.received.items() if isinstance(at, str) and at > head_time]
    if late:
        receipts.fail(
            f"{len(late)} receipt time(s) are later than the tree head that includes the events "
            f"({head_time}): the stored times were changed"
        )
    receipts.notes.append(
        "received_at is the server's clock, not signed: UNVERIFIED. Proven: the order in which "
        f"events entered the log, and that all were in it by {head_time} (tree head)"
    )


def _check_authenticity(b: _Bundle, trust: Trust, c: _Checks) -> None:
    """What it all rests on: keys pinned beforehand, or nothing."""
    auth = c.auth
    if not trust.pinned:
        auth.leave_unproven(
            "UNPROVEN: no keys pinned (--trust), so the checks used the keys the bundle carries; "
            "anyone can make a bundle that passes them"
        )
        return
    if not all(check.ok for check in c.all()):
        auth.fail("the record does not verify under the pinned keys: see the checks that failed")
        return
    if trust.server_pinned:
        auth.notes.append("the tree head is signed by the pinned log key; server signatures by pinned keys")
        if key_set(b.carried, "log")[:1] != list(trust.log_keys[:1]):
            auth.notes.append("the bundle's own `keys` differ from the pinned keys and were not used")
    else:
        auth.notes.append(
            "server keys not pinned: what proves the record is the pinned witness's co-signature "
            "of a tree head that includes every event and enrolment record"
        )
    for key in trust.witness_keys:
        auth.notes.append(f"co-signed by the pinned witness {_short(key)}")


def _check_pages(events: list[CustodyEvent], files: dict[str, Any], paged: Check) -> None:
    """Every file an event's `data.pages` names and the bundle carries has that hash (§4.1)."""
    named: set[str] = set()
    for n, ev in enumerate(events, start=1):
        if "pages" not in ev.data:
            continue
        label = f"event #{n} {ev.type} {ev.id}"
        if problem := pages_problem(ev.data["pages"]):
            paged.fail(f"{label}: {problem}")
            continue
        checked = absent = 0
        for what, sha in files_named(ev.data["pages"]):
            named.add(sha)
            if sha not in files:
                absent += 1
            elif problem := file_problem(sha, files[sha]):
                paged.fail(f"{label}: {what} {problem}")
            else:
                checked += 1
        paged.notes.append(
            f"{label}: {checked} file(s) match their hashes"
            + (f", {absent} not in the bundle (not checked)" if absent else "")
        )
    for sha in files:
        if sha not in named:
            paged.fail(f"the bundle carries a file {str(sha)[:12]}… that no event names")
    if not named:
        paged.notes.append("no event carries digitised pages (data.pages)")


def _wire_ms(ms: int) -> str:
    return to_wire(datetime.fromtimestamp(ms / 1000, UTC))


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
