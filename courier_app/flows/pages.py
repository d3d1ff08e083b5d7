"""Photographing a dossier's pages at the pickup (issue 18, CUSTODY.md §4.1): plain Python.

Each photo is judged on the phone by the very checks the server runs (shared/pagecheck.py):
a page that fails gets one sentence naming the page, the reason and the score, and is not
kept; a page that passes is kept at once in the outbox as a draft, so closing the app between
pages loses nothing. "Done" turns the drafts into one batch that sync uploads once the pickup
it was taken at is acknowledged; the server binds the PDF and signs `digitised` itself.
"Skip" drops the drafts: the counter scans the dossier instead.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

from shared import pagecheck
from shared.lifecycle import EventType
from shared.pages import (
    MAX_PAGE_BYTES,
    MAX_PAGES,
    MAX_UPLOAD_BYTES,
    MIN_MEAN_LUMINANCE,
    MIN_PAGE_SIDE,
    MIN_SHARPNESS,
    MiB,
)

from ..outbox import Outbox, PageDraft
from .custody import Incomplete

Translate = Callable[..., str]  # AppContext.tr: (key, **values) -> text

THUMB_SIDE = 120


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the phone says about one photo: kept as page `n`, or why to retake it."""

    n: int
    ok: bool
    message: str  # one sentence, in the app's language
    sharpness: int | None = None


@dataclass
class CaptureFlow:
    outbox: Outbox
    code: str
    tr: Translate
    check: Callable[[int, bytes], pagecheck.PageReport] = pagecheck.check_page
    pages: list[PageDraft] = field(default_factory=list)
    last: Verdict | None = None

    def __post_init__(self) -> None:
        self.pages = self.outbox.page_drafts(self.code)  # pages kept before the app was closed
        if self.pickup_id is not None:
            self.outbox.open_capture(self.code)  # Today offers to go on until done or skipped

    @property
    def pickup_id(self) -> str | None:
        """This phone's pickup of the dossier, which the pages go with (None: no pickup here)."""
        return self.outbox.latest_event_id(self.code, EventType.PICKED_UP)

    @property
    def next_number(self) -> int:
        return len(self.pages) + 1

    @property
    def bytes_kept(self) -> int:
        return sum(len(p.body) for p in self.pages)

    def refusal(self, n: int) -> str | None:
        """Why no further page may be added now (the limits of one upload), or None."""
        if len(self.pages) >= MAX_PAGES:
            return self.tr("capture.too_many", n=MAX_PAGES)
        if self.bytes_kept >= MAX_UPLOAD_BYTES:
            return self.tr("capture.too_heavy", mib=MAX_UPLOAD_BYTES // MiB)
        return None

    def _retake(self, n: int, why: str) -> Verdict:
        return Verdict(n, False, self.tr("capture.retake", n=n, why=why))

    def take(self, jpeg: bytes) -> Verdict:
        """Judge one photo (CPU work: run it off the UI loop); keep it when it passes."""
        n = self.next_number
        if (full := self.refusal(n)) is not None:
            self.last = Verdict(n, False, full)
            return self.last
        if len(jpeg) > MAX_PAGE_BYTES or self.bytes_kept + len(jpeg) > MAX_UPLOAD_BYTES:
            self.last = self._retake(n, self.tr("capture.why_too_big", need=MAX_PAGE_BYTES // MiB))
            return self.last
        try:
            report = self.check(n, jpeg)
        except pagecheck.PageTooSmall:
            self.last = self._retake(n, self.tr("capture.why_too_small", need=MIN_PAGE_SIDE))
            return self.last
        except pagecheck.PageUnreadable:
            self.last = self._retake(n, self.tr("capture.why_unreadable"))
            return self.last
        if not report.ok:
            if report.luminance < MIN_MEAN_LUMINANCE:
                why = self.tr("capture.why_dark", score=report.luminance, need=MIN_MEAN_LUMINANCE)
            elif report.sharpness < MIN_SHARPNESS:
                why = self.tr("capture.why_blurred", score=report.sharpness, need=MIN_SHARPNESS)
            else:
                why = self.tr("capture.why_cut", side=self.tr(f"side.{report.cut or 'right'}"))
            self.last = Verdict(n, False, self.tr("capture.retake", n=n, why=why), report.sharpness)
            return self.last
        sha = hashlib.sha256(jpeg).hexdigest()
        kept = self.outbox.add_page_draft(self.code, sha, jpeg, report.sharpness)
        self.pages = self.outbox.page_drafts(self.code)
        self.last = Verdict(kept, True, self.tr("capture.accepted", n=kept, score=report.sharpness))
        return self.last

    def thumbnail(self, page: PageDraft) -> bytes:
        return pagecheck.thumbnail(page.body, THUMB_SIDE)

    def finish(self) -> int:
        """The kept pages become one batch for sync; raises Incomplete with an i18n key."""
        if not self.pages:
            raise Incomplete("capture.none")
        pickup = self.pickup_id
        if pickup is None:
            raise Incomplete("capture.no_pickup")
        return self.outbox.queue_pages(self.code, pickup)

    def skip(self) -> None:
        """No pages from the phone: the counter scans the dossier."""
        self.outbox.drop_page_drafts(self.code)
        self.pages = []
