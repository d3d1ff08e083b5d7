"""Hypothesis strategies for JSON values that RFC 8785 can write (integers JSON carries exactly)."""

from __future__ import annotations

from hypothesis import strategies as st

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53 - 1), max_value=2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)


def json_values(
    keys: st.SearchStrategy[str] | None = None, max_size: int = 5, max_leaves: int = 30
) -> st.SearchStrategy:
    """Nested lists and objects of `json_scalars`; object keys from `keys` (any text)."""
    key_strategy = st.text() if keys is None else keys
    return st.recursive(
        json_scalars,
        lambda children: (
            st.lists(children, max_size=max_size) | st.dictionaries(key_strategy, children, max_size=max_size)
        ),
        max_leaves=max_leaves,
    )
