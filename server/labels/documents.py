"""Printable A4 documents in Vietnamese, each with the shipment's QR:
the citizen's receipt at pickup (phiếu gửi hồ sơ), the handover record of a batch
(biên bản giao nhận), and the delivery receipt (phiếu báo phát)."""

from __future__ import annotations

import asyncio
import io
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any, ParamSpec, TypeVar
from weakref import WeakKeyDictionary

import anyio.to_thread
from anyio import CapacityLimiter

from shared import codes
from shared.events import CustodyEvent

from .render import VN, _register_fonts, qr_matrix


@dataclass
class Handover:
    code: str
    url: str
    procedure: str
    kind: str
    when: datetime
    giver: str  # the courier, by name and account
    giver_key: str  # the device key that signed the event
    receiver: str
    receiver_role: str
    signature_png: bytes | None
    place: str  # where it happened: the receiving agency, or the citizen's address
    receiver_unit: str = ""  # the unit the receiver works for ("" for a citizen)


P = ParamSpec("P")
T = TypeVar("T")

# A signature is drawn at most 70 mm wide: 1200 px is 435 dpi there. Larger images are
# scaled down before they reach the PDF; beyond RENDER_MAX_PIXELS (uploads are capped at
# 2 MP, this is for anything stored before that) they are not decoded at all.
SIGNATURE_MAX_SIDE = 1200
RENDER_MAX_PIXELS = 4_000_000
# PDFs are built in threads, at most this many at once, never on the event loop
_RENDER_THREADS = 2
_limiters: WeakKeyDictionary[asyncio.AbstractEventLoop, CapacityLimiter] = WeakKeyDictionary()


async def in_thread(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run a renderer (receipt_pdf, delivery_pdf, labels_pdf, …) off the event loop."""
    loop = asyncio.get_running_loop()
    limiter = _limiters.get(loop)
    if limiter is None:
        limiter = _limiters[loop] = CapacityLimiter(_RENDER_THREADS)
    return await anyio.to_thread.run_sync(partial(fn, *args, **kwargs), limiter=limiter)


def safe_image(data: bytes) -> Any:
    """The image as a small PIL image ready to draw, or None if it is too large or damaged.
    Only the header is read before the pixel count is checked."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            if img.width * img.height > RENDER_MAX_PIXELS:
                return None
            img.draft("RGB", (SIGNATURE_MAX_SIDE, SIGNATURE_MAX_SIDE))  # JPEG: decode scaled
            img.thumbnail((SIGNATURE_MAX_SIDE, SIGNATURE_MAX_SIDE))
            img.load()
            return img
    except (Image.DecompressionBombError, OSError, SyntaxError, ValueError):
        return None


def _vnd(amount: int) -> str:
    return f"{amount:,}".replace(",", ".") + " đồng"


def _local(dt: datetime) -> str:
    return dt.astimezone(VN).strftime("%H:%M ngày %d/%m/%Y")


class _Doc:
    def __init__(self, title: str) -> None:
        from reportlab.lib.pagesizes import A4
        from reportlab.pdfgen.canvas import Canvas

        _register_fonts()
        self.buf = io.BytesIO()
        self.c = Canvas(self.buf, pagesize=A4, pageCompression=1)
        self.c.setTitle(title)
        self.w, self.h = A4
        self.title = title
        self.y = 0.0
        self.page_start()

    def page_start(self) -> None:
        from reportlab.lib.units import mm

        c = self.c
        c.setFont("BeVietnamPro-Bold", 10)
        c.drawCentredString(self.w / 2, self.h - 14 * mm, "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM")
        c.setFont("BeVietnamPro", 10)
        c.drawCentredString(self.w / 2, self.h - 19 * mm, "Độc lập - Tự do - Hạnh phúc")
        c.setFont("BeVietnamPro-Bold", 15)
        c.drawCentredString(self.w / 2, self.h - 32 * mm, self.title)
        self.y = self.h - 42 * mm

    def need(self, height: float) -> None:
        from reportlab.lib.units import mm

        if self.y - height < 20 * mm:
            self.c.showPage()
            self.page_start()

    def line(self, text: str, size: float = 11, bold: bool = False, indent: float = 0) -> None:
        from reportlab.lib.units import mm
        from reportlab.pdfbase.pdfmetrics import stringWidth

        font = "BeVietnamPro-Bold" if bold else "BeVietnamPro"
        max_w = self.w - 40 * mm - indent
        words, current, lines = [], "", []
        for word in text.split():
            while stringWidth(word, font, size) > max_w and len(word) > 1:  # a URL: break it anywhere
                cut = len(word)
                while cut > 1 and stringWidth(word[:cut], font, size) > max_w:
                    cut -= 1
                words.append(word[:cut])
                word = word[cut:]
            words.append(word)
        for word in words:
            candidate = f"{current} {word}".strip()
            if current and stringWidth(candidate, font, size) > max_w:
                lines.append(current)
                current = word
            else:
                current = candidate
        lines.append(current)
        for ln in lines:
            self.need(size * 1.5)
            self.c.setFont(font, size)
            self.c.drawString(20 * mm + indent, self.y, ln)
            self.y -= size * 1.5

    def qr(self, url: str, x: float, y: float, size: float) -> None:
        matrix = qr_matrix(url)
        quiet = 4
        box = size / (len(matrix) + 2 * quiet)
        path = self.c.beginPath()
        for r, row in enumerate(matrix):
            for col, dark in enumerate(row):
                if dark:
                    path.rect(x + (col + quiet) * box, y + size - (r + quiet + 1) * box, box, box)
        self.c.setFillGray(0)
        self.c.drawPath(path, stroke=0, fill=1)

    def image(self, png: bytes, x: float, y: float, w: float, h: float) -> None:
        from reportlab.lib.utils import ImageReader

        # uploads are checked to decode and capped in pixels; an image that still fails or is
        # too large is left out, not fatal
        img = safe_image(png)
        try:
            if img is None:
                raise OSError("not drawable")
            self.c.drawImage(ImageReader(img), x, y, w, h, preserveAspectRatio=True, anchor="sw", mask="auto")
        except OSError:
            self.c.setFont("BeVietnamPro", 9)
            self.c.drawString(x, y + h / 2, "(không đọc được ảnh chữ ký)")

    def done(self) -> bytes:
        self.c.showPage()
        self.c.save()
        return self.buf.getvalue()


def _address(party: dict[str, Any]) -> str:
    return ", ".join(x for x in (party.get("address"), party.get("commune"), party.get("province")) if x)


# who received an envelope, in the words of PRODUCT.md
RECEIVER_ROLES = {
    "citizen": "công dân",
    "clerk": "cán bộ tiếp nhận",
    "courier": "bưu tá",
    "hub": "bưu cục",
    "proxy": "người được ủy quyền",
    "business": "doanh nghiệp",
}


def _component_mark(name: str) -> str:
    """Original or copy, said once: the clerk often writes it into the component's name already."""
    low = name.lower()
    if "bản chính" in low or "bản gốc" in low or "bản sao" in low:
        return ""
    return " — bản chính/bản sao: chưa ghi"


def receipt_pdf(
    ship: Any,
    url: str,
    pin: str | None,
    fee_collected: int | None,
    picked_at: datetime | None,
    courier: str | None,
) -> bytes:
    """Phiếu gửi hồ sơ: what the citizen keeps when the courier takes the dossier."""
    from reportlab.lib.units import mm

    doc = _Doc("PHIẾU GỬI HỒ SƠ QUA DỊCH VỤ BƯU CHÍNH CÔNG ÍCH")
    doc.qr(url, doc.w - 58 * mm, doc.h - 80 * mm, 38 * mm)
    sender, recipient = ship.sender or {}, ship.recipient or {}
    doc.line(f"Mã bưu gửi: {codes.group(ship.code)}", 13, bold=True)
    doc.line(f"Mã hồ sơ: {ship.dossier_ref or '—'}")
    doc.line(f"Thủ tục: {ship.procedure or '—'}")
    doc.line(f"Lĩnh vực: {ship.field or '—'}")
    doc.y -= 4
    # a submission goes from the citizen to the agency that receives it; a result from the
    # agency that returns it to the citizen (PRODUCT.md "One dossier, two envelopes")
    is_result = ship.kind == "result"
    for heading, party in (
        ("Cơ quan trả kết quả" if is_result else "Người gửi", sender),
        ("Người nhận" if is_result else "Cơ quan tiếp nhận", recipient),
    ):
        doc.line(heading, bold=True)
        doc.line(" — ".join(x for x in (party.get("name", ""), party.get("phone")) if x), indent=8)
        if address := _address(party):
            doc.line(address, indent=8)
    doc.y -= 4
    doc.line("Thành phần hồ sơ", bold=True)
    for i, comp in enumerate(ship.components or [], start=1):
        doc.line(f"{i}. {comp}{_component_mark(comp)}", indent=8)
    doc.y -= 4
    fee = fee_collected if fee_collected is not None else ship.fee_vnd
    doc.line(f"Phí, lệ phí đã thu hộ: {_vnd(fee)}", bold=True)
    doc.line(f"Hạn trả kết quả: {ship.due_at.astimezone(VN).strftime('%d/%m/%Y')}")
    if picked_at:
        doc.line(f"Bưu tá nhận hồ sơ: {courier or ''} lúc {_local(picked_at)}")
    doc.y -= 6
    doc.line(
        f"Mã PIN tra cứu và xác nhận: {pin}" if pin else "Mã PIN: ____________",
        14,
        bold=True,
    )
    if not pin:  # a reprint: the PIN exists only as a hash, and on the first receipt
        doc.line("Bản in lại: không có mã PIN. Mã PIN in trên phiếu gốc lúc đăng ký.", 10, bold=True)
    doc.line(
        "Quét mã QR trên phiếu này hoặc trên bì hồ sơ để xem hồ sơ đang ở đâu; khi nhận kết quả, "
        "nhập mã PIN để xác nhận và đánh giá dịch vụ. Không đưa mã PIN cho người khác.",
        10,
    )
    doc.line(f"Tra cứu: {url}", 8)
    return doc.done()


def handover_pdf(items: list[Handover], unit_name: str) -> bytes:
    """Biên bản giao nhận: every envelope of a batch, both parties, time, place, signatures."""
    from reportlab.lib.units import mm

    doc = _Doc("BIÊN BẢN GIAO NHẬN HỒ SƠ")
    first = items[0]
    doc.line(f"Hôm nay, {_local(first.when)}, tại {first.place or unit_name}, chúng tôi gồm:")
    doc.line(f"Bên giao: {first.giver}", bold=True, indent=8)
    role = RECEIVER_ROLES.get(first.receiver_role, first.receiver_role)
    # a unit follows only a receiver who works for one (a clerk, a hub), never a citizen
    unit = f" — {first.receiver_unit}" if first.receiver_unit else ""
    doc.line(f"Bên nhận: {first.receiver}{f' ({role})' if role else ''}{unit}", bold=True, indent=8)
    doc.line(f"Đã giao nhận {len(items)} bưu gửi dưới đây, niêm phong nguyên vẹn:")
    doc.y -= 4
    for n, item in enumerate(items, start=1):
        doc.need(34 * mm)
        top = doc.y
        # 26 mm: a label URL naming its key (v10 at level Q) still reads from a phone's photo
        doc.qr(item.url, doc.w - 46 * mm, top - 24 * mm, 26 * mm)
        doc.line(f"{n}. {codes.group(item.code)} — {item.procedure or 'hồ sơ'}", bold=True)
        doc.line(f"Thời điểm: {_local(item.when)}; bên nhận: {item.receiver}", 10, indent=8)
        doc.line(f"Bên giao ký số bằng thiết bị: {item.giver_key[:16]}…", 9, indent=8)
        if item.signature_png:
            doc.image(item.signature_png, 28 * mm, doc.y - 12 * mm, 50 * mm, 12 * mm)
            doc.y -= 13 * mm
        else:
            doc.line("(chữ ký bên nhận chưa được đồng bộ)", 9, indent=8)
        doc.y = min(doc.y, top - 28 * mm) - 5 * mm
    doc.need(35 * mm)
    doc.y -= 6
    doc.c.setFont("BeVietnamPro-Bold", 11)
    doc.c.drawCentredString(doc.w * 0.28, doc.y, "BÊN GIAO")
    doc.c.drawCentredString(doc.w * 0.72, doc.y, "BÊN NHẬN")
    doc.c.setFont("BeVietnamPro", 9)
    doc.c.drawCentredString(doc.w * 0.28, doc.y - 12, "(đã ký số từng sự kiện)")
    doc.c.drawCentredString(doc.w * 0.72, doc.y - 12, first.receiver)
    if first.signature_png:
        doc.image(first.signature_png, doc.w * 0.72 - 25 * mm, doc.y - 32 * mm, 50 * mm, 16 * mm)
    return doc.done()


def delivery_pdf(
    ship: Any,
    url: str,
    event: CustodyEvent,
    received_at: datetime,
    signature_png: bytes | None,
    distance_m: float | None,
) -> bytes:
    """Phiếu báo phát: who received the result, how identity was checked, when and where."""
    from reportlab.lib.units import mm

    doc = _Doc("PHIẾU BÁO PHÁT KẾT QUẢ")
    doc.qr(url, doc.w - 58 * mm, doc.h - 80 * mm, 38 * mm)
    cp, loc = event.counterparty, event.location
    identity = (event.data.get("identity") or {}).get("method")
    id_last4 = cp.id_last4 if cp is not None and isinstance(cp.id_last4, str) else ""
    doc.line(f"Mã bưu gửi: {codes.group(ship.code)}", 13, bold=True)
    doc.line(f"Thủ tục: {ship.procedure or '—'}")
    doc.line(f"Người nhận: {cp.name if cp is not None else ''}", bold=True)
    doc.line(
        {
            "id_last4": f"Xác minh: 4 số cuối CCCD ({id_last4})",
            "pin": "Xác minh: mã PIN",
            "proxy": "Người nhận thay (có giấy ủy quyền)",
        }.get(identity or "", "Xác minh: —")
    )
    occurred = datetime.fromisoformat(event.occurred_at)
    doc.line(f"Thời điểm phát (giờ thiết bị): {_local(occurred)}")
    doc.line(f"Máy chủ nhận bản ghi lúc: {_local(received_at)}")
    if loc:
        far = f", cách địa chỉ {distance_m:.0f} m" if distance_m is not None else ""
        doc.line(f"Vị trí: {loc.lat:.5f}, {loc.lon:.5f} (±{loc.accuracy_m or 0:.0f} m{far})")
    doc.line(f"Mã sự kiện: {event.id}", 8)
    doc.line(f"Băm SHA-256: {event.hash}", 8)
    doc.y -= 6
    doc.line("Chữ ký người nhận", bold=True)
    if signature_png:
        doc.image(signature_png, 20 * mm, doc.y - 25 * mm, 70 * mm, 24 * mm)
        doc.y -= 27 * mm
    else:
        doc.line("(chữ ký chưa được đồng bộ)", 10)
    return doc.done()


Document = _Doc  # the A4 page builder (national heading, title, wrapped lines), for other areas' papers


def counter_receipt_pdf(
    ship: Any,
    url: str,
    pin: str | None,
    event: CustodyEvent,
    clerk: str,
    unit_name: str,
    signature_png: bytes | None,
) -> bytes:
    """Phiếu tiếp nhận hồ sơ: what the citizen keeps when they hand the dossier in at a counter
    (issue 18): the components received and those missing, the fee taken, the PIN."""
    from reportlab.lib.units import mm

    doc = _Doc("PHIẾU TIẾP NHẬN HỒ SƠ")
    doc.qr(url, doc.w - 58 * mm, doc.h - 80 * mm, 38 * mm)
    data, cp = event.data, event.counterparty
    sender = ship.sender or {}
    doc.line(f"Mã bưu gửi: {codes.group(ship.code)}", 13, bold=True)
    doc.line(f"Mã hồ sơ: {ship.dossier_ref or '—'}")
    doc.line(f"Thủ tục: {ship.procedure or '—'}")
    doc.line(f"Lĩnh vực: {ship.field or '—'}")
    doc.line(f"Nơi tiếp nhận: {unit_name or '—'} (tại quầy)")
    doc.line(f"Cơ quan giải quyết: {(ship.recipient or {}).get('name', '—')}")
    doc.y -= 4
    doc.line("Người nộp hồ sơ", bold=True)
    last4 = cp.id_last4 if cp is not None and isinstance(cp.id_last4, str) else ""
    doc.line(
        " — ".join(x for x in (sender.get("name", ""), sender.get("phone"), last4 and f"CCCD …{last4}") if x),
        indent=8,
    )
    if address := _address(sender):
        doc.line(address, indent=8)
    doc.y -= 4
    doc.line("Thành phần hồ sơ đã nhận", bold=True)
    for i, comp in enumerate(data.get("components") or [], start=1):
        doc.line(f"{i}. {comp}{_component_mark(comp)}", indent=8)
    missing = data.get("missing_components") or []
    if missing:
        doc.line("Thành phần còn thiếu (công dân bổ sung sau)", bold=True)
        for i, comp in enumerate(missing, start=1):
            doc.line(f"{i}. {comp}", indent=8)
        doc.line("Hồ sơ được tiếp nhận khi còn thiếu thành phần, theo lựa chọn của cán bộ tiếp nhận.", 9)
    doc.y -= 4
    fee = data.get("fee_vnd")
    doc.line(f"Phí, lệ phí đã thu: {_vnd(fee if isinstance(fee, int) else 0)}", bold=True)
    doc.line(f"Ngày hẹn trả kết quả: {ship.due_at.astimezone(VN).strftime('%d/%m/%Y')}")
    doc.line(f"Cán bộ tiếp nhận: {clerk} lúc {_local(datetime.fromisoformat(event.occurred_at))}")
    doc.line(f"Mã sự kiện: {event.id} · SHA-256 {event.hash}", 7)
    doc.y -= 6
    doc.line(
        f"Mã PIN tra cứu và xác nhận: {pin}" if pin else "Mã PIN: ____________ (đã gửi qua tin nhắn)",
        14,
        bold=True,
    )
    doc.line(
        "Quét mã QR để xem hồ sơ đang ở đâu; khi nhận kết quả, nhập mã PIN để xác nhận. "
        "Không đưa mã PIN cho người khác.",
        10,
    )
    doc.line(f"Tra cứu: {url}", 8)
    doc.y -= 4
    doc.line("Chữ ký người nộp hồ sơ", bold=True)
    if signature_png:
        doc.need(27 * mm)
        doc.image(signature_png, 20 * mm, doc.y - 25 * mm, 70 * mm, 24 * mm)
        doc.y -= 27 * mm
    return doc.done()
