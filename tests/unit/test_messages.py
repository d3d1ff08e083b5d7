"""The citizen's texts keep to their SMS budgets (server/outbox/messages.py)."""

from __future__ import annotations

import pytest

from server.outbox import messages
from shared import sms
from shared.lifecycle import FAILURE_REASONS

CODE = "1234567890123"
BASE = "https://hoso.example.vn"


def test_the_pin_message_is_one_ucs2_segment():
    text = messages.text("pin", {"code": CODE, "kind": "submission"}, BASE, "123456")
    info = sms.count(text)
    assert (info.encoding, info.segments) == ("ucs2", 1) and info.units <= 70
    assert "123456" in text and CODE in text


@pytest.mark.parametrize("reason", FAILURE_REASONS)
def test_every_failure_reason_has_a_text_and_what_to_do(reason):
    text = messages.text("delivery_failed", {"code": CODE, "kind": "result", "reason": reason}, BASE)
    said, todo = messages.FAILURE_TEXT[reason]
    assert said in text and todo in text
    assert sms.count(text).segments <= 2


@pytest.mark.parametrize("topic", [t for t in messages.TOPICS if t != "pin"])
def test_each_text_fits_two_segments_and_links_its_page(topic):
    text = messages.text(topic, {"code": CODE, "kind": "result", "reason": "not_home"}, BASE)
    assert sms.count(text).segments <= 2
    if "link" in messages.ZNS_PARAMS[topic]:
        assert f"{BASE}/t/{CODE}" in text


@pytest.mark.parametrize(
    ("phone", "number"),
    [
        ("0905 123 456", "84905123456"),
        ("+84 905.123.456", "84905123456"),
        ("0312345678", "84312345678"),
        ("0241234567", None),  # a Hà Nội landline
        ("+1 650 555 0100", None),
        ("", None),
        (None, None),
    ],
)
def test_only_vietnamese_mobiles_are_messaged(phone, number):
    assert messages.mobile_number(phone) == number


def test_masked_number():
    assert messages.masked("84905123456") == "84905***456"
