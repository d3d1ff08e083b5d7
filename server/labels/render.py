"""QR labels as PNG (thermal printer, 100×150 mm at 203 dpi) and as PDF (one label, or A4 sheets).

The QR carries the signed tracking URL of CUSTODY.md §2 at error correction level Q, so a
creased envelope still scans. Text uses Be Vietnam Pro, embedded, so diacritics render.
"""

from __future__ import annotations

import io
import itertools
import re
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

import qrcode
from qrcode.constants import ERROR_CORRECT_Q

from shared import codes
from shared.i18n import t

VN = ZoneInfo("Asia/Ho_Chi_Minh")
DPI = 203
MM = DPI / 25.4


@dataclass(frozen=True, slots=True)
class LabelInfo:
    code: str
    url: str
    kind: str
    recipient_name: str
    recipient_commune: str
    due_at: datetime


def font_path(bold: bool = False) -> Path:
    import fontpkg_be_vietnam_pro

    name = "BeVietnamPro-Bold.ttf" if bold else "BeVietnamPro-Regular.ttf"
    return Path(fontpkg_be_vietnam_pro.__file__).parent / "files" / name


_DIGITS = bytes.maketrans(b"\x00\x01", b"01")
_RUN = re.compile(rb"0{5,}|1{5,}")
_CORE = b"1011101"  # 1:1:3:1:1, in both finder-like patterns: 1011101·0000 and 0000·1011101


def mask_penalty(modules: list[list[bool]]) -> int:
    """The QR mask penalty (ISO/IEC 18004 §7.8.3), the same number as `qrcode.util.lost_point`
    (tests compare them), from rows and columns as strings and integers instead of module
    by module: mask selection was most of the time a label took."""
    n = len(modules)
    rows = [bytes(row).translate(_DIGITS) for row in modules]  # b"0110…"
    cols = [bytes(col) for col in zip(*rows, strict=True)]
    lines = rows + cols
    # 1: each run of five or more same-colour modules in a row or column, N1 + (length - 5)
    runs = [run for line in lines for run in _RUN.findall(line)]
    points = sum(map(len, runs)) - 2 * len(runs)
    # 3: each 1:1:3:1:1 finder-like pattern with four light modules on one side
    points += 40 * sum(_finder_like(line) for line in lines if _CORE in line)
    # 2: each 2×2 block of one colour (bit n-1-c of a row's integer is column c)
    ints = [int(row, 2) for row in rows]
    low = (1 << (n - 1)) - 1
    blocks = 0
    for a, b in itertools.pairwise(ints):
        same_h = ~(a ^ (a >> 1)) & ~(b ^ (b >> 1)) & low
        blocks += (same_h & (~(a ^ b) >> 1)).bit_count()
    points += 3 * blocks
    # 4: each 5% of dark modules away from half
    dark = sum(i.bit_count() for i in ints)
    return points + int(abs(float(dark) / (n**2) * 100 - 50) / 5) * 10


# Where each data bit goes (the zigzag over the modules no function pattern uses) depends only
# on the version, and each mask only on the position: both are worked out once.
_PLACEMENT: dict[int, list[tuple[int, int]]] = {}
_MASKS: dict[tuple[int, int], list[bool]] = {}


def _finder_like(line: bytes) -> int:
    """Windows of 11 equal to 10111010000 or 00001011101 (qrcode counts both, overlapping)."""
    found, at = 0, line.find(_CORE)
    while at >= 0:
        found += (line[at + 7 : at + 11] == b"0000") + (at >= 4 and line[at - 4 : at] == b"0000")
        at = line.find(_CORE, at + 1)
    return found


class _QRCode(qrcode.QRCode):  # type: ignore[misc]
    """qrcode's encoder with a faster mask choice: the same masks, the same penalties and the
    same choice (tests compare the matrices), without placing the data module by module
    through a mask function eight times over."""

    def best_mask_pattern(self) -> int:
        """The first mask with the lowest penalty, as qrcode chooses it."""
        scores = []
        for pattern in range(8):
            self.makeImpl(True, pattern)
            scores.append(mask_penalty(self.modules))
        return scores.index(min(scores))

    def map_data(self, data: list[int], mask_pattern: int) -> None:
        path = _PLACEMENT.get(self.version)
        if path is None:
            path = _PLACEMENT[self.version] = self._placement()
        mask = _MASKS.get((self.version, mask_pattern))
        if mask is None:
            func = qrcode.util.mask_func(mask_pattern)
            mask = _MASKS[(self.version, mask_pattern)] = [bool(func(r, c)) for r, c in path]
        if getattr(self, "_bits_of", None) is not data:  # the same data for every mask
            bits = [(byte >> shift) & 1 == 1 for byte in data for shift in range(7, -1, -1)]
            self._bits, self._bits_of = bits + [False] * (len(path) - len(bits)), data
        bits = self._bits
        modules = self.modules
        for (r, c), bit, flip in zip(path, bits, mask, strict=False):
            modules[r][c] = bit != flip

    def _placement(self) -> list[tuple[int, int]]:
        """The free modules in qrcode's `map_data` order: two columns at a time from the
        right, up and down in turn, stepping over the vertical timing pattern."""
        n = self.modules_count
        path: list[tuple[int, int]] = []
        row, inc = n - 1, -1
        for col in range(n - 1, 0, -2):
            if col <= 6:
                col -= 1
            while True:
                for c in (col, col - 1):
                    if self.modules[row][c] is None:
                        path.append((row, c))
                row += inc
                if row < 0 or n <= row:
                    row -= inc
                    inc = -inc
                    break
        return path


def qr_matrix(url: str) -> list[list[bool]]:
    qr = _QRCode(error_correction=ERROR_CORRECT_Q, border=0)
    qr.add_data(url)
    qr.make(fit=True)
    matrix: list[list[bool]] = qr.get_matrix()  # qrcode is untyped
    return matrix


def due_text(due_at: datetime) -> str:
    return due_at.astimezone(VN).strftime("%d/%m/%Y")


def _lines(info: LabelInfo) -> list[tuple[str, int, bool]]:
    """(text, size in points, bold) top to bottom under the QR."""
    return [
        (codes.group(info.code), 26, True),
        (t(f"kind.{info.kind}"), 13, True),
        (f"{t('label.recipient')}: {info.recipient_name}", 12, False),
        (info.recipient_commune, 12, False),
        (f"{t('label.due')}: {due_text(info.due_at)}", 13, True),
        (t("label.scan"), 10, False),
    ]


@cache
def _pil_font(size_px: int, bold: bool):  # type: ignore[no-untyped-def]
    from PIL import ImageFont

    return ImageFont.truetype(str(font_path(bold)), size_px)


def label_png(info: LabelInfo) -> bytes:
    from PIL import Image, ImageDraw

    width, height = round(100 * MM), round(150 * MM)
    img = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(img)
    matrix = qr_matrix(info.url)
    quiet = 4
    modules = len(matrix) + 2 * quiet
    box = (width - round(12 * MM)) // modules
    qr_px = box * modules
    x0, y0 = (width - qr_px) // 2, round(6 * MM)
    for r, row in enumerate(matrix):
        for c, dark in enumerate(row):
            if dark:
                x, y = x0 + (c + quiet) * box, y0 + (r + quiet) * box
                draw.rectangle((x, y, x + box - 1, y + box - 1), fill=0)
    y = y0 + qr_px + round(2 * MM)
    max_w = width - round(8 * MM)
    for text, points, bold in _lines(info):
        for line in _wrap(
            text, lambda s, p=points, b=bold: draw.textlength(s, font=_pil_font(_px(p), b)), max_w
        ):
            px = _px(points)
            while px > 14 and draw.textlength(line, font=_pil_font(px, bold)) > max_w:
                px -= 2  # shrink a long name rather than cut it
            font = _pil_font(px, bold)
            w = draw.textlength(line, font=font)
            draw.text(((width - w) / 2, y), line, font=font, fill=0)
            y += round(px * 1.4)
    out = io.BytesIO()
    img.save(out, format="PNG", optimize=True, dpi=(DPI, DPI))
    return out.getvalue()


def _px(points: float) -> int:
    return round(points * DPI / 72)


def _wrap(text: str, width_of, max_width: float) -> list[str]:  # type: ignore[no-untyped-def]
    """Greedy word wrap; a single over-long word is left for the caller to shrink."""
    lines: list[str] = []
    current = ""
    for word in text.split():
        candidate = f"{current} {word}".strip()
        if current and width_of(candidate) > max_width:
            lines.append(current)
            current = word
        else:
            current = candidate
    return [*lines, current] if current else lines


# --- PDF ---------------------------------------------------------------------------------

_FONTS_READY = False


def _register_fonts() -> None:
    global _FONTS_READY
    if _FONTS_READY:
        return
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    pdfmetrics.registerFont(TTFont("BeVietnamPro", str(font_path(False))))
    pdfmetrics.registerFont(TTFont("BeVietnamPro-Bold", str(font_path(True))))
    _FONTS_READY = True


def _draw_label(canvas, info: LabelInfo, x: float, y: float, w: float, h: float) -> None:  # type: ignore[no-untyped-def]
    """One label in the box whose lower-left corner is (x, y), sizes in points."""
    from reportlab.lib.units import mm
    from reportlab.pdfbase.pdfmetrics import stringWidth

    matrix = qr_matrix(info.url)
    quiet = 4
    modules = len(matrix) + 2 * quiet
    qr_size = min(w - 12 * mm, h * 0.58)
    box = qr_size / modules
    qx, qtop = x + (w - qr_size) / 2, y + h - 6 * mm
    canvas.setFillGray(0)
    path = canvas.beginPath()
    for r, row in enumerate(matrix):
        c = 0
        while c < len(row):  # one rectangle per run of dark modules
            if row[c]:
                start = c
                while c < len(row) and row[c]:
                    c += 1
                path.rect(qx + (start + quiet) * box, qtop - (r + quiet + 1) * box, (c - start) * box, box)
            else:
                c += 1
    canvas.drawPath(path, stroke=0, fill=1)
    ty = qtop - qr_size - 3 * mm
    max_w = w - 8 * mm
    for text, points, bold in _lines(info):
        font = "BeVietnamPro-Bold" if bold else "BeVietnamPro"
        for line in _wrap(text, lambda s, f=font, p=points: stringWidth(s, f, p), max_w):
            size: float = points
            while size > 6 and stringWidth(line, font, size) > max_w:
                size -= 0.5
            canvas.setFont(font, size)
            canvas.drawCentredString(x + w / 2, ty - size, line)
            ty -= size * 1.4


def labels_pdf(infos: list[LabelInfo], *, sheet: bool) -> bytes:
    """One 100×150 mm page per label, or A4 sheets of four labels with cutting lines."""
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import mm
    from reportlab.pdfgen.canvas import Canvas

    _register_fonts()
    out = io.BytesIO()
    if not sheet:
        canvas = Canvas(out, pagesize=(100 * mm, 150 * mm), pageCompression=1)
        for info in infos:
            _draw_label(canvas, info, 0, 0, 100 * mm, 150 * mm)
            canvas.showPage()
    else:
        canvas = Canvas(out, pagesize=A4, pageCompression=1)
        pw, ph = A4
        lw, lh = 100 * mm, 145 * mm
        ox, oy = (pw - 2 * lw) / 2, (ph - 2 * lh) / 2
        slots = [(ox, oy + lh), (ox + lw, oy + lh), (ox, oy), (ox + lw, oy)]
        for i, info in enumerate(infos):
            if i and i % 4 == 0:
                canvas.showPage()
            sx, sy = slots[i % 4]
            canvas.setStrokeGray(0.75)
            canvas.setDash(2, 3)
            canvas.rect(sx, sy, lw, lh, stroke=1, fill=0)
            canvas.setDash()
            _draw_label(canvas, info, sx, sy, lw, lh)
        canvas.showPage()
    canvas.setTitle("HoSo labels")
    canvas.save()
    return out.getvalue()
