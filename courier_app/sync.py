"""Pushing the outbox to the server: attachments first, then events in batches, with
exponential backoff and full jitter between failed attempts. Every step is idempotent
(content-addressed uploads, duplicate events answered as such), so a sync cut off at any
point is simply run again."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from .outbox import Outbox

BATCH = 100


class TokenExpired(Exception):
    """The server no longer accepts the token: sign in again (the outbox is kept)."""


class ServerUnavailable(Exception):
    pass


@dataclass
class SyncReport:
    uploaded: int = 0
    accepted: int = 0
    duplicate: int = 0
    rejected: int = 0


class Syncer:
    def __init__(
        self,
        outbox: Outbox,
        http: httpx.Client,
        token: Callable[[], str],
        *,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        base_delay: float = 1.0,
        max_delay: float = 300.0,
    ) -> None:
        self.outbox = outbox
        self.http = http
        self.token = token
        self.sleep = sleep
        self.rng = rng or random.Random()
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.failures = 0

    def _headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token()}", **(extra or {})}

    def _check(self, r: httpx.Response) -> None:
        if r.status_code == 401:
            raise TokenExpired(r.json().get("detail", "sign in again"))
        if r.status_code >= 500:
            raise ServerUnavailable(f"server answered {r.status_code}")

    def run_once(self) -> SyncReport:
        """One full pass; raises ServerUnavailable or TokenExpired, leaving the outbox as it was."""
        report = SyncReport()
        try:
            for a in self.outbox.pending_attachments():
                r = self.http.put(
                    f"/api/v1/attachments/{a.sha256}",
                    content=a.body,
                    headers=self._headers({"content-type": a.content_type}),
                )
                self._check(r)
                if r.status_code in (200, 201):
                    self.outbox.mark_uploaded(a.sha256)
                    report.uploaded += 1
            while events := self.outbox.pending(BATCH):
                r = self.http.post("/api/v1/events", json={"events": events}, headers=self._headers())
                self._check(r)
                if r.status_code != 200:
                    # the whole batch was refused as malformed: keep the events, shown with the reason
                    reason = r.json().get("detail", f"HTTP {r.status_code}")
                    self.outbox.acknowledge(
                        [{"id": e["id"], "status": "rejected", "reason": reason} for e in events]
                    )
                    report.rejected += len(events)
                    continue
                results = r.json()["results"]
                self.outbox.acknowledge(results)
                for res in results:
                    setattr(report, res["status"], getattr(report, res["status"]) + 1)
        except httpx.TransportError as exc:
            raise ServerUnavailable(str(exc)) from exc
        self.failures = 0
        return report

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
            for name in ("uploaded", "accepted", "duplicate", "rejected"):
                setattr(total, name, getattr(total, name) + getattr(report, name))
            if not self.outbox.waiting() and not self.outbox.pending_attachments():
                return total
