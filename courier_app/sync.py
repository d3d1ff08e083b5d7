"""Pushing the outbox to the server: attachments first, then events in batches, with
exponential backoff and full jitter between failed attempts. Every step is idempotent
(content-addressed uploads, duplicate events answered as such), so a sync cut off at any
point is simply run again.

`Syncer` is one pass (and the retry loop of the command line); `SyncDriver` is what the
running app holds: one pass at a time, the last failure, and the backoff state.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from shared.api import EventResult

from .api import ApiClient, Refused, ServerUnavailable, TokenExpired
from .outbox import ACKED, PENDING, Outbox

PICKUP_REJECTED = (
    "Lần nhận hồ sơ bị máy chủ từ chối nên các trang không được gửi; quầy sẽ quét hồ sơ. "
    "(The pickup was rejected, so the pages were not sent: the counter scans the dossier instead.)"
)

__all__ = ["BATCH", "ServerUnavailable", "SyncDriver", "SyncReport", "Syncer", "TokenExpired"]

BATCH = 100


@dataclass
class SyncReport:
    uploaded: int = 0
    accepted: int = 0
    duplicate: int = 0
    rejected: int = 0
    flagged: int = 0  # accepted, and flagged by the server (pin_mismatch, identity_mismatch, …)
    pages_sent: int = 0  # page batches the server bound and signed
    pages_refused: int = 0  # page batches it refused (handed on: the counter scans them)

    def add(self, other: SyncReport) -> None:
        self.uploaded += other.uploaded
        self.accepted += other.accepted
        self.duplicate += other.duplicate
        self.rejected += other.rejected
        self.flagged += other.flagged
        self.pages_sent += other.pages_sent
        self.pages_refused += other.pages_refused


class Syncer:
    def __init__(
        self,
        outbox: Outbox,
        api: ApiClient,
        *,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        base_delay: float = 1.0,
        max_delay: float = 300.0,
    ) -> None:
        self.outbox = outbox
        self.api = api
        self.sleep = sleep
        self.rng = rng or random.Random()
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.failures = 0

    def run_once(self) -> SyncReport:
        """One full pass; raises ServerUnavailable or TokenExpired, leaving the outbox as it was."""
        report = SyncReport()
        for a in self.outbox.pending_attachments():
            try:
                self.api.upload_attachment(a.sha256, a.content_type, a.body)
            except Refused:
                continue  # kept for the next pass; the event that needs it is flagged by the server
            self.outbox.mark_uploaded(a.sha256)
            report.uploaded += 1
        while events := self.outbox.pending(BATCH):
            try:
                results = self.api.sync_events(events)
            except Refused as exc:
                # the whole batch was refused as malformed: keep the events, shown with the reason
                results = [EventResult(e["id"], "rejected", exc.detail) for e in events]
            self.outbox.acknowledge(results)
            report.flagged += self.outbox.note_flags(events, results)
            for res in results:
                setattr(report, res.status, getattr(report, res.status) + 1)
        self._send_pages(report)
        self.failures = 0
        return report

    def _send_pages(self, report: SyncReport) -> None:
        """Page batches, each once the pickup it was taken at is acknowledged and no record of
        the dossier waits before it (the `digitised` event the server signs moves the head).
        A record made after the pages (a handover) has reached the server first, so the
        server refuses the batch: the counter scans the dossier instead (CUSTODY.md §4.1)."""
        for batch in self.outbox.page_batches(PENDING):
            state = self.outbox.states([batch.after_event]).get(batch.after_event)
            if state == PENDING or self.outbox.waiting_for(batch.shipment):
                continue
            if state != ACKED:
                self.outbox.pages_refused(batch.id, PICKUP_REJECTED)
                report.pages_refused += 1
                continue
            try:
                done = self.api.upload_pages(batch.shipment, self.outbox.batch_pages(batch.id))
            except Refused as exc:
                self.outbox.pages_refused(batch.id, exc.detail)
                report.pages_refused += 1
                continue
            self.outbox.pages_sent(batch.id, done.event)
            report.pages_sent += 1

    def next_delay(self) -> float:
        """Full jitter: uniform in [0, min(max, base·2^failures)]."""
        # the exponent is capped: days offline would otherwise overflow a float
        return self.rng.uniform(0, min(self.max_delay, self.base_delay * 2 ** min(self.failures, 40)))

    def run_until_empty(self, deadline_s: float = 600.0) -> SyncReport:
        """Retry with backoff until everything is answered, the token expires, or the deadline passes."""
        start = time.monotonic()
        total = SyncReport()
        while True:
            try:
                report = self.run_once()
            except ServerUnavailable:
                self.failures += 1
                if time.monotonic() - start > deadline_s:
                    raise
                self.sleep(self.next_delay())
                continue
            total.add(report)
            if (
                not self.outbox.waiting()
                and not self.outbox.pending_attachments()
                and not self.outbox.page_batches(PENDING)
            ):
                return total


class SyncDriver:
    """The app's sync state: one pass at a time (the background loop and the "sync now"
    button may ask together), the last failure to show, and the backoff between passes."""

    def __init__(self, syncer: Syncer) -> None:
        self.syncer = syncer
        self.last_error: str | None = None
        self._lock = threading.Lock()

    def sync_now(self) -> SyncReport | None:
        """One pass (attachments, then events); None when offline. Raises TokenExpired."""
        with self._lock:
            try:
                report = self.syncer.run_once()
            except ServerUnavailable as exc:
                self.syncer.failures += 1
                self.last_error = str(exc)
                return None
            self.last_error = None
            return report

    def next_delay(self) -> float:
        return self.syncer.next_delay()
