"""The console's outbox pages: the dead letters and their retry (admin). A shipment's own
messages are listed on its page (console/controllers.py)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.exceptions import HTTPException
from litestar.response import Redirect, Template

from shared.i18n import t

from ..auth.security import roles
from ..console.pages import error_page, lang_of, page
from ..deps import DB
from . import service

Req = Request[Any, Any, Any]


class OutboxConsole(Controller):
    path = "/console"
    tags = ["console"]
    include_in_schema = False
    exception_handlers = {HTTPException: error_page}

    @get("/outbox", operation_id="consoleOutbox", opt=roles("admin"))
    async def dead_letters(self, request: Req, db: DB, retried: int | None = None) -> Template:
        lang = lang_of(request)
        return page(
            request,
            "outbox.html",
            title=t("outbox.dead_title", lang),
            dead=await service.dead_letters(db),
            subs=await service.subscriptions(db),
            flash=t("outbox.retried", lang, id=retried) if retried else None,
        )

    @post(
        "/outbox/{message_id:int}/retry",
        operation_id="consoleOutboxRetry",
        opt=roles("admin"),
        status_code=303,
    )
    async def retry(self, db: DB, message_id: int) -> Redirect:
        await service.retry(db, message_id)
        return Redirect(f"/console/outbox?retried={message_id}", status_code=303)
