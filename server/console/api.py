"""The one JSON route the console adds for the courier's phone: handovers waiting for its events."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from litestar import Controller, Request, get
from msgspec import Struct

from ..auth.security import roles
from ..auth.service import CurrentUser
from ..deps import DB
from . import clerk


class PendingHandover(Struct):
    id: int
    codes: list[str]
    counterparty: dict[str, Any]
    signature: str  # sha256 of the clerk's signature PNG: put it in attachments.signature
    strokes: str | None
    created_at: datetime


class PendingHandovers(Struct):
    items: list[PendingHandover]


class HandoverController(Controller):
    path = "/api/v1"
    tags = ["custody"]

    @get("/me/handovers", operation_id="myPendingHandovers", opt=roles("courier"))
    async def pending(self, request: Request[CurrentUser, Any, Any], db: DB) -> PendingHandovers:
        """Batches a clerk signed for on the console; record `delivered` (or `returned`) for each
        code with `counterparty` and `attachments.signature` as given here."""
        items = await clerk.pending_for_courier(db, request.user)
        return PendingHandovers(items=[PendingHandover(**i) for i in items])
