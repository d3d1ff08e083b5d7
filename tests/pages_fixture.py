"""Synthetic phone photos of dossier pages (tests and bench/pages.py): a white sheet with
Vietnamese text drawn by Pillow in DejaVu Sans (which has Vietnamese glyphs), on a grey desk."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter, ImageFont

FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
)
LINES = (
    "TỜ KHAI ĐĂNG KÝ KHAI SINH",
    "Họ và tên người yêu cầu: Nguyễn Thị Hương",
    "Nơi cư trú: xã Hòa Phú, tỉnh Đắk Lắk",
    "Quan hệ với người được khai sinh: mẹ",
    "Đề nghị cơ quan đăng ký khai sinh cho người dưới đây",
    "Ngày, tháng, năm sinh: mười lăm tháng tám",
    "Giới tính: nữ. Dân tộc: Kinh. Quốc tịch: Việt Nam",
    "Tôi cam đoan nội dung khai trên đây là đúng sự thật",
)


def font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    for path in FONT_CANDIDATES:
        if Path(path).exists():
            return ImageFont.truetype(path, size)
    return ImageFont.load_default(size)


def page_image(
    n: int = 1,
    size: tuple[int, int] = (1600, 1200),
    *,
    desk: bool = True,
    shift: tuple[int, int] = (0, 0),
    tilt: float = 0.0,
) -> Image.Image:
    """One page photo: a sheet on a desk (or the sheet filling the frame)."""
    w, h = size
    img = Image.new("RGB", size, (110, 105, 100) if desk else (250, 250, 248))
    sheet = Image.new("RGB", (int(w * 0.8), int(h * 0.86)) if desk else size, (250, 250, 248))
    d = ImageDraw.Draw(sheet)
    f = font(max(18, h // 28))
    y = sheet.height // 12
    for line in (f"Trang {n}", *LINES):
        d.text((sheet.width // 14, y), line, fill=(20, 20, 25), font=f)
        y += int(f.size * 1.6) if isinstance(f, ImageFont.FreeTypeFont) else 24
    if tilt:
        sheet = sheet.rotate(tilt, expand=False, fillcolor=(110, 105, 100) if desk else (250, 250, 248))
    x0 = (w - sheet.width) // 2 + shift[0]
    y0 = (h - sheet.height) // 2 + shift[1]
    img.paste(sheet, (x0, y0))
    return img


def jpeg(img: Image.Image, quality: int = 85) -> bytes:
    out = io.BytesIO()
    img.save(out, "JPEG", quality=quality)
    return out.getvalue()


def blurred(img: Image.Image, radius: float = 6) -> Image.Image:
    return img.filter(ImageFilter.GaussianBlur(radius))


def dark(img: Image.Image, factor: float = 0.2) -> Image.Image:
    return img.point(lambda v: int(v * factor))
