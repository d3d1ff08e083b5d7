"""From a camera frame or typed digits to a shipment the courier can act on.

zxing-cpp reads every QR in the frame; each text is classified: one of our signed labels
(verified offline with the label keys from enrolment), a label whose signature fails
(forged or altered), a code that is not on today's list, or something that is not ours
at all. Several of ours in view → the app asks which one. Nothing here raises on bad input.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from shared import codes, labels

Verdict = Literal["ok", "forged", "revoked", "unknown_key", "not_assigned", "foreign", "bad_code"]
Keys = labels.LabelKeySet | list[str]


def key_set(keys: Keys) -> labels.LabelKeySet:
    """A bare list of public keys (before key sets) counts them all as current."""
    if isinstance(keys, labels.LabelKeySet):
        return keys
    return labels.LabelKeySet.of(labels.LabelKey(k, "current") for k in keys)


@dataclass(frozen=True, slots=True)
class ScanResult:
    verdict: Verdict
    code: str | None
    message_key: str  # i18n key for the courier


def classify(text: str, label_keys: Keys, assigned: set[str]) -> ScanResult:
    text = (text or "").strip()
    if "/t/" in text:
        try:
            label = labels.parse_label(text)
        except codes.InvalidCode:
            return ScanResult("foreign", None, "scan.foreign")
        code = label.code
        verdict = key_set(label_keys).check(code, label.sig, label.kid)
        if verdict != "ok":
            return ScanResult(verdict, code, f"scan.{verdict}")
    else:
        try:
            code = codes.normalize(text)
        except codes.InvalidCode:
            if text and not text.replace(" ", "").isdigit():
                return ScanResult("foreign", None, "scan.foreign")
            return ScanResult("bad_code", None, "scan.bad_code")
    if code not in assigned:
        return ScanResult("not_assigned", code, "scan.not_assigned")
    return ScanResult("ok", code, "scan.ok")


DARK_MEAN = 90  # mean luminance (0-255) under which a frame takes the low-light path


def _read(image: object, global_histogram: bool = False) -> list[str]:
    import zxingcpp

    binarizer = zxingcpp.Binarizer.GlobalHistogram if global_histogram else zxingcpp.Binarizer.LocalAverage
    try:
        found = zxingcpp.read_barcodes(
            image, formats=zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode), binarizer=binarizer
        )
    except (ValueError, TypeError, RuntimeError):
        return []
    return [r.text for r in found]


def is_dark(image: object) -> bool:
    """Whether a PIL frame is dark enough for the low-light path (measured on a thumbnail)."""
    from PIL import Image, ImageStat

    if not isinstance(image, Image.Image):
        return False
    small = image.convert("L").reduce(8)
    return bool(ImageStat.Stat(small).mean[0] < DARK_MEAN)


def enhance(image: object) -> object:
    """The low-light pre-processing: grey, contrast stretched (1 % clipped at each end) and
    sharpened (unsharp mask, radius 3), so the binarizer sees the modules of a dark, noisy or
    slightly shaken frame."""
    from PIL import Image, ImageFilter, ImageOps

    if not isinstance(image, Image.Image):
        return image
    grey = ImageOps.autocontrast(image.convert("L"), cutoff=1)
    return grey.filter(ImageFilter.UnsharpMask(radius=3, percent=200, threshold=0))


def decode_frame(image: object, low_light: bool | None = None, enhanced: bool = True) -> list[str]:
    """All QR texts in a frame (a PIL image or a numpy array); [] when none or unreadable.

    The frame is read as it is first. When nothing is found and the frame is dark — or the
    courier turned the torch on (`low_light=True`) — it is read again after `enhance()`,
    with zxing's local and then its global-histogram binarizer (the low-light path;
    `enhanced=False` skips it, for the benchmark's comparison)."""
    texts = _read(image)
    if texts or not enhanced:
        return texts
    if low_light is None:
        low_light = is_dark(image)
    if not low_light:
        return []
    better = enhance(image)
    return _read(better) or _read(better, global_histogram=True)


def scan_frame(image: object, label_keys: Keys, assigned: set[str]) -> list[ScanResult]:
    """Every code in view, ours first; the caller asks which one when more than one is `ok`."""
    return classify_all(decode_frame(image), label_keys, assigned)


def classify_all(texts: list[str], label_keys: Keys, assigned: set[str]) -> list[ScanResult]:
    seen: dict[str, ScanResult] = {}
    for text in texts:
        result = classify(text, label_keys, assigned)
        seen.setdefault(result.code or text, result)
    return sorted(seen.values(), key=lambda r: r.verdict != "ok")
