"""The shipment lifecycle as one table (PRODUCT.md "Lifecycle", CUSTODY.md §3).

`check(role, type, state)` is the single answer to "may ROLE record TYPE on a
shipment in STATE", used by the server before it accepts an event and by the
courier app before it offers a flow.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class State(StrEnum):
    REGISTERED = "registered"
    IN_CUSTODY = "in_custody"
    DELIVERED = "delivered"
    RETURNED = "returned"
    CANCELLED = "cancelled"
    COLLECTED = "collected"  # a result the citizen collected at a counter (final)


class EventType(StrEnum):
    REGISTERED = "registered"
    PICKED_UP = "picked_up"
    TRANSFERRED = "transferred"
    DELIVERY_FAILED = "delivery_failed"
    DELIVERED = "delivered"
    RETURNED = "returned"
    CANCELLED = "cancelled"
    CONFIRMED = "confirmed"
    DIGITISED = "digitised"  # the dossier's pages were captured and bound into one PDF (data.pages)
    COLLECTED = "collected"  # the citizen collected a result at a counter (signature, ID check)


class Role(StrEnum):
    COURIER = "courier"
    CLERK = "clerk"
    DISPATCHER = "dispatcher"
    ADMIN = "admin"
    AUDITOR = "auditor"
    CITIZEN = "citizen"


FINAL_STATES = frozenset({State.DELIVERED, State.RETURNED, State.CANCELLED, State.COLLECTED})
OPEN_STATES = frozenset({State.REGISTERED, State.IN_CUSTODY})
FAILURE_REASONS = ("not_home", "refused", "wrong_address", "unidentified", "other")
IDENTITY_METHODS = ("id_last4", "pin", "proxy")
# after this many failed delivery attempts the envelope goes back where it came from
# (in_custody → returned): the app prompts the return, the console board flags it
RETURN_AFTER_ATTEMPTS = 3
RETURN_TO = ("sender", "post_office")  # data.return_to of a `returned` event


@dataclass(frozen=True, slots=True)
class Transition:
    type: EventType
    from_states: frozenset[State | None]  # None: the shipment does not exist yet
    to_state: State | None  # None: the state does not change (an open shipment stays open)
    roles: frozenset[Role]
    counterparty_signature: bool  # the other party must sign (CUSTODY.md §3)
    server_signed: bool  # recorded by the server with its event key, not by a device


def _t(
    type_: EventType,
    from_: set[State | None],
    to: State | None,
    roles: set[Role],
    signature: bool,
    server: bool,
) -> Transition:
    return Transition(type_, frozenset(from_), to, frozenset(roles), signature, server)


S, E, R = State, EventType, Role
TRANSITIONS: dict[EventType, Transition] = {
    t.type: t
    for t in (
        _t(E.REGISTERED, {None}, S.REGISTERED, {R.CLERK, R.DISPATCHER}, False, True),
        _t(E.PICKED_UP, {S.REGISTERED}, S.IN_CUSTODY, {R.COURIER}, True, False),
        # a dispatcher's transfer is the recovery path: the server records it, for a courier
        # whose handover never arrived (shipments.service.assign)
        _t(E.TRANSFERRED, {S.IN_CUSTODY}, S.IN_CUSTODY, {R.COURIER, R.DISPATCHER}, True, False),
        _t(E.DELIVERY_FAILED, {S.IN_CUSTODY}, S.IN_CUSTODY, {R.COURIER}, False, False),
        _t(E.DELIVERED, {S.IN_CUSTODY}, S.DELIVERED, {R.COURIER}, True, False),
        _t(E.RETURNED, {S.IN_CUSTODY}, S.RETURNED, {R.COURIER, R.CLERK}, True, False),
        _t(E.CANCELLED, {S.REGISTERED}, S.CANCELLED, {R.CLERK, R.DISPATCHER}, False, True),
        _t(E.CONFIRMED, {S.DELIVERED}, S.DELIVERED, {R.CITIZEN}, False, True),
        # pages scanned or uploaded at the counter, or photographed by the courier at pickup,
        # bound into a PDF and signed by the server (CUSTODY.md §4.1): a courier causes it by
        # uploading pages, never signs it (sync refuses a device-signed one)
        _t(E.DIGITISED, {S.REGISTERED, S.IN_CUSTODY}, None, {R.CLERK, R.DISPATCHER, R.COURIER}, False, True),
        # a result handed to the citizen at a post-office counter or the one-stop shop's desk by
        # its clerk, recorded by the server: ends the result's chain (CUSTODY.md §3)
        _t(E.COLLECTED, {S.REGISTERED, S.IN_CUSTODY}, S.COLLECTED, {R.CLERK}, True, True),
    )
}
del S, E, R


class IllegalTransition(ValueError):
    """The lifecycle forbids this event here; the message says which rule."""


_ALLOWED: dict[tuple[str, str, str | None], State] = {}  # answers already given (the table is fixed)


def check(role: str, event_type: str, state: str | None) -> State:
    """Return the state after `role` records `event_type` on a shipment in `state`.

    Raises IllegalTransition with a sentence naming the rule that forbids it.
    """
    key = (role, event_type, state)
    if (allowed := _ALLOWED.get(key)) is not None:
        return allowed
    _ALLOWED[key] = _check(role, event_type, state)
    return _ALLOWED[key]


def _check(role: str, event_type: str, state: str | None) -> State:
    try:
        t = TRANSITIONS[EventType(event_type)]
    except ValueError:
        raise IllegalTransition(f"unknown event type {event_type!r}") from None
    try:
        r = Role(role)
    except ValueError:
        raise IllegalTransition(f"unknown role {role!r}") from None
    if r not in t.roles:
        allowed = ", ".join(sorted(t.roles))
        raise IllegalTransition(f"a {r} may not record {t.type}; only: {allowed}")
    current = State(state) if state is not None else None
    if current not in t.from_states:
        if current is None:
            raise IllegalTransition(f"{t.type} needs an existing shipment")
        if current in FINAL_STATES and t.type is not EventType.CONFIRMED:
            raise IllegalTransition(f"the shipment is {current}, a final state: nothing moves out of it")
        allowed = ", ".join(sorted(s or "new" for s in t.from_states))
        raise IllegalTransition(f"{t.type} is not allowed in state {current} (only in: {allowed})")
    if t.to_state is None:
        assert current is not None  # from_states of a state-keeping type never include "new"
        return current
    return t.to_state


def may(role: str, event_type: str, state: str | None) -> bool:
    try:
        check(role, event_type, state)
    except IllegalTransition:
        return False
    return True


def allowed_types(role: str, state: str | None) -> list[EventType]:
    """Event types `role` may sign on a device now (the app offers only these flows): the
    server-signed ones (a courier's `digitised`) are caused through their own routes."""
    return [t for t, tr in TRANSITIONS.items() if not tr.server_signed and may(role, t, state)]
