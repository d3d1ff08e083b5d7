"""Segment counting (shared/sms.py): what a gateway bills for each text."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from shared import sms


def test_gsm7_single_and_concatenated():
    assert sms.count("a" * 160) == sms.Segments("gsm7", 160, 1, 160)
    assert sms.count("a" * 161) == sms.Segments("gsm7", 161, 2, 153)
    assert sms.count("a" * 306).segments == 2
    assert sms.count("a" * 307).segments == 3
    assert sms.count("").segments == 0


def test_extension_characters_take_two_septets():
    assert sms.count("€").units == 2
    assert sms.count("[" * 80) == sms.Segments("gsm7", 160, 1, 160)
    assert sms.count("[" * 80 + "a").segments == 2


def test_vietnamese_goes_as_ucs2():
    text = "Mã PIN của bạn"
    assert sms.count(text).encoding == "ucs2"
    assert sms.count("ố" * 70) == sms.Segments("ucs2", 70, 1, 70)
    assert sms.count("ố" * 71) == sms.Segments("ucs2", 71, 2, 67)
    assert sms.count("ố" * 135).segments == 3
    # unaccented Vietnamese stays GSM-7
    assert sms.count("Ma PIN cua ban").encoding == "gsm7"


def test_astral_characters_count_as_two_ucs2_units():
    assert sms.count("😀").units == 2


def test_encode_decode_round_trip():
    for text in ("Hello {world} €5", "Hồ sơ đã giao", "@£$¥"):
        dc, payload = sms.encode(text)
        assert sms.decode(dc, payload) == text
    assert sms.encode("abc") == (0, b"abc")
    assert sms.encode("ồ")[0] == 8


@given(st.text(alphabet=st.sampled_from("abc€[ồ😀 "), max_size=400))
def test_split_parts_fit_and_join(text):
    parts = sms.split(text)
    assert "".join(parts) == text
    info = sms.count(text)
    # greedy cutting may leave a septet or unit unused at a part's end (an escape or surrogate pair)
    assert max(info.segments, 1) <= len(parts) <= max(info.segments, 1) + 1
    for part in parts:
        assert sms.count(part).units <= info.per_segment
