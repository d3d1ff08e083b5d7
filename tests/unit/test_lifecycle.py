import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared import lifecycle as lc
from shared.lifecycle import EventType, IllegalTransition, Role, State

ROLES = [r.value for r in Role]
TYPES = [t.value for t in EventType]


@given(st.lists(st.tuples(st.sampled_from(ROLES), st.sampled_from(TYPES)), max_size=40))
def test_random_walks_of_legal_events_stay_in_the_lifecycle(steps):
    state = lc.check("clerk", "registered", None)
    seen_final = None
    for role, etype in steps:
        if not lc.may(role, etype, state):
            continue
        new = lc.check(role, etype, state)
        assert new in set(State)
        if seen_final is not None:
            # nothing moves out of a final state; `confirmed` keeps it delivered
            assert new == seen_final
        if new in lc.FINAL_STATES:
            seen_final = new
        state = new


def test_table_examples():
    assert lc.check("courier", "picked_up", "registered") == State.IN_CUSTODY
    assert lc.check("courier", "delivery_failed", "in_custody") == State.IN_CUSTODY
    assert lc.check("courier", "delivered", "in_custody") == State.DELIVERED
    assert lc.check("citizen", "confirmed", "delivered") == State.DELIVERED
    assert lc.check("dispatcher", "cancelled", "registered") == State.CANCELLED
    # a result collected at the counter: from the shop's desk or a post office's counter, final
    assert lc.check("clerk", "collected", "registered") == State.COLLECTED
    assert lc.check("clerk", "collected", "in_custody") == State.COLLECTED
    with pytest.raises(IllegalTransition, match="may not record"):
        lc.check("courier", "collected", "in_custody")
    with pytest.raises(IllegalTransition, match="final state"):
        lc.check("clerk", "collected", "delivered")
    with pytest.raises(IllegalTransition, match="final state"):
        lc.check("courier", "picked_up", "delivered")
    with pytest.raises(IllegalTransition, match="may not record"):
        lc.check("courier", "cancelled", "registered")
    with pytest.raises(IllegalTransition, match="not allowed in state registered"):
        lc.check("courier", "delivered", "registered")
    with pytest.raises(IllegalTransition, match="unknown event type"):
        lc.check("courier", "teleported", "registered")


def test_signature_rules_match_custody_md():
    needs = {t for t, tr in lc.TRANSITIONS.items() if tr.counterparty_signature}
    assert needs == {"picked_up", "transferred", "delivered", "returned", "collected"}
    server = {t for t, tr in lc.TRANSITIONS.items() if tr.server_signed}
    assert server == {"registered", "cancelled", "confirmed", "digitised", "collected"}


def test_allowed_types_for_the_app():
    assert lc.allowed_types("courier", "registered") == [EventType.PICKED_UP]
    assert set(lc.allowed_types("courier", "in_custody")) == {
        "transferred",
        "delivery_failed",
        "delivered",
        "returned",
    }
    assert lc.allowed_types("courier", "delivered") == []


def test_a_courier_causes_digitised_but_never_signs_it():
    # the courier uploads pages at pickup; the server binds them and signs `digitised`
    assert lc.check("courier", "digitised", "in_custody") == State.IN_CUSTODY
    assert lc.TRANSITIONS[EventType.DIGITISED].server_signed
    assert all(not lc.TRANSITIONS[t].server_signed for s in State for t in lc.allowed_types("courier", s))
    assert EventType.DIGITISED not in lc.allowed_types("courier", "in_custody")
