"""The four things a courier records — pickup, handover, delivery, failed attempt — each
ending in signed events (CUSTODY.md §3) written to the outbox with their attachments.

A flow knows what is still missing (`missing()` gives i18n keys, first one first), so the
screen can say exactly what to do next; `finish()` refuses to sign an incomplete record.
The same content rules the server applies (`shared.rules`) are checked before signing, so
an event the server would reject for its content never leaves the phone.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from shared import lifecycle
from shared.api import PendingHandover, PinCheckResult
from shared.crypto import SigningKey
from shared.events import CustodyEvent, new_event_id, sign_event
from shared.geo import distance_m
from shared.pins import seal_pin, well_formed
from shared.rules import content_problem
from shared.timeutil import to_wire

from ..api import Refused, ServerUnavailable
from ..outbox import Attachment, Outbox
from ..ports import Clock, Fix
from .signature import SignaturePad
from .today import Row, TodayFlow

FAR_FROM_ADDRESS_M = 500.0
MAX_PHOTOS = 3
# why a handover is recorded more than 500 m from the address on record (data.distance_reason)
DISTANCE_REASONS = ("met_elsewhere", "address_wrong", "gps_poor", "other")
# why a code was typed instead of scanned (data.identified_reason)
TYPED_REASONS = ("label_damaged", "camera_failed", "no_label", "other")


@dataclass(frozen=True)
class Identified:
    """How the envelope in hand was identified before its form opened (data.identified_by)."""

    by: str  # scan | typed
    reason: str | None = None  # for a typed code: one of TYPED_REASONS

    def data(self) -> dict[str, Any]:
        out: dict[str, Any] = {"identified_by": self.by}
        if self.reason:
            out["identified_reason"] = self.reason
        return out


SCANNED = Identified("scan")


class Incomplete(ValueError):
    """`finish()` was called with something missing; args[0] is the i18n key."""


@dataclass(frozen=True)
class Signed:
    """The other party's signature as an event refers to it: the PNG's and the strokes'
    hashes, and the bytes still to upload (none when the server already holds them)."""

    png: str
    strokes: str | None
    attachments: tuple[Attachment, ...] = ()


def signed_on_phone(pad: SignaturePad) -> Signed:
    png, strokes = (Attachment(*a) for a in pad.attachments())
    return Signed(png.sha256, strokes.sha256, (png, strokes))


@dataclass
class Recorder:
    """Signs events as this courier's device and keeps them, with attachments, in the outbox."""

    outbox: Outbox
    key: SigningKey
    actor: str  # "courier:42"
    clock: Clock

    def record(self, row: Row, type_: str, **kw: Any) -> CustodyEvent:
        event, attachments = self.build(row, type_, **kw)
        self.outbox.put(event, attachments)
        return event

    def build(
        self,
        row: Row,
        type_: str,
        *,
        counterparty: dict[str, Any] | None,
        fix: Fix | None,
        data: dict[str, Any],
        signed: Signed | None = None,
        photos: Sequence[bytes] = (),
    ) -> tuple[CustodyEvent, list[Attachment]]:
        """Sign one event; raises Incomplete when the server would refuse its content."""
        lifecycle.check("courier", type_, row.state)
        attachments = list(signed.attachments) if signed else []
        sig_hash = signed.png if signed else None
        data = dict(data)
        if signed and signed.strokes:
            data["signature_strokes"] = signed.strokes
        photo_hashes = []
        for jpeg in photos:
            digest = hashlib.sha256(jpeg).hexdigest()
            attachments.append(Attachment(digest, "image/jpeg", jpeg))
            photo_hashes.append(digest)
        if fix is None:
            data.setdefault("no_fix_reason", "no GPS fix on the device")
        event = sign_event(
            self.key,
            id=new_event_id(),
            shipment=row.a.code,
            type=type_,
            occurred_at=to_wire(self.clock()),
            actor=self.actor,
            counterparty=counterparty,
            location=fix.wire() if fix else None,
            attachments={"signature": sig_hash, "photos": photo_hashes},
            data=data,
            prev=row.head,
        )
        if (problem := content_problem(event, row.a.kind)) is not None:
            raise Incomplete(problem)
        return event, attachments


def _party(name: str, role: str, id_last4: str | None = None, unit: str | None = None) -> dict[str, Any]:
    party: dict[str, Any] = {"name": name.strip(), "role": role}
    if id_last4:
        party["id_last4"] = id_last4
    if unit:
        party["unit"] = unit
    return party


def _last4_ok(text: str) -> bool:
    return len(text) == 4 and text.isdigit()


@dataclass
class _Base:
    row: Row
    recorder: Recorder
    fix: Fix | None = None
    located: bool = False  # the GPS was asked (a None fix after asking is recorded as such)
    photos: list[bytes] = field(default_factory=list)
    error: str | None = None
    identified: Identified | None = None  # None: the form was opened without the envelope
    distance_reason: str | None = None
    distance_note: str = ""

    def set_fix(self, fix: Fix | None) -> None:
        self.fix, self.located = fix, True

    def _door_missing(self) -> list[str]:
        """What every record made at a door needs: the envelope identified, and a reason
        when the GPS puts the courier more than 500 m from the address."""
        out = []
        if self.identified is None:
            out.append("flow.scan_first")
        if self.far_from_address:
            if self.distance_reason not in DISTANCE_REASONS:
                out.append("flow.distance_reason_missing")
            elif self.distance_reason == "other" and not self.distance_note.strip():
                out.append("flow.distance_note_missing")
        return out

    def _door_data(self) -> dict[str, Any]:
        data = self.identified.data() if self.identified else {}
        if self.far_from_address and self.distance_reason:
            data["distance_reason"] = self.distance_reason
            if self.distance_note.strip():
                data["distance_note"] = self.distance_note.strip()
        return data

    def add_photo(self, jpeg: bytes) -> None:
        if len(self.photos) < MAX_PHOTOS:
            self.photos.append(jpeg)

    @property
    def distance_from_address_m(self) -> float | None:
        point = self.row.stop.point
        return distance_m(self.fix.point, point) if self.fix and point else None

    @property
    def far_from_address(self) -> bool:
        d = self.distance_from_address_m
        return d is not None and d > FAR_FROM_ADDRESS_M

    def missing(self) -> list[str]:
        raise NotImplementedError

    def _check(self) -> None:
        if problems := self.missing():
            self.error = problems[0]
            raise Incomplete(problems[0])
        self.error = None


@dataclass
class PickupFlow(_Base):
    """Taking an envelope: a citizen's dossier at their door, or a result at the one-stop shop."""

    pad: SignaturePad = field(default_factory=lambda: SignaturePad(360, 180))
    checked: set[int] = field(default_factory=set)
    fee_text: str = ""
    giver_name: str = ""
    giver_id_last4: str = ""

    def __post_init__(self) -> None:
        if self.from_citizen:  # the citizen on record; at a one-stop shop, a person to name
            self.giver_name = self.giver_name or self.row.stop.contact_name
        self.fee_text = self.fee_text or str(self.row.a.fee_vnd)

    @property
    def institution(self) -> str:
        """Where the envelope is taken from, when it is a unit (the one-stop shop)."""
        return "" if self.from_citizen else self.row.stop.contact_name

    @property
    def from_citizen(self) -> bool:
        return self.row.a.kind == "submission" and not self.at_counter

    @property
    def at_counter(self) -> bool:
        """A dossier handed in at a counter: taken from its clerk, checked and paid there."""
        return self.row.a.kind == "submission" and self.row.a.channel == "counter"

    @property
    def components(self) -> list[str]:
        return [c if isinstance(c, str) else str(c.get("name", c)) for c in self.row.a.components]

    def toggle(self, index: int) -> None:
        self.checked ^= {index}

    def fee(self) -> int | None:
        text = self.fee_text.replace(".", "").replace(",", "").replace(" ", "")
        return int(text) if text.isdigit() else None

    def missing(self) -> list[str]:
        out = self._door_missing()
        if self.from_citizen:
            if self.components and not self.checked:
                out.append("flow.components_missing")
            if self.fee() is None:
                out.append("flow.fee_invalid")
        if not self.giver_name.strip():
            out.append("flow.name_missing")
        elif self.institution and self.giver_name.strip().casefold() == self.institution.strip().casefold():
            out.append("flow.name_is_institution")
        if self.from_citizen and not _last4_ok(self.giver_id_last4):
            out.append("flow.id_last4_invalid")
        if (p := self.pad.problem()) is not None:
            out.append(p)
        return out

    def finish(self) -> CustodyEvent:
        self._check()
        data = self._door_data()
        if self.from_citizen:
            data |= {"components": [self.components[i] for i in sorted(self.checked)], "fee_vnd": self.fee()}
            party = _party(self.giver_name, "citizen", self.giver_id_last4)
        else:  # the clerk is a person; the shop (or the counter's post office) is where they work
            party = _party(self.giver_name, "clerk", unit=self.row.stop.contact_unit)
            data["institution"] = self.institution
            if self.at_counter:  # the checklist was ticked and the fee taken at the counter
                data |= {"components": self.components, "fee_vnd": 0}
        return self.recorder.record(
            self.row,
            "picked_up",
            counterparty=party,
            fix=self.fix,
            data=data,
            signed=signed_on_phone(self.pad),
            photos=self.photos,
        )


IDENTITY_METHODS = ("id_last4", "pin", "proxy")
PinCheck = Callable[[str, str], PinCheckResult]  # (code, sealed PIN) -> the server's answer


@dataclass
class DeliveryFlow(_Base):
    """Handing a result to the citizen at their door: identity, signature, GPS, optional photo.

    Identity by ID card is checked against the last 4 digits on record; a mismatch stops the
    flow until the courier asks again, switches to the PIN or a proxy, or explicitly hands
    over anyway with a note (`data.identity.override`). A PIN is never checked on the phone:
    it is sealed to the server's key, checked online at once when there is signal
    (`check_online`), and otherwise by the server when the event syncs.
    """

    pad: SignaturePad = field(default_factory=lambda: SignaturePad(360, 180))
    method: str = "id_last4"
    receiver_name: str = ""
    id_last4: str = ""
    pin: str = ""
    proxy_note: str = ""
    seal_key: str | None = None  # the server's X25519 seal key (GET /api/v1/keys)
    check_online: PinCheck | None = None
    pin_status: str | None = None  # right | wrong | locked | offline, for `pin_checked`
    pin_checked: str = ""  # the PIN that pin_status is about
    override: bool = False  # hand over despite an ID mismatch (the courier chose so)
    override_note: str = ""

    def __post_init__(self) -> None:
        self.receiver_name = self.receiver_name or self.row.stop.contact_name

    @property
    def id_on_record(self) -> str | None:
        return self.row.stop.id_last4

    @property
    def id_mismatch(self) -> bool:
        """The typed 4 digits are well formed and are not the ones on record."""
        expected = self.id_on_record
        return bool(expected) and _last4_ok(self.id_last4) and self.id_last4 != expected

    def ask_again(self) -> None:
        self.id_last4, self.override, self.override_note = "", False, ""

    def missing(self) -> list[str]:
        out = self._door_missing()
        if not self.receiver_name.strip():
            out.append("flow.name_missing")
        if self.method == "id_last4":
            if not _last4_ok(self.id_last4):
                out.append("flow.id_last4_invalid")
            elif self.id_mismatch and not (self.override and self.override_note.strip()):
                out.append("flow.id_mismatch")
        elif self.method == "pin":
            if not well_formed(self.pin):
                out.append("flow.pin_invalid")
            elif not self.seal_key:
                out.append("flow.pin_no_key")
            elif self._status() is None:
                out.append("flow.pin_unchecked")
            elif self._status() == "wrong":
                out.append("flow.pin_wrong")
            elif self._status() == "locked":
                out.append("flow.pin_locked")
        elif self.method == "proxy" and not self.proxy_note.strip():
            out.append("flow.proxy_note_missing")
        if (p := self.pad.problem()) is not None:
            out.append(p)
        return out

    def _status(self) -> str | None:
        return self.pin_status if self.pin_checked == self.pin else None

    def sealed_pin(self) -> str:
        assert self.seal_key is not None
        return seal_pin(self.seal_key, self.row.a.code, self.pin)

    def check_pin(self) -> str | None:
        """Ask the server now (blocking: call off the UI thread). right | wrong | locked |
        offline ("will be checked when online"); None when there is nothing to check."""
        if not (well_formed(self.pin) and self.seal_key):
            return None
        status = "offline"
        if self.check_online is not None:
            try:
                status = "right" if self.check_online(self.row.a.code, self.sealed_pin()).ok else "wrong"
            except Refused as exc:
                status = "locked" if exc.status == 429 else "offline"
            except ServerUnavailable:
                status = "offline"
        self.pin_status, self.pin_checked = status, self.pin
        return status

    def finish(self) -> CustodyEvent:
        if self.method == "pin" and self._status() is None:
            self.check_pin()
        self._check()
        identity: dict[str, Any] = {"method": self.method}
        role = "citizen"
        if self.method == "proxy":
            identity["note"] = self.proxy_note.strip()
            role = "proxy"
        elif self.method == "pin":
            identity["pin_sealed"] = self.sealed_pin()
            identity["pin_checked"] = "online" if self._status() == "right" else "on_sync"
        elif self.id_mismatch:
            identity["override"] = self.override_note.strip()
        party = _party(self.receiver_name, role, self.id_last4 if self.method == "id_last4" else None)
        return self.recorder.record(
            self.row,
            "delivered",
            counterparty=party,
            fix=self.fix,
            data={**self._door_data(), "identity": identity},
            signed=signed_on_phone(self.pad),
            photos=self.photos,
        )


FAILURE_REASONS = lifecycle.FAILURE_REASONS


@dataclass
class FailedAttemptFlow(_Base):
    reason: str | None = None
    note: str = ""

    def missing(self) -> list[str]:
        out = ["flow.scan_first"] if self.identified is None else []
        if self.reason not in FAILURE_REASONS:
            return [*out, "flow.reason_missing"]
        if self.reason == "other" and not self.note.strip():
            return [*out, "flow.note_missing"]
        return out

    def finish(self) -> CustodyEvent:
        self._check()
        data: dict[str, Any] = {**(self.identified.data() if self.identified else {}), "reason": self.reason}
        if self.note.strip():
            data["note"] = self.note.strip()
        return self.recorder.record(
            self.row, "delivery_failed", counterparty=None, fix=self.fix, data=data, photos=self.photos
        )


RETURN_TO = lifecycle.RETURN_TO


@dataclass
class ReturnFlow(_Base):
    """After RETURN_AFTER_ATTEMPTS failed delivery attempts the envelope goes back where it
    came from (PRODUCT.md lifecycle: in_custody → returned, final): to the sender — the
    one-stop shop's clerk for a result, the citizen for a dossier — or to the post office's
    clerk. The receiver names themselves and signs; the event says where it went
    (`data.return_to`) and after how many attempts (`data.attempts`)."""

    pad: SignaturePad = field(default_factory=lambda: SignaturePad(360, 180))
    to: str | None = None
    receiver_name: str = ""
    receiver_unit: str = ""

    @property
    def receiver_role(self) -> str:
        return "citizen" if self.to == "sender" and self.row.a.kind == "submission" else "clerk"

    def missing(self) -> list[str]:
        out = ["flow.scan_first"] if self.identified is None else []
        if self.to not in RETURN_TO:
            out.append("return.to_missing")
        if not self.receiver_name.strip():
            out.append("flow.name_missing")
        if (p := self.pad.problem()) is not None:
            out.append(p)
        return out

    def finish(self) -> CustodyEvent:
        self._check()
        data: dict[str, Any] = {
            **(self.identified.data() if self.identified else {}),
            "return_to": self.to,
            "attempts": self.row.attempts,
        }
        unit = self.receiver_unit.strip() or None if self.receiver_role == "clerk" else None
        return self.recorder.record(
            self.row,
            "returned",
            counterparty=_party(self.receiver_name, self.receiver_role, unit=unit),
            fix=self.fix,
            data=data,
            signed=signed_on_phone(self.pad),
            photos=self.photos,
        )


RECEIVERS = ("clerk", "courier", "hub")


@dataclass
class HandoverFlow:
    """Several envelopes handed over at once: the receiver identifies once and signs once,
    and each envelope gets its own event carrying that one signature.

    To a one-stop shop's clerk a dossier is `delivered` (it has arrived) and a result that
    could not be delivered is `returned`; to another courier or a post-office hub it is
    `transferred`.
    """

    recorder: Recorder
    rows: list[Row] = field(default_factory=list)
    receiver_role: str = "clerk"
    receiver_name: str = ""
    receiver_unit: str = ""
    pad: SignaturePad = field(default_factory=lambda: SignaturePad(360, 180))
    fix: Fix | None = None
    located: bool = False
    error: str | None = None

    def set_fix(self, fix: Fix | None) -> None:
        self.fix, self.located = fix, True

    def add(self, row: Row) -> str | None:
        """Add an envelope; an i18n key when it cannot be handed over now."""
        if any(r.a.code == row.a.code for r in self.rows):
            return "handover.already_added"
        if row.state != lifecycle.State.IN_CUSTODY:
            return "handover.not_in_custody"
        self.rows.append(row)
        return None

    def remove(self, code: str) -> None:
        self.rows = [r for r in self.rows if r.a.code != code]

    def event_type(self, row: Row) -> str:
        if self.receiver_role == "clerk":
            return "delivered" if row.a.kind == "submission" else "returned"
        return "transferred"

    def missing(self) -> list[str]:
        out = []
        if not self.rows:
            out.append("handover.empty")
        if self.receiver_role not in RECEIVERS:
            out.append("handover.receiver_missing")
        if not self.receiver_name.strip():
            out.append("flow.name_missing")
        if (p := self.pad.problem()) is not None:
            out.append(p)
        return out

    def finish(self) -> list[CustodyEvent]:
        if problems := self.missing():
            self.error = problems[0]
            raise Incomplete(problems[0])
        signed = signed_on_phone(self.pad)  # one signature for every envelope
        party = _party(self.receiver_name, self.receiver_role, unit=self.receiver_unit.strip() or None)
        built = [
            self.recorder.build(
                row,
                self.event_type(row),
                counterparty=party,
                fix=self.fix,
                data={},
                signed=signed,
            )
            for row in self.rows
        ]
        self.recorder.outbox.put_many(built)  # all envelopes or none
        return [event for event, _ in built]


@dataclass
class CounterHandoverFlow:
    """A batch the one-stop shop's clerk received and signed for on the console
    (`ApiClient.handovers`): the courier confirms it, and the phone signs one event per
    envelope carrying the clerk's signature, exactly as if the clerk had signed on the phone."""

    recorder: Recorder
    pending: PendingHandover
    rows: list[Row]  # today's rows for those codes that this phone can still hand over
    fix: Fix | None = None
    located: bool = False

    def set_fix(self, fix: Fix | None) -> None:
        self.fix, self.located = fix, True

    @classmethod
    def for_pending(
        cls, recorder: Recorder, pending: PendingHandover, today: TodayFlow
    ) -> CounterHandoverFlow:
        rows = [today.row_for(code) for code in pending.codes]
        return cls(recorder, pending, [r for r in rows if r and r.state == lifecycle.State.IN_CUSTODY])

    def finish(self) -> list[CustodyEvent]:
        if not self.rows:
            raise Incomplete("handover.nothing_left")
        party = dict(self.pending.counterparty)
        signed = Signed(self.pending.signature, self.pending.strokes)  # held by the server
        built = [
            self.recorder.build(
                row,
                "delivered" if row.a.kind == "submission" else "returned",
                counterparty=party,
                fix=self.fix,
                data={"handover": self.pending.id},
                signed=signed,
            )
            for row in self.rows
        ]
        self.recorder.outbox.put_many(built)
        return [event for event, _ in built]
