"""The signature pad's model: strokes with timestamps, undo and clear, a check that
refuses an empty pad or a single dot, and the two attachments CUSTODY.md §4 asks for:
the vector strokes as JSON and a rendered PNG, each addressed by its SHA-256."""

from __future__ import annotations

import hashlib
import io
import math
from dataclasses import dataclass, field

import msgspec

MIN_POINTS = 8  # fewer is a tap, not a signature
MIN_EXTENT = 0.08  # of the pad's larger side: a dot or a tiny scribble is refused


@dataclass
class SignaturePad:
    width: int
    height: int
    strokes: list[list[tuple[float, float, int]]] = field(default_factory=list)

    def start(self, x: float, y: float, t_ms: int) -> None:
        self.strokes.append([(x, y, t_ms)])

    def extend(self, x: float, y: float, t_ms: int) -> None:
        if not self.strokes:
            self.start(x, y, t_ms)
        else:
            self.strokes[-1].append((x, y, t_ms))

    def undo(self) -> None:
        if self.strokes:
            self.strokes.pop()

    def clear(self) -> None:
        self.strokes.clear()

    def problem(self) -> str | None:
        """An i18n key saying why this is not yet a signature, or None."""
        points = [p for s in self.strokes for p in s]
        if not points:
            return "sign.empty"
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        extent = math.hypot(max(xs) - min(xs), max(ys) - min(ys))
        if len(points) < MIN_POINTS or extent < MIN_EXTENT * max(self.width, self.height):
            return "sign.too_small"
        return None

    def strokes_json(self) -> bytes:
        return msgspec.json.encode(
            {
                "w": self.width,
                "h": self.height,
                "strokes": [[[round(x, 1), round(y, 1), t] for x, y, t in s] for s in self.strokes],
            }
        )

    def png(self, line_width: int = 4) -> bytes:
        from PIL import Image, ImageDraw

        img = Image.new("L", (self.width, self.height), 255)
        draw = ImageDraw.Draw(img)
        for stroke in self.strokes:
            pts = [(x, y) for x, y, _ in stroke]
            if len(pts) == 1:
                x, y = pts[0]
                draw.ellipse((x - 2, y - 2, x + 2, y + 2), fill=0)
            else:
                draw.line(pts, fill=0, width=line_width, joint="curve")
        out = io.BytesIO()
        img.save(out, format="PNG", optimize=True)
        return out.getvalue()

    def attachments(self) -> tuple[tuple[str, str, bytes], tuple[str, str, bytes]]:
        """((sha256, 'image/png', png), (sha256, 'application/json', strokes)); the PNG is the
        event's `attachments.signature`, the strokes travel as a photo-less companion."""
        if (key := self.problem()) is not None:
            raise ValueError(key)
        png, strokes = self.png(), self.strokes_json()
        return (
            (hashlib.sha256(png).hexdigest(), "image/png", png),
            (hashlib.sha256(strokes).hexdigest(), "application/json", strokes),
        )
