"""The outbox worker: claim due rows, send them, record each outcome.

Several workers may run against one PostgreSQL database (`hoso worker`, and one inside each
`hoso serve`): a claim takes rows with `FOR UPDATE SKIP LOCKED` and leases them for
`outbox_lease_s`, so no two workers hold one row, and a worker killed mid-batch leaves its
unsent rows to be claimed again when the lease ends. An outcome is written as soon as it is
known (outcomes that arrive together are written in one transaction), only on rows the
worker still holds. What no outbox can promise: a worker killed after the far end took a
message and before its outcome committed sends it again after the lease (at least once);
webhook receivers drop such a repeat by its `webhook-id`, as Standard Webhooks says.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import nacl.public

from shared.i18n.outbox import skip_reason
from shared.timeutil import utcnow

from ..db.engine import Database
from ..keys import ServerKeys
from ..settings import Settings
from . import messages
from . import repository as repo
from .channels import (
    Channels,
    Failed,
    Outcome,
    RateLimit,
    Sent,
    SmppChannel,
    Sms,
    Webhook,
    WebhookChannel,
    Zns,
    ZnsChannel,
    https_client,
    webhook_body_bytes,
)

log = logging.getLogger(__name__)


def channels_from(settings: Settings) -> Channels:
    ch = Channels()
    http = https_client(settings.https_ca_file)
    ch._http = http
    if settings.smpp_host:
        ch.smpp = SmppChannel(
            settings.smpp_host,
            settings.smpp_port,
            settings.smpp_system_id,
            settings.smpp_password,
            settings.smpp_system_type,
        )
    if settings.zalo_token:
        ch.zns = ZnsChannel(settings.zalo_url, settings.zalo_token, http)
    ch.webhook = WebhookChannel(http)
    return ch


def backoff(attempts: int, base_s: float, cap_s: float) -> float:
    """Seconds before try number attempts+1: base·2^(attempts-1), at most cap, then between
    half and all of that at random (so retries of one outage spread out)."""
    delay = min(cap_s, base_s * 2.0 ** max(attempts - 1, 0))
    return delay / 2 + random.uniform(0, delay / 2)


class Worker:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        keys: ServerKeys,
        channels: Channels | None = None,
        name: str | None = None,
    ) -> None:
        self.db, self.settings, self.keys = db, settings, keys
        self.channels = channels if channels is not None else channels_from(settings)
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"[:64]
        self._unseal = nacl.public.SealedBox(keys.seal) if keys.seal is not None else None
        self._wake = asyncio.Event()
        self._flush_lock = asyncio.Lock()
        self._done: list[dict[str, Any]] = []
        self._again: list[dict[str, Any]] = []
        self.sent = 0
        self.limits: dict[str, RateLimit] = {}
        self._inflight = asyncio.Semaphore(32)
        db.listeners.append(lambda what, codes: self._wake.set())

    def _limit(self, key: str, rate: float) -> RateLimit:
        if key not in self.limits:
            self.limits[key] = RateLimit(rate)
        return self.limits[key]

    async def run(self, stop: asyncio.Event) -> None:
        """Until `stop` is set: work through what is due, then wait for a change or the poll."""
        while not stop.is_set():
            try:
                n = await self.run_once()
            except Exception:  # a database hiccup: log it, never let the loop die
                log.exception("outbox worker %s: batch failed", self.name)
                n = 0
            if n:
                continue
            self._wake.clear()
            waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())]
            await asyncio.wait(waits, timeout=self.settings.outbox_poll_s, return_when="FIRST_COMPLETED")
            for w in waits:
                w.cancel()

    async def run_once(self) -> int:
        """Claim one batch, send it, record it; the number of rows claimed."""
        s = self.settings
        async with self.db.read() as conn:
            if not await repo.anything_due(conn, utcnow()):
                return 0
        async with self.db.write() as conn:
            rows = await repo.claim(conn, self.name, s.outbox_batch, s.outbox_lease_s, utcnow())
        if not rows:
            return 0
        async with self.db.read() as conn:
            ships = await repo.shipments_for(
                conn, {r.shipment_id for r in rows if r.channel == "citizen" and r.shipment_id}
            )
            units = await repo.notify_settings(
                conn, {r.unit_id for r in rows if r.channel == "citizen" and r.unit_id}
            )
            subs = await repo.subscriptions_for(conn, {r.subscription_id for r in rows if r.subscription_id})
        sms_batch: list[tuple[Any, Sms, str]] = []
        jobs: list[Awaitable[None]] = []
        for row in rows:
            if row.channel == "webhook":
                jobs.append(self._webhook(row, subs.get(row.subscription_id)))
                continue
            plan = self._citizen(row, ships.get(row.shipment_id), units.get(row.unit_id))
            if isinstance(plan, tuple):
                kind, msg, dest = plan
                if kind == "sms":
                    sms_batch.append((row, msg, dest))
                else:
                    jobs.append(self._zns(row, msg, dest))
            else:
                self._record(row, plan, "", None)
        if sms_batch:
            jobs.append(self._sms(sms_batch))
        await asyncio.gather(*jobs)
        await self._flush()
        return len(rows)

    # --- deciding ---

    def _citizen(self, row: Any, ship: Any, unit: Any) -> tuple[str, Any, str] | str:
        """(channel, message, masked number), or why nothing is sent (the row is skipped)."""
        if ship is None:
            return "skip:" + skip_reason("no_shipment")
        number = messages.mobile_number(messages.citizen_phone(ship.kind, ship.sender, ship.recipient))
        if number is None:
            return "skip:" + skip_reason("no_mobile")
        channel = unit.channel if unit is not None else "sms"
        if channel == "off":
            return "skip:" + skip_reason("notifications_off")
        pin = self._pin(row)
        if row.topic == "pin" and pin is None:
            return "skip:" + skip_reason("pin_gone")
        templates = (unit.zns_templates if unit is not None else None) or {}
        dest = messages.masked(number)
        base = self.settings.base_url
        payload = {"code": ship.code, "kind": ship.kind, **(row.payload or {})}
        if channel == "zalo" and self.channels.zns is not None and templates.get(row.topic):
            params = messages.params(row.topic, payload, base, pin)
            return ("zns", Zns(number, str(templates[row.topic]), params, f"hoso-{row.id}"), dest)
        if self.channels.smpp is None:
            return "skip:" + skip_reason("no_gateway")
        sender = (unit.sms_sender if unit is not None else "") or self.settings.smpp_source_addr
        return ("sms", Sms(number, messages.text(row.topic, payload, base, pin), sender), dest)

    def _pin(self, row: Any) -> str | None:
        if row.sealed is None or self._unseal is None:
            return None
        try:
            return self._unseal.decrypt(bytes(row.sealed)).decode()
        except nacl.exceptions.CryptoError:
            return None

    # --- sending ---

    async def _sms(self, batch: list[tuple[Any, Sms, str]]) -> None:
        assert self.channels.smpp is not None
        limit = self._limit("smpp", self.settings.smpp_rate)
        for start in range(0, len(batch), 50):
            chunk = batch[start : start + 50]
            await limit.take(len(chunk))
            outcomes = await self.channels.smpp.send([m for _, m, _ in chunk])
            for (row, _, dest), outcome in zip(chunk, outcomes, strict=True):
                self._record(row, outcome, dest, "sms")
            await self._flush()

    async def _zns(self, row: Any, msg: Zns, dest: str) -> None:
        assert self.channels.zns is not None
        await self._limit("zns", self.settings.zalo_rate).take()
        async with self._inflight:
            outcome = await self.channels.zns.send_one(msg)
        self._record(row, outcome, dest, "zns")
        await self._flush()

    async def _webhook(self, row: Any, sub: Any) -> None:
        if sub is None or not sub.active:
            self._record(row, "skip:" + skip_reason("subscription_gone"), "", None)
            return
        assert self.channels.webhook is not None
        secrets = [sub.secret]
        if sub.previous_secret and sub.previous_until and sub.previous_until > utcnow():
            secrets.append(sub.previous_secret)
        msg = Webhook(sub.url, f"msg_{row.id}", webhook_body_bytes(row.payload), tuple(secrets))
        await self._limit(f"webhook:{urlsplit(sub.url).netloc}", self.settings.webhook_rate).take()
        async with self._inflight:
            outcome = await self.channels.webhook.send_one(msg)
        self._record(row, outcome, sub.url[:300], "webhook")
        await self._flush()

    # --- recording ---

    def _record(self, row: Any, outcome: Outcome | str, dest: str, channel: str | None) -> None:
        now = utcnow()
        base = {
            "b_id": row.id,
            "channel": channel or row.channel,
            "destination": dest or row.destination,
            "segments": None,
            "sent_at": None,
            "next_at": row.next_at,
            "attempts": row.attempts,
            "last_error": "",
        }
        if isinstance(outcome, str):  # nothing to send it with, or no one to send it to
            self._done.append({**base, "state": "skipped", "last_error": outcome.removeprefix("skip:")})
            return
        if isinstance(outcome, Sent):
            self.sent += 1
            self._done.append(
                {
                    **base,
                    "state": "sent",
                    "attempts": row.attempts + 1,
                    "segments": outcome.segments,
                    "sent_at": now,
                }
            )
            return
        attempts = row.attempts + 1
        dead = not outcome.retryable or attempts >= self.settings.outbox_max_attempts
        s = self.settings
        next_at: datetime = now + timedelta(
            seconds=backoff(attempts, s.outbox_backoff_s, s.outbox_backoff_cap_s)
        )
        self._again.append(
            {
                **base,
                "state": "dead" if dead else "pending",
                "attempts": attempts,
                "last_error": outcome.error[:2000],
                "next_at": now if dead else next_at,
            }
        )

    async def _flush(self) -> None:
        """Write every outcome known so far in one transaction (a flush already running
        leaves the next to the next caller)."""
        async with self._flush_lock:
            done, again = self._done, self._again
            if not done and not again:
                return
            self._done, self._again = [], []
            async with self.db.write() as conn:
                await repo.finish(conn, self.name, done, again)


async def run_until(db: Database, settings: Settings, keys: ServerKeys, stop: asyncio.Event) -> None:
    worker = Worker(db, settings, keys)
    try:
        await worker.run(stop)
    finally:
        await worker.channels.close()


__all__ = ["Callable", "Failed", "Worker", "backoff", "channels_from", "run_until"]
