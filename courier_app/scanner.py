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


def scan_frame(image: object, label_keys: Keys, assigned: set[str]) -> list[ScanResult]:
    """Every code in view, ours first; the caller asks which one when more than one is `ok`."""
    return classify_all(decode_frame(image), label_keys, assigned)


def classify_all(texts: list[str], label_keys: Keys, assigned: set[str]) -> list[ScanResult]:
    seen: dict[str, ScanResult] = {}
    for text in texts:
        result = classify(text, label_keys, assigned)
        seen.setdefault(result.code or text, result)
    return sorted(seen.values(), key=lambda r: r.verdict != "ok")
