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

Verdict = Literal["ok", "forged", "not_assigned", "foreign", "bad_code"]


@dataclass(frozen=True, slots=True)
class ScanResult:
    verdict: Verdict
    code: str | None
    message_key: str  # i18n key for the courier


def classify(text: str, label_keys: list[str], assigned: set[str]) -> ScanResult:
    text = (text or "").strip()
    if "/t/" in text:
        try:
            code, sig = labels.parse_label_url(text)
        except codes.InvalidCode:
            return ScanResult("foreign", None, "scan.foreign")
        if not labels.is_authentic(code, sig, label_keys):
            return ScanResult("forged", code, "scan.forged")
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


def decode_frame(image: object) -> list[str]:
    """All QR texts in a frame (a PIL image or a numpy array); [] when none or unreadable."""
    import zxingcpp

    try:
        return [
            r.text
            for r in zxingcpp.read_barcodes(
                image, formats=zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode)
            )
        ]
    except (ValueError, TypeError, RuntimeError):
        return []


def scan_frame(image: object, label_keys: list[str], assigned: set[str]) -> list[ScanResult]:
    """Every code in view, ours first; the caller asks which one when more than one is `ok`."""
    seen: dict[str, ScanResult] = {}
    for text in decode_frame(image):
        result = classify(text, label_keys, assigned)
        seen.setdefault(result.code or text, result)
    return sorted(seen.values(), key=lambda r: r.verdict != "ok")
