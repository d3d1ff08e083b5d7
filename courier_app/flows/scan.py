"""Scanning: frames or typed digits → the one shipment the courier means.

Frames are JPEGs from the camera; every QR in a frame is read and classified (see
scanner.py). One of ours → done; several of ours → the courier picks; anything else → a
message saying what is wrong, and scanning goes on.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass, field

from .. import scanner


@dataclass
class ScanFlow:
    label_keys: list[str]
    assigned: set[str]
    message: str | None = None  # i18n key of the last verdict
    choices: list[str] = field(default_factory=list)  # several of ours in view
    code: str | None = None
    last_decode_ms: float = 0.0

    def on_frame(self, jpeg: bytes) -> str | None:
        from PIL import Image, UnidentifiedImageError

        start = time.perf_counter()
        try:
            image = Image.open(io.BytesIO(jpeg))
            image.load()
        except (UnidentifiedImageError, OSError):
            return None
        results = scanner.scan_frame(image, self.label_keys, self.assigned)
        self.last_decode_ms = (time.perf_counter() - start) * 1000
        return self._decide(results)

    def on_typed(self, text: str) -> str | None:
        return self._decide([scanner.classify(text, self.label_keys, self.assigned)])

    def choose(self, code: str) -> str | None:
        if code in self.choices:
            self.code, self.choices = code, []
            return code
        return None

    def _decide(self, results: list[scanner.ScanResult]) -> str | None:
        if not results:
            return None
        ok = [r.code for r in results if r.verdict == "ok" and r.code]
        if len(ok) == 1:
            self.code, self.message, self.choices = ok[0], "scan.ok", []
            return self.code
        if len(ok) > 1:
            self.choices, self.message = ok, "scan.which"
            return None
        self.message = results[0].message_key
        return None
