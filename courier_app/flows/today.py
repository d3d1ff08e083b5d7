"""Today's stops: the courier's assignments, ordered into a route from where they stand.

The list comes from the server (`ApiClient.assignments`) and is remembered in the outbox, so the
app opens with yesterday's list when there is no signal. What this phone recorded but has
not synced yet is laid over the server's state (a picked-up envelope is in custody at once),
and the next event of each shipment links to this phone's own latest event.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

import msgspec

from shared import geo, labels, lifecycle
from shared.api import Assignment, AssignmentList, Keys, PendingHandover, Stop

from ..api import Refused, ServerUnavailable
from ..outbox import Outbox
from ..ports import Clock

DUE_SOON = timedelta(hours=24)
CACHE_KEY = "assignments"
KEYS_KEY = "keys"

__all__ = ["Assignment", "AssignmentList", "Row", "Stop", "TodayFlow"]


_decode = msgspec.json.Decoder(AssignmentList)
_decode_keys = msgspec.json.Decoder(Keys)
_encode = msgspec.json.Encoder()


@dataclass
class Row:
    """One stop as the Today screen shows it."""

    a: Assignment
    state: str  # after this phone's own unsynced events
    head: str | None  # the `prev` of the next event
    distance_m: float | None
    late: bool
    due_soon: bool
    unsynced: int  # events of this shipment waiting in the outbox
    attempts: int = 0  # failed delivery attempts, the server's and this phone's unsynced ones

    @property
    def stop(self) -> Stop:
        """Where the courier goes next: once this phone has picked the envelope up (synced
        or not), its delivery stop."""
        if self.state != lifecycle.State.REGISTERED and self.a.state == lifecycle.State.REGISTERED:
            return self.a.next_stop or self.a.stop
        return self.a.stop

    @property
    def done(self) -> bool:
        return self.state not in lifecycle.OPEN_STATES

    @property
    def action(self) -> str:
        """pickup | handover | delivery | done: what the courier does at this stop."""
        if self.done:
            return "done"
        if self.state == lifecycle.State.REGISTERED:
            return "pickup"
        if self.must_return:
            return "return"
        return self.onward

    @property
    def onward(self) -> str:
        """handover | delivery: the way forward of an envelope in custody (another attempt)."""
        return "handover" if self.a.kind == "submission" else "delivery"

    @property
    def must_return(self) -> bool:
        """Delivery failed often enough that the envelope goes back (PRODUCT.md lifecycle)."""
        return self.state == lifecycle.State.IN_CUSTODY and self.attempts >= lifecycle.RETURN_AFTER_ATTEMPTS


@dataclass
class TodayFlow:
    outbox: Outbox
    fetch: Callable[[], AssignmentList]  # raises api.ServerUnavailable offline
    clock: Clock
    fetch_handovers: Callable[[], list[PendingHandover]] | None = None
    fetch_keys: Callable[[], Keys] | None = None
    data: AssignmentList | None = None
    keys: Keys | None = None  # the server's key set, refreshed whenever online
    handovers: list[PendingHandover] = field(default_factory=list)
    offline: bool = False
    position: tuple[float, float] | None = None

    def load_cached(self) -> None:
        if self.data is None and (blob := self.outbox.recall(CACHE_KEY)) is not None:
            self.data = _decode.decode(blob)
        if self.keys is None and (blob := self.outbox.recall(KEYS_KEY)) is not None:
            self.keys = _decode_keys.decode(blob)

    def refresh(self) -> None:
        """Ask the server; without signal keep the remembered list (and say so)."""
        try:
            data = self.fetch()
        except (ServerUnavailable, Refused):
            self.offline = True
            self.load_cached()
            return
        self.data = data
        self.outbox.remember(CACHE_KEY, _encode.encode(data))
        self.offline = False
        if self.fetch_handovers is not None:
            try:
                self.handovers = self.fetch_handovers()
            except (ServerUnavailable, Refused):
                self.handovers = []
        self.refresh_keys()

    def refresh_keys(self) -> bool:
        """The label keys (a rotation, a revocation) and the seal key; kept for offline.
        False when the server could not be asked."""
        if self.fetch_keys is None:
            return False
        try:
            keys = self.fetch_keys()
        except (ServerUnavailable, Refused):
            return False
        self.keys = keys
        self.outbox.remember(KEYS_KEY, _encode.encode(keys))
        return True

    def fresh_label_keys(self) -> labels.LabelKeySet | None:
        """The label keys just fetched from the server; None offline."""
        return self.label_keys if self.refresh_keys() else None

    def counter_handovers(self) -> list[PendingHandover]:
        """Batches signed for on the console that still wait for this phone's events."""
        return [h for h in self.handovers if any(self._in_custody(c) for c in h.codes)]

    def _in_custody(self, code: str) -> bool:
        row = self.row_for(code)
        return row is not None and row.state == lifecycle.State.IN_CUSTODY

    @property
    def label_keys(self) -> labels.LabelKeySet:
        """Current, retired and revoked label keys; before the set was fetched, the
        current key the assignments name."""
        found: list[labels.LabelKey] = []
        if self.keys is not None:
            found = [
                labels.LabelKey(k.public_key, k.status, k.valid_from, k.valid_until)
                for k in self.keys.label_keys
            ]
            if not found:  # an older server: the current key and the retired ones
                found = [labels.LabelKey(self.keys.label_public_key, "current")] + [
                    labels.LabelKey(str(k["public_key"]), "retired", None, k.get("retired_at"))
                    for k in self.keys.retired
                    if k.get("name") == "label"
                ]
        known = {k.public_key for k in found}
        if self.data and self.data.label_public_key not in known:
            found.append(labels.LabelKey(self.data.label_public_key, "current"))
        return labels.LabelKeySet.of(found)

    @property
    def seal_public_key(self) -> str | None:
        return self.keys.seal_public_key if self.keys and self.keys.seal_public_key else None

    def find(self, code: str) -> Assignment | None:
        for a in self.data.items if self.data else []:
            if a.code == code:
                return a
        return None

    def local(self, a: Assignment) -> tuple[str, str | None, int, int]:
        """(state, head, unsynced, failed attempts) once this phone's own events since the
        server's head are applied."""
        state, head = a.state, a.head
        waiting, attempts = 0, a.attempts
        for type_, prev, digest in self.outbox.local_events(a.code):
            if prev != head:
                continue  # already part of the server's head, or on another branch the server will reject
            try:
                state = lifecycle.check("courier", type_, state)
            except lifecycle.IllegalTransition:
                break
            head = digest
            waiting += 1
            attempts += type_ == lifecycle.EventType.DELIVERY_FAILED
        return state, head, waiting, attempts

    def row_for(self, code: str) -> Row | None:
        """One stop by its code, without ordering the whole route."""
        a = self.find(code)
        return self.row(a) if a is not None else None

    def row(self, a: Assignment) -> Row:
        now = self.clock()
        state, head, waiting, attempts = self.local(a)
        open_ = state in lifecycle.OPEN_STATES
        row = Row(
            a,
            state,
            head,
            None,
            late=open_ and a.due_at < now,
            due_soon=open_ and now <= a.due_at < now + DUE_SOON,
            unsynced=waiting,
            attempts=attempts,
        )
        point = row.stop.point
        row.distance_m = geo.distance_m(self.position, point) if self.position and point else None
        return row

    def rows(self) -> list[Row]:
        """Open stops in route order from the current position, then what is done today."""
        items = self.data.items if self.data else []
        rows = [self.row(a) for a in items]
        open_rows = [r for r in rows if not r.done]
        order = geo.order_stops(self.position, [r.stop.point for r in open_rows])
        return [open_rows[i] for i in order] + [r for r in rows if r.done]

    def assigned_codes(self) -> set[str]:
        return {a.code for a in self.data.items} if self.data else set()
