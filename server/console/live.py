"""Live updates for the console through Litestar channels.

In memory by default (one server process); on Redis when HOSO_REDIS_URL is set, so every
process behind a load balancer tells its open boards about changes made on any other.
A message is small — what happened and to which shipments — and the page fetches the
rows it shows again: filters and role checks stay on the server. Each subscriber hears
only of the shipments it may see (the unit scope of shipments/repository.py): a board
of one unit learns nothing of another unit's codes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import msgspec
from litestar.channels import ChannelsPlugin
from litestar.channels.backends.memory import MemoryChannelsBackend
from litestar.response import ServerSentEventMessage

from ..auth.service import CurrentUser
from ..db.engine import Database
from ..shipments import repository

CHANNEL = "board"
HEARTBEAT_S = 15.0


def channels_plugin(redis_url: str = "") -> ChannelsPlugin:
    if redis_url:
        from litestar.channels.backends.redis import RedisChannelsPubSubBackend
        from redis.asyncio import Redis

        # without subscribers the backend polls: every 250 ms, not its default 1 ms busy loop
        backend: Any = RedisChannelsPubSubBackend(
            redis=Redis.from_url(redis_url), key_prefix="HOSO", stream_sleep_no_subscriptions=250
        )
    else:
        backend = MemoryChannelsBackend()
    return ChannelsPlugin(backend=backend, channels=[CHANNEL], arbitrary_channels_allowed=False)


def publisher(plugin: ChannelsPlugin) -> Any:
    """The listener the database calls after a committed change: (what, shipment codes)."""

    def publish(what: str, codes: list[str]) -> None:
        if codes:
            plugin.publish(msgspec.json.encode({"what": what, "codes": codes[:200]}), channels=[CHANNEL])

    return publish


class Change(msgspec.Struct):
    what: str
    codes: list[str]


_decode_change = msgspec.json.Decoder(Change).decode


async def for_subscriber(db: Database, user: CurrentUser, data: bytes) -> Change | None:
    """The part of a change this subscriber may hear of; None when it is none of theirs."""
    change = _decode_change(data)
    if repository.scope_terms(user) is None:
        return change
    async with db.read() as conn:
        mine = await repository.visible_codes(conn, user, change.codes)
    return Change(what=change.what, codes=mine) if mine else None


async def stream(
    plugin: ChannelsPlugin, db: Database, user: CurrentUser
) -> AsyncIterator[ServerSentEventMessage]:
    """Server-sent events: `ready` once subscribed, then `change` per message the user may see,
    comments as heartbeat."""
    inbox: asyncio.Queue[bytes] = asyncio.Queue(maxsize=1000)

    async def on_event(data: bytes) -> None:
        if not inbox.full():  # a board that cannot keep up refetches anyway: drop, never block
            inbox.put_nowait(data)

    async with plugin.start_subscription([CHANNEL]) as subscriber, subscriber.run_in_background(on_event):
        yield ServerSentEventMessage(event="ready", data="{}", retry=2000)
        while True:
            try:
                data = await asyncio.wait_for(inbox.get(), HEARTBEAT_S)
            except TimeoutError:
                yield ServerSentEventMessage(comment="keep-alive")
                continue
            change = await for_subscriber(db, user, data)
            if change is not None:
                yield ServerSentEventMessage(event="change", data=msgspec.json.encode(change).decode())
