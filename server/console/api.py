"""The one JSON route the console adds for the courier's phone: handovers waiting for its events."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get

from shared.api import PendingHandover as PendingHandover
from shared.api import PendingHandovers as PendingHandovers

from ..auth.security import roles
from ..auth.service import CurrentUser
from ..deps import DB
from . import clerk


class HandoverController(Controller):
    path = "/api/v1"
    tags = ["custody"]

    @get("/me/handovers", operation_id="myPendingHandovers", opt=roles("courier"))
    async def pending(self, request: Request[CurrentUser, Any, Any], db: DB) -> PendingHandovers:
        """Batches a clerk signed for on the console; record `delivered` (or `returned`) for each
        code with `counterparty` and `attachments.signature` as given here."""
        return PendingHandovers(items=await clerk.pending_for_courier(db, request.user))
