"""What an event of each type must carry (CUSTODY.md §3), beyond its shape.

Pure checks shared by the app (before it signs) and the server (before it accepts).
"""

from __future__ import annotations

import msgspec

from .events import CustodyEvent
from .jcs import i_json_problem
from .lifecycle import FAILURE_REASONS, IDENTITY_METHODS, TRANSITIONS, EventType
from .pages import pages_problem

# Limits of one event (README, "Limits"): beyond them an event is rejected with a sentence.
SERVICE_EPOCH = "2020-01-01T00:00:00.000Z"  # no custody event of this service happened before
MAX_EVENT_BYTES = 64 * 1024  # the event's JSON
MAX_NOTE_CHARS = 2000  # data.note, data.identity.note
_encode = msgspec.json.encode
_BOUNDED_BYTES = 8 * 1024  # more than all members but data can take, escaped


def form_problem(event: CustodyEvent) -> str | None:
    """A sentence naming what makes the event unfit to hash, keep or show whatever its
    type (crafted or broken input), or None. Checked before its hash is computed."""
    if event.occurred_at < SERVICE_EPOCH:  # wire times of one fixed width compare as text
        return (
            f"occurred_at {event.occurred_at} is before 2020-01-01, when this service began: "
            "the device's clock is wrong; set it and record the event anew"
        )
    if event.location is not None and event.location.fix_at < SERVICE_EPOCH:
        return (
            f"location.fix_at {event.location.fix_at} is before 2020-01-01, when this service began: "
            "the GPS fix's time is wrong"
        )
    cp = event.counterparty
    if (
        cp is not None
        and type(cp.user_id) is int
        and (problem := i_json_problem(cp.user_id, "counterparty.user_id"))
    ):
        return problem
    data = event.data
    if problem := i_json_problem(data, "data"):
        return problem
    # data is the one member of unbounded size (the schema bounds the others to ~3 KiB):
    # the whole event is encoded only when data alone comes near the limit
    if (
        len(_encode(data)) > MAX_EVENT_BYTES - _BOUNDED_BYTES
        and (size := len(_encode(event))) > MAX_EVENT_BYTES
    ):
        return (
            f"the event is {size // 1024} KiB of JSON; an event may be at most {MAX_EVENT_BYTES // 1024} KiB"
        )
    identity = data.get("identity")
    if "identity" in data and not isinstance(identity, dict):
        return 'data.identity must be an object such as {"method": "id_last4"}'
    for path, note in (("data.note", data.get("note")), ("data.identity.note", (identity or {}).get("note"))):
        if isinstance(note, str) and len(note) > MAX_NOTE_CHARS:
            return f"{path} has {len(note)} characters; a note may have at most {MAX_NOTE_CHARS}"
    return None


def content_problem(event: CustodyEvent, shipment_kind: str) -> str | None:
    """A sentence naming the missing or wrong field, or None when the event is complete."""
    t = TRANSITIONS[event.type]
    data = event.data
    cp = event.counterparty
    if t.counterparty_signature:
        if cp is None:
            return f"{event.type} needs the other party: counterparty with name and role"
        if not event.attachments.signature:
            return f"{event.type} needs the other party's signature in attachments.signature"
    if event.location is None and not data.get("no_fix_reason"):
        return "location is null: say why in data.no_fix_reason"
    if event.type is EventType.DELIVERY_FAILED:
        reason = data.get("reason")
        if reason not in FAILURE_REASONS:
            return f"data.reason must be one of {', '.join(FAILURE_REASONS)}"
        if reason == "other" and not (isinstance(data.get("note"), str) and data["note"].strip()):
            return "data.reason 'other' needs a data.note saying what happened"
    if event.type is EventType.PICKED_UP and shipment_kind == "submission":
        comps = data.get("components")
        if not isinstance(comps, list) or not comps or not all(isinstance(c, str) for c in comps):
            return "picking up a submission needs data.components, the checklist of papers received"
        fee = data.get("fee_vnd")
        if type(fee) is not int or fee < 0:
            return "picking up a submission needs data.fee_vnd, the fee collected in VND (0 if none)"
    if event.type is EventType.DELIVERED and cp is not None and cp.role in ("citizen", "proxy"):
        identity = data.get("identity")
        method = identity.get("method") if isinstance(identity, dict) else None
        if method not in IDENTITY_METHODS:
            return f"delivery to a citizen needs data.identity.method: one of {', '.join(IDENTITY_METHODS)}"
        if method == "id_last4" and not cp.id_last4:
            return "identity by ID card needs counterparty.id_last4"
        note = identity.get("note") if isinstance(identity, dict) else None
        if method == "proxy" and not (isinstance(note, str) and note.strip()):
            return "delivery to a proxy needs data.identity.note (whose authorisation letter)"
    if event.type is EventType.REGISTERED and data.get("channel") == "counter":
        if problem := _counter_problem(event, shipment_kind):
            return problem
    if event.type is EventType.COLLECTED:
        if problem := _collected_problem(event, shipment_kind):
            return problem
    if event.type is EventType.DIGITISED and "pages" not in data:
        return "digitised needs data.pages: the PDF's and each page's SHA-256"
    if "pages" in data and (problem := pages_problem(data["pages"])):
        return problem
    if event.type is EventType.TRANSFERRED and cp is not None and cp.role not in ("courier", "hub", "clerk"):
        return "a transfer goes to a courier, a post-office hub or a clerk (counterparty.role)"
    return None


def _strings(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(c, str) and c.strip() for c in value)


def _counter_problem(event: CustodyEvent, shipment_kind: str) -> str | None:
    """A dossier handed in at a counter (`registered` with data.channel "counter"): the
    citizen who handed it in, their signature, the checklist and the fee (CUSTODY.md §3)."""
    data, cp = event.data, event.counterparty
    if shipment_kind != "submission":
        return "a dossier received at the counter is a submission (data.kind)"
    if cp is None or cp.role not in ("citizen", "proxy", "business"):
        return (
            "a counter reception needs the person who handed the dossier in: "
            "counterparty citizen, proxy or business"
        )
    if not event.attachments.signature:
        return "a counter reception needs the citizen's signature in attachments.signature"
    comps, missing = data.get("components"), data.get("missing_components")
    if not _strings(comps) or not comps:
        return "a counter reception needs data.components, the papers received (at least one)"
    if not _strings(missing):
        return "a counter reception needs data.missing_components, the papers not received ([] if none)"
    if missing and data.get("incomplete") is not True:
        return (
            "papers are missing (data.missing_components): the clerk must choose to receive the "
            "dossier incomplete (data.incomplete true)"
        )
    fee = data.get("fee_vnd")
    if type(fee) is not int or fee < 0:
        return "a counter reception needs data.fee_vnd, the fee taken in VND (0 if none)"
    return None


def _collected_problem(event: CustodyEvent, shipment_kind: str) -> str | None:
    """A result collected at the counter: who took it and how their identity was checked."""
    data, cp = event.data, event.counterparty
    if shipment_kind != "result":
        return "only a result is collected at the counter; a submission goes to the one-stop shop"
    if cp is None or cp.role not in ("citizen", "proxy"):
        return "collected needs the person who took the result: counterparty citizen or proxy"
    identity = data.get("identity")
    method = identity.get("method") if isinstance(identity, dict) else None
    if method not in ("id_last4", "proxy"):
        return "collected needs data.identity.method: id_last4 or proxy"
    if method == "id_last4" and not cp.id_last4:
        return "identity by ID card needs counterparty.id_last4"
    note = identity.get("note") if isinstance(identity, dict) else None
    if method == "proxy" and not (isinstance(note, str) and note.strip()):
        return "a result collected by a proxy needs data.identity.note (whose authorisation letter)"
    return None
