"""Scanning: frames or typed digits → the one shipment the courier means.

Frames are JPEGs from the camera; every QR in a frame is read and classified (see
scanner.py). One of ours → done; several of ours → the courier picks; anything else → a
message saying what is wrong, and scanning goes on.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from shared.labels import LabelKeySet

from .. import scanner
from .custody import SCANNED, TYPED_REASONS, Identified

DARK_HINT_AFTER = 6  # frames (about 2 s of scanning)


@dataclass
class ScanFlow:
    label_keys: scanner.Keys
    assigned: set[str]
    message: str | None = None  # i18n key of the last verdict
    choices: list[str] = field(default_factory=list)  # several of ours in view
    code: str | None = None
    last_decode_ms: float = 0.0
    identified: Identified | None = None  # how `code` was found: scanned, or typed and why
    # the server's key set fetched now (None offline): a label naming a key the phone does not
    # know is either newer than the phone's set or forged, and a fresh set tells which
    refresh_keys: Callable[[], LabelKeySet | None] | None = None
    low_light: bool = False  # the torch is on: every frame missed takes the low-light path
    enhanced: bool = True  # the low-light path at all (off only in the benchmark's comparison)
    dark_misses: int = 0  # dark frames in a row with nothing read: past DARK_HINT_AFTER, say so

    def _fresh(
        self, results: list[scanner.ScanResult], texts: Callable[[], list[str]]
    ) -> list[scanner.ScanResult]:
        if self.refresh_keys is None or not any(r.verdict == "unknown_key" for r in results):
            return results
        keys = self.refresh_keys()
        if keys is None:
            return results  # offline: "go online and scan again"
        self.label_keys, self.refresh_keys = keys, None
        again = [scanner.classify(t, keys, self.assigned) for t in texts()]
        # still unknown with the server's own set: nobody we know made this label
        return [
            scanner.ScanResult("forged", r.code, "scan.forged") if r.verdict == "unknown_key" else r
            for r in again
        ]

    def on_frame(self, jpeg: bytes) -> str | None:
        from PIL import Image, UnidentifiedImageError

        start = time.perf_counter()
        try:
            image = Image.open(io.BytesIO(jpeg))
            image.load()
        except (UnidentifiedImageError, OSError):
            return None
        low_light = True if self.low_light else None  # None: the frame's own darkness decides
        texts = scanner.decode_frame(image, low_light=low_light, enhanced=self.enhanced)
        self.dark_misses = self.dark_misses + 1 if not texts and scanner.is_dark(image) else 0
        results = scanner.classify_all(texts, self.label_keys, self.assigned)
        results = self._fresh(results, lambda: texts)
        self.last_decode_ms = (time.perf_counter() - start) * 1000
        found = self._decide(results)
        if found is not None:
            self.identified = SCANNED
        return found

    @property
    def too_dark(self) -> bool:
        """Frames keep coming dark and unread: the courier should light the label, hold still."""
        return self.dark_misses >= DARK_HINT_AFTER

    def on_typed(self, text: str, reason: str | None = None) -> str | None:
        """A typed code opens a form only with the reason it was not scanned."""
        [result] = self._fresh([scanner.classify(text, self.label_keys, self.assigned)], lambda: [text])
        if result.verdict == "ok" and reason not in TYPED_REASONS:
            self.message = "scan.typed_reason_missing"
            return None
        found = self._decide([result])
        if found is not None:
            self.identified = Identified("typed", reason)
        return found

    def choose(self, code: str) -> str | None:
        if code in self.choices:
            self.code, self.choices, self.identified = code, [], SCANNED
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
