import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared import codes

code_bodies = st.text(alphabet="0123456789", min_size=12, max_size=12)


def with_check(body: str) -> str:
    return body + str(codes.damm_digit(body))


def test_known_damm_vector():
    # Damm's own example: 572 -> check digit 4
    assert codes.damm_digit("572") == 4
    assert codes.damm_digit("5724") == 0


@given(code_bodies)
def test_every_single_digit_typo_is_rejected(body):
    code = with_check(body)
    assert codes.is_valid(code)
    for i, ch in enumerate(code):
        for d in "0123456789":
            if d != ch:
                typo = code[:i] + d + code[i + 1 :]
                assert not codes.is_valid(typo), typo


@given(code_bodies)
def test_every_adjacent_swap_is_rejected(body):
    code = with_check(body)
    for i in range(len(code) - 1):
        if code[i] != code[i + 1]:
            swapped = code[:i] + code[i + 1] + code[i] + code[i + 2 :]
            assert not codes.is_valid(swapped), swapped


def test_new_codes_are_valid_and_not_sequential():
    made = [codes.new_code() for _ in range(2000)]
    assert all(codes.is_valid(c) for c in made)
    assert len(set(made)) == len(made)
    values = sorted(int(c[:-1]) for c in made)
    gaps = {b - a for a, b in itertools.pairwise(values)}
    assert len(gaps) > 1000  # random, not a counter


def test_normalize_accepts_grouped_and_rejects_with_sentences():
    code = codes.new_code()
    assert codes.normalize(codes.group(code)) == code
    assert codes.normalize(" " + code[:4] + "-" + code[4:] + " ") == code
    with pytest.raises(codes.InvalidCode, match="check digit"):
        codes.normalize(code[:-1] + str((int(code[-1]) + 1) % 10))
    with pytest.raises(codes.InvalidCode, match="13 digits"):
        codes.normalize(code[:-2])
    with pytest.raises(codes.InvalidCode, match="digits only"):
        codes.normalize("12345678901a3")
    with pytest.raises(codes.InvalidCode, match="empty"):
        codes.normalize("   ")
    assert codes.group("1234567890123") == "1234 5678 9012 3"
