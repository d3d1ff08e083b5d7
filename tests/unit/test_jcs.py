import math

import pytest
import rfc8785
from hypothesis import given
from hypothesis import strategies as st

from shared.jcs import canonicalize, es6_number
from tests.unit.json_strategies import json_values


@given(json_values())
def test_matches_independent_rfc8785_implementation(value):
    assert canonicalize(value) == rfc8785.dumps(value)


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_numbers_follow_ecmascript(x):
    assert es6_number(x) == rfc8785.dumps(x).decode()


def test_rfc8785_examples():
    # RFC 8785 appendix B examples
    cases = {
        0.0: "0",
        5e-324: "5e-324",
        1.7976931348623157e308: "1.7976931348623157e+308",
        9007199254740992.0: "9007199254740992",
        1e21: "1e+21",
        999999999999999700000.0: "999999999999999700000",
        0.000001: "0.000001",
        1e-7: "1e-7",
        295147905179352830000.0: "295147905179352830000",
    }
    for x, text in cases.items():
        assert es6_number(x) == text
    assert es6_number(-0.0) == "0"
    # keys sort by UTF-16 code units, not code points
    assert canonicalize({"\ufb33": 2, "\U0001f600": 1}) == '{"\U0001f600":1,"\ufb33":2}'.encode()


def test_rejects_what_json_cannot_say():
    with pytest.raises(ValueError):
        canonicalize({"x": math.nan})
    with pytest.raises(ValueError):
        canonicalize(2**60)
