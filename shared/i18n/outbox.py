# ruff: noqa: E501  (one string per line reads better than split sentences)
"""The outbox's strings in the console (issue 17): a shipment's messages, the dead letters."""

from __future__ import annotations

VI: dict[str, str] = {
    "nav.outbox": "Tin lỗi",
    "outbox.title": "Tin nhắn gửi đi",
    "outbox.none": "Chưa có tin nhắn nào cho bưu gửi này.",
    "outbox.topic": "Loại tin",
    "outbox.channel": "Kênh",
    "outbox.to": "Đến",
    "outbox.state": "Trạng thái",
    "outbox.tries": "Số lần gửi",
    "outbox.segments": "Số tin SMS",
    "outbox.note": "Ghi chú",
    "outbox.created": "Tạo lúc",
    "outbox.sent_at": "Gửi lúc",
    "outbox.state.pending": "đang chờ gửi",
    "outbox.state.sent": "đã gửi",
    "outbox.state.dead": "gửi không được (đã bỏ)",
    "outbox.state.skipped": "không gửi",
    "outbox.dead_title": "Tin gửi không được",
    "outbox.dead_help": "Các tin đã thử gửi đủ số lần mà không được. Sửa nguyên nhân (cổng SMS, địa chỉ webhook) rồi bấm Gửi lại.",
    "outbox.dead_none": "Không có tin nào gửi không được.",
    "outbox.retry": "Gửi lại",
    "outbox.retried": "Đã đưa tin số {id} vào hàng chờ gửi lại.",
    "outbox.shipment": "Bưu gửi",
    "outbox.webhooks": "Webhook của đơn vị",
    "outbox.webhooks_help": "Thêm, đổi khóa bí mật hoặc tắt bằng lệnh: hoso webhook add|rotate|disable (docs/NOTIFICATIONS.md).",
    "outbox.topic.pin": "Mã PIN tra cứu",
    "outbox.topic.registered": "Đã đăng ký",
    "outbox.topic.result_ready": "Có kết quả",
    "outbox.topic.on_the_way": "Bưu tá đã nhận, đang chuyển",
    "outbox.topic.delivery_failed": "Phát không thành công",
    "outbox.topic.delivered": "Đã phát",
    "outbox.topic.assigned": "Đã phân công bưu tá",
    "outbox.topic.picked_up": "Bưu tá đã nhận",
    "outbox.topic.returned": "Đã hoàn trả",
    "outbox.topic.confirmed": "Cơ quan đã xác nhận",
    "outbox.channel.citizen": "Công dân (SMS / Zalo)",
    "outbox.channel.webhook": "Webhook",
    "outbox.skip.no_shipment": "không còn bưu gửi",
    "outbox.skip.no_mobile": "không có số di động Việt Nam trong hồ sơ",
    "outbox.skip.notifications_off": "đơn vị đã tắt thông báo",
    "outbox.skip.pin_gone": "mã PIN không còn được giữ (đã gửi hoặc đã bỏ trước đó)",
    "outbox.skip.no_gateway": "chưa cấu hình cổng SMS (HOSO_SMPP_HOST)",
    "outbox.skip.subscription_gone": "đăng ký webhook đã bị xóa hoặc tắt",
}

EN: dict[str, str] = {
    "nav.outbox": "Failed messages",
    "outbox.title": "Messages sent out",
    "outbox.none": "No messages for this shipment yet.",
    "outbox.topic": "Kind",
    "outbox.channel": "Channel",
    "outbox.to": "To",
    "outbox.state": "State",
    "outbox.tries": "Tries",
    "outbox.segments": "SMS segments",
    "outbox.note": "Note",
    "outbox.created": "Created",
    "outbox.sent_at": "Sent",
    "outbox.state.pending": "waiting to be sent",
    "outbox.state.sent": "sent",
    "outbox.state.dead": "failed (given up)",
    "outbox.state.skipped": "not sent",
    "outbox.dead_title": "Dead letters",
    "outbox.dead_help": "Messages that failed every try. Fix the cause (SMS gateway, webhook URL), then press Retry.",
    "outbox.dead_none": "No dead letters.",
    "outbox.retry": "Retry",
    "outbox.retried": "Message {id} is queued again.",
    "outbox.shipment": "Shipment",
    "outbox.webhooks": "Units' webhooks",
    "outbox.webhooks_help": "Add, rotate the secret or disable with: hoso webhook add|rotate|disable (docs/NOTIFICATIONS.md).",
    "outbox.topic.pin": "Tracking PIN",
    "outbox.topic.registered": "Registered",
    "outbox.topic.result_ready": "Result ready",
    "outbox.topic.on_the_way": "Picked up, on the way",
    "outbox.topic.delivery_failed": "Delivery failed",
    "outbox.topic.delivered": "Delivered",
    "outbox.topic.assigned": "Courier assigned",
    "outbox.topic.picked_up": "Picked up",
    "outbox.topic.returned": "Returned",
    "outbox.topic.confirmed": "Confirmed by the agency",
    "outbox.channel.citizen": "Citizen (SMS / Zalo)",
    "outbox.channel.webhook": "Webhook",
    "outbox.skip.no_shipment": "no shipment",
    "outbox.skip.no_mobile": "no Vietnamese mobile number on record",
    "outbox.skip.notifications_off": "the unit has notifications off",
    "outbox.skip.pin_gone": "the PIN is no longer held (sent or given up before)",
    "outbox.skip.no_gateway": "no SMS gateway configured (HOSO_SMPP_HOST)",
    "outbox.skip.subscription_gone": "the subscription was removed or disabled",
}


def skip_reason(key: str) -> str:
    """Why a message was not sent, as the outbox stores it (English, for the API and the
    log); `skip_note` turns it back into the reader's language on a console page."""
    return EN[f"outbox.skip.{key}"]


_SKIP_KEYS = {text: key for key, text in EN.items() if key.startswith("outbox.skip.")}


def skip_note_key(stored: str) -> str | None:
    """The i18n key of a stored skip reason, or None (a gateway's own error text)."""
    return _SKIP_KEYS.get(stored)
