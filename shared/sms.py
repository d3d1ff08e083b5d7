"""SMS encodings and segment counts (3GPP TS 23.038 / 23.040).

A text that uses only the GSM 7-bit default alphabet (and its extension table, whose
characters take two septets: an escape and the character) goes as GSM-7: 160 septets in
one message, 153 per part of a concatenated one (the 6-byte UDH takes 7 septets). Any
other character (Vietnamese letters with diacritics, mostly) sends the whole text as UCS-2:
70 UTF-16 code units in one message, 67 per part. The segments are what a gateway bills.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# the default alphabet, in code order (0x00-0x7F); 0x1B is the escape to the extension table
GSM7_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = {
    "\x0c": 0x0A,
    "^": 0x14,
    "{": 0x28,
    "}": 0x29,
    "\\": 0x2F,
    "[": 0x3C,
    "~": 0x3D,
    "]": 0x3E,
    "|": 0x40,
    "€": 0x65,
}
_BASIC = {ch: i for i, ch in enumerate(GSM7_BASIC) if ch != "\x1b"}

Encoding = Literal["gsm7", "ucs2"]


@dataclass(frozen=True, slots=True)
class Segments:
    encoding: Encoding
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)
    segments: int  # messages the network sends (and bills)
    per_segment: int  # units per segment at this length (160/153 or 70/67)


def is_gsm7(text: str) -> bool:
    return all(ch in _BASIC or ch in GSM7_EXTENSION for ch in text)


def count(text: str) -> Segments:
    """How `text` goes over SMS: its encoding, its length in units and in segments."""
    if is_gsm7(text):
        units = sum(2 if ch in GSM7_EXTENSION else 1 for ch in text)
        single, part = 160, 153
        encoding: Encoding = "gsm7"
    else:
        units = len(text.encode("utf-16-be")) // 2
        single, part = 70, 67
        encoding = "ucs2"
    if units <= single:
        return Segments(encoding, units, 1 if units else 0, single)
    return Segments(encoding, units, -(-units // part), part)


def encode(text: str) -> tuple[int, bytes]:
    """(SMPP data_coding, short_message bytes): GSM 03.38 unpacked, one septet a byte
    (data_coding 0, the SMSC's default alphabet), or UCS-2 big-endian (data_coding 8)."""
    if is_gsm7(text):
        out = bytearray()
        for ch in text:
            if ch in GSM7_EXTENSION:
                out += bytes((0x1B, GSM7_EXTENSION[ch]))
            else:
                out.append(_BASIC[ch])
        return 0, bytes(out)
    return 8, text.encode("utf-16-be")


def decode(data_coding: int, payload: bytes) -> str:
    """The inverse of encode (what a test SMSC does with a submit_sm)."""
    if data_coding == 8:
        return payload.decode("utf-16-be")
    ext = {v: k for k, v in GSM7_EXTENSION.items()}
    out, escape = [], False
    for b in payload:
        if escape:
            out.append(ext.get(b, " "))
            escape = False
        elif b == 0x1B:
            escape = True
        else:
            out.append(GSM7_BASIC[b])
    return "".join(out)


def split(text: str) -> list[str]:
    """The text cut into the parts of a concatenated SMS (one part when it fits), never
    splitting an escape pair or a surrogate pair."""
    info = count(text)
    if info.segments <= 1:
        return [text]
    parts: list[str] = []
    current: list[str] = []
    used = 0
    for ch in text:
        size = (
            (2 if ch in GSM7_EXTENSION else 1)
            if info.encoding == "gsm7"
            else len(ch.encode("utf-16-be")) // 2
        )
        if used + size > info.per_segment:
            parts.append("".join(current))
            current, used = [], 0
        current.append(ch)
        used += size
    if current:
        parts.append("".join(current))
    return parts
