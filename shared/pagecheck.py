"""Page checks for a digitised dossier (issue 18): pure functions over the bytes of one page,
run by the server before it binds the pages (server/pages/service.py) and by the courier app
on the phone right after each photo (courier_app/flows/pages.py), so both judge a page alike.
The limits are in shared/pages.py.

Each page is read once, at a reduced size (JPEG's DCT scaling, `Image.draft`), as grey:
- **too dark**: the mean luminance (0–255) is below `MIN_MEAN_LUMINANCE`;
- **blurred**: the variance of the Laplacian (4-neighbour kernel) of the grey image scaled so
  its longer side is `SHARPNESS_SIDE` pixels is below `MIN_SHARPNESS`. The score is shown to
  the person, so "sharpness 41 (needs 120)" says how far off a retake was;
- **cut off**, a cheap heuristic: the paper is what is brighter than Otsu's threshold. When
  the paper fills (nearly) the whole frame (a scan, or a photo framed tightly), the page is
  cut off if writing (dark pixels) reaches into the outer 1.5 % strip of a side; when the
  paper lies on a darker background, it is cut off if paper covers more than half of one
  side's border (the sheet runs out of the frame there);
- **too small**: a page with a side under `MIN_PAGE_SIDE` pixels cannot be judged (it is
  refused as unreadable, before any score is computed);
- **skew**: the angle in [-5°, 5°] (0.5° steps) whose rotation makes the rows of writing
  line up best (largest variance of the row sums of dark pixels); pages tilted by 1° or
  more are turned straight before they go into the PDF.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps

from .pages import (
    DESKEW_MIN_DEG,
    MAX_PAGE_PIXELS,
    MIN_MEAN_LUMINANCE,
    MIN_PAGE_SIDE,
    MIN_SHARPNESS,
    SHARPNESS_SIDE,
)

THUMB_SIDE = 240
_SKEW_SIDE = 500
_ANGLES = [a / 2 for a in range(-10, 11)]


@dataclass(frozen=True, slots=True)
class PageReport:
    number: int  # 1-based, as people count pages
    width: int
    height: int
    luminance: int
    sharpness: int
    skew_deg: float
    problems: tuple[str, ...]  # each a sentence in Vietnamese, then English
    cut: str | None = None  # the side where the page is cut off (top, bottom, left, right)

    @property
    def ok(self) -> bool:
        return not self.problems


def _grey(img: Image.Image, side: int) -> np.ndarray:
    small = img.convert("L")
    small.thumbnail((side, side))
    return np.asarray(small, dtype=np.float32)


def laplacian_variance(grey: np.ndarray) -> float:
    g = grey
    lap = g[:-2, 1:-1] + g[2:, 1:-1] + g[1:-1, :-2] + g[1:-1, 2:] - 4 * g[1:-1, 1:-1]
    return float(lap.var())


def otsu(grey: np.ndarray) -> float:
    hist, _ = np.histogram(grey, bins=256, range=(0, 256))
    total = grey.size
    levels = np.arange(256, dtype=np.float64)
    w0 = np.cumsum(hist)
    m0 = np.cumsum(hist * levels)
    w1 = total - w0
    mean_all = m0[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (mean_all * w0 / total - m0) ** 2 / (w0 * w1)
    between[~np.isfinite(between)] = 0
    return float(np.argmax(between))


def cut_side(grey: np.ndarray) -> str | None:
    """The side ("top", "bottom", "left", "right") where the page is cut off, or None."""
    t = otsu(grey)
    paper = grey > t
    if paper.mean() > 0.9:  # paper fills the frame: does writing reach the edge?
        ink = grey < min(t, 128)
        h, w = ink.shape
        mh, mw = max(2, int(h * 0.015)), max(2, int(w * 0.015))
        strips = {"top": ink[:mh], "bottom": ink[-mh:], "left": ink[:, :mw], "right": ink[:, -mw:]}
        for side, strip in strips.items():
            if strip.mean() > 0.002:
                return side
        return None
    borders = {"top": paper[0], "bottom": paper[-1], "left": paper[:, 0], "right": paper[:, -1]}
    for side, line in borders.items():
        if line.mean() > 0.5:
            return side
    return None


def _rotate(arr: np.ndarray, deg: float) -> np.ndarray:
    img = Image.fromarray(arr)
    return np.asarray(img.rotate(deg, resample=Image.Resampling.NEAREST, fillcolor=0))


def skew_angle(grey: np.ndarray) -> float:
    """Degrees to rotate (counter-clockwise, as Pillow does) to make the lines level."""
    t = otsu(grey)
    paper = grey > t
    if paper.mean() <= 0.9:  # a sheet on a desk: look only inside the sheet, away from its edges
        rows = np.flatnonzero(paper.mean(axis=1) > 0.5)
        cols = np.flatnonzero(paper.mean(axis=0) > 0.5)
        if rows.size and cols.size:
            mh, mw = int((rows[-1] - rows[0]) * 0.08), int((cols[-1] - cols[0]) * 0.08)
            grey = grey[rows[0] + mh : rows[-1] - mh, cols[0] + mw : cols[-1] - mw]
    if grey.size == 0:
        return 0.0
    ink = ((grey < t) * 255).astype(np.uint8)
    best, best_score = 0.0, -1.0
    for deg in _ANGLES:
        rows = _rotate(ink, deg).sum(axis=1, dtype=np.float64)
        score = float(rows.var())
        if score > best_score + 1e-6 or (abs(score - best_score) <= 1e-6 and abs(deg) < abs(best)):
            best, best_score = deg, score
    return best


class PageUnreadable(ValueError):
    """A page that cannot be judged at all (not an image, damaged): the sentence says which."""


class PageTooSmall(PageUnreadable):
    """A page image with a side under MIN_PAGE_SIDE pixels: too small to judge, let alone read."""


class PageTooLarge(PageUnreadable):
    """A page image with more pixels than allowed (its header says so, nothing is decoded)."""


def open_page(body: bytes, max_pixels: int = MAX_PAGE_PIXELS) -> Image.Image:
    """The decoded header of a page image (no pixels yet); ValueError with a sentence when it is
    not a JPEG or PNG or has more pixels than allowed."""
    from PIL import UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(body))
    except Image.DecompressionBombError:
        raise PageTooLarge(
            f"ảnh quá lớn (tối đa {max_pixels:,} điểm ảnh) / at most {max_pixels:,} pixels are taken"
        ) from None
    except (UnidentifiedImageError, OSError) as exc:
        raise PageUnreadable(f"không đọc được ảnh / the image cannot be decoded ({exc})") from None
    if img.format not in ("JPEG", "PNG"):
        raise PageUnreadable(f"chỉ nhận JPEG hoặc PNG / only JPEG or PNG pages are taken, not {img.format}")
    if min(img.width, img.height) < MIN_PAGE_SIDE:
        raise PageTooSmall(
            f"ảnh {img.width}×{img.height} quá nhỏ (mỗi cạnh cần ít nhất {MIN_PAGE_SIDE} điểm ảnh) / "
            f"the image is {img.width}×{img.height} pixels; a page needs at least {MIN_PAGE_SIDE} "
            "on each side to be read"
        )
    if img.width * img.height > max_pixels:
        raise PageTooLarge(
            f"ảnh {img.width}×{img.height} quá lớn (tối đa {max_pixels:,} điểm ảnh) / "
            f"the image has {img.width * img.height:,} pixels, at most {max_pixels:,} are taken"
        )
    return img


def check_page(number: int, body: bytes, max_pixels: int = MAX_PAGE_PIXELS) -> PageReport:
    """Read and judge one page. A page that cannot be read at all raises PageUnreadable."""
    img = open_page(body, max_pixels)
    width, height = img.size
    if img.format == "JPEG":
        img.draft("L", (SHARPNESS_SIDE, SHARPNESS_SIDE))
    try:
        img = ImageOps.exif_transpose(img)
        grey = _grey(img, SHARPNESS_SIDE)
    except (OSError, SyntaxError, ValueError) as exc:
        raise PageUnreadable(f"ảnh bị hỏng / the image is damaged ({exc})") from None
    luminance = int(grey.mean())
    sharpness = int(laplacian_variance(grey))
    small = np.asarray(
        Image.fromarray(grey.astype(np.uint8)).reduce(max(1, int(max(grey.shape) // _SKEW_SIDE)))
    )
    problems: list[str] = []
    if luminance < MIN_MEAN_LUMINANCE:
        problems.append(
            f"Trang {number} quá tối (độ sáng {luminance}, cần ≥ {MIN_MEAN_LUMINANCE}): "
            "chụp lại nơi đủ sáng. "
            f"Page {number} is too dark (brightness {luminance}, needs {MIN_MEAN_LUMINANCE}): "
            "retake it in better light."
        )
    elif sharpness < MIN_SHARPNESS:
        problems.append(
            f"Trang {number} bị mờ (độ nét {sharpness}, cần ≥ {MIN_SHARPNESS}): giữ máy yên và chụp lại. "
            f"Page {number} is blurred (sharpness {sharpness}, needs {MIN_SHARPNESS}): "
            "hold still and retake it."
        )
    skew = 0.0
    side = None
    if not problems:
        side = cut_side(small.astype(np.float32))
        if side is not None:
            vi = {"top": "trên", "bottom": "dưới", "left": "trái", "right": "phải"}[side]
            problems.append(
                f"Trang {number} bị cắt ở cạnh {vi}: chụp lại cho thấy đủ cả trang. "
                f"Page {number} is cut off at the {side} edge: retake it with the whole page in the frame."
            )
        else:
            skew = skew_angle(small.astype(np.float32))
    return PageReport(number, width, height, luminance, sharpness, skew, tuple(problems), side)


def straightened(body: bytes, skew_deg: float) -> bytes | None:
    """The page turned upright (a phone's EXIF orientation) and level as a JPEG (quality 92),
    or None when it is upright and level enough to keep its own bytes (then the PDF embeds
    them losslessly, and tesseract reads the very pixels the PDF shows)."""
    with Image.open(io.BytesIO(body)) as img:
        upright = img.getexif().get(0x0112, 1) in (0, 1)
        if upright and abs(skew_deg) < DESKEW_MIN_DEG:
            return None
        if abs(skew_deg) < DESKEW_MIN_DEG:
            skew_deg = 0.0
        level = ImageOps.exif_transpose(img).convert("RGB")
        turned = level.rotate(skew_deg, resample=Image.Resampling.BICUBIC, expand=False, fillcolor="white")
        out = io.BytesIO()
        turned.save(out, "JPEG", quality=92, dpi=level.info.get("dpi", (150, 150)))
        return out.getvalue()


def thumbnail(body: bytes, side: int = THUMB_SIDE) -> bytes:
    """A page image upright and scaled to fit `side` pixels, as a JPEG (the console's shipment
    page and the app's capture screen show these)."""
    with Image.open(io.BytesIO(body)) as img:
        if img.format == "JPEG":
            img.draft("RGB", (side, side))
        small = ImageOps.exif_transpose(img).convert("RGB")
        small.thumbnail((side, side))
        out = io.BytesIO()
        small.save(out, "JPEG", quality=80)
        return out.getvalue()
