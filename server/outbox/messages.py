"""What a citizen is told, in Vietnamese (docs/NOTIFICATIONS.md lists each with its English
sense and its segment count), and who the citizen of a shipment is.

Texts use the short tracking link `BASE/t/CODE` (the citizen page; the signed label URL is
about 140 characters, two UCS-2 segments on its own). The PIN goes alone, in one UCS-2
segment of at most 70 characters (tests/unit/test_messages.py holds every text to its budget).
"""

from __future__ import annotations

import re
from typing import Any

from shared import sms

# reason codes of a failed attempt (shared/lifecycle.FAILURE_REASONS): what happened, what to do
FAILURE_TEXT = {
    "not_home": ("không có người nhận", "Bưu tá sẽ giao lại"),
    "refused": ("người nhận từ chối", "Liên hệ bưu cục nếu cần nhận lại"),
    "wrong_address": ("sai địa chỉ", "Gọi bưu cục để báo địa chỉ đúng"),
    "unidentified": ("chưa xác minh được người nhận", "Mang CCCD khi nhận lần sau"),
    "other": ("có sự cố", "Bưu tá sẽ liên hệ lại"),
}
# the ZNS template parameters each topic fills (a unit's template must declare these names)
ZNS_PARAMS = {
    "pin": ("ma_ho_so", "ma_pin"),
    "registered": ("ma_ho_so", "link"),
    "result_ready": ("ma_ho_so", "link"),
    "on_the_way": ("ma_ho_so",),
    "delivery_failed": ("ma_ho_so", "ly_do", "huong_dan"),
    "delivered": ("ma_ho_so", "link"),
}
TOPICS = tuple(ZNS_PARAMS)


def tracking_link(base_url: str, code: str) -> str:
    return f"{base_url.rstrip('/')}/t/{code}"


def params(topic: str, payload: dict[str, Any], base_url: str, pin: str | None) -> dict[str, str]:
    code = str(payload["code"])
    reason, todo = FAILURE_TEXT.get(str(payload.get("reason", "")), FAILURE_TEXT["other"])
    values = {
        "ma_ho_so": code,
        "ma_pin": pin or "",
        "link": tracking_link(base_url, code),
        "ly_do": reason,
        "huong_dan": todo,
    }
    return {k: values[k] for k in ZNS_PARAMS[topic]}


def text(topic: str, payload: dict[str, Any], base_url: str, pin: str | None = None) -> str:
    """The SMS text of a message."""
    p = params(topic, payload, base_url, pin)
    code = p["ma_ho_so"]
    if topic == "pin":
        return f"HoSo: mã PIN hồ sơ {code} là {p['ma_pin']}. Chỉ đưa khi nhận kết quả."
    if topic == "registered":
        return f"HoSo đã nhận hồ sơ {code}. Theo dõi: {p['link']}"
    if topic == "result_ready":
        return f"Kết quả hồ sơ {code} đã sẵn sàng, bưu điện sẽ giao tận nhà. Theo dõi: {p['link']}"
    if topic == "on_the_way":
        return f"Bưu tá đang mang kết quả hồ sơ {code} đến, xin chuẩn bị CCCD."
    if topic == "delivery_failed":
        return f"Hồ sơ {code} chưa giao được: {p['ly_do']}. {p['huong_dan']}."
    if topic == "delivered":
        if payload.get("kind") == "submission":
            return f"Hồ sơ {code} đã đến cơ quan tiếp nhận. Theo dõi: {p['link']}"
        return f"Đã giao kết quả hồ sơ {code}. Xác nhận và đánh giá: {p['link']}"
    raise ValueError(f"no text for topic {topic!r}")


def segments(topic: str, payload: dict[str, Any], base_url: str, pin: str | None = None) -> sms.Segments:
    return sms.count(text(topic, payload, base_url, pin))


_MOBILE = re.compile(r"^84(3|5|7|8|9)[0-9]{8}$")


def mobile_number(phone: str | None) -> str | None:
    """A Vietnamese mobile number as 84XXXXXXXXX (what SMPP and ZNS take), or None (a
    landline, a foreign number, nothing): only mobiles get SMS or Zalo."""
    if not phone:
        return None
    digits = re.sub(r"[ .\-]", "", phone)
    if digits.startswith("+"):
        digits = digits[1:]
    elif digits.startswith("0"):
        digits = "84" + digits[1:]
    return digits if _MOBILE.match(digits) else None


def masked(number: str) -> str:
    """84912***678: enough for a clerk to tell numbers apart, not to dial one."""
    return f"{number[:5]}***{number[-3:]}"


def citizen_phone(kind: str, sender: dict[str, Any] | None, recipient: dict[str, Any] | None) -> str | None:
    """A submission comes from the citizen; a result goes to them."""
    party = (recipient if kind == "result" else sender) or {}
    return party.get("phone")
