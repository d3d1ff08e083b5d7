"""Citizen pages: no account, Vietnamese first, one light HTML page (API.md "Citizen")."""

from __future__ import annotations

import html
from collections import OrderedDict
from datetime import datetime
from math import ceil
from typing import Annotated, Any
from urllib.parse import urlencode

from litestar import Controller, Request, Response, get, post
from litestar.enums import MediaType, RequestEncodingType
from litestar.params import Body, Parameter
from litestar.utils.empty import value_or_default
from litestar.utils.scope.state import ScopeState
from msgspec import Struct

from shared import codes
from shared.i18n import lang_or_default, t
from shared.timeutil import utcnow

from ..auth.clients import client_ip
from ..auth.security import PUBLIC
from ..db.engine import Database
from ..deps import DB, Cfg, KeysDep
from . import service


class ConfirmForm(Struct):
    pin: str = ""
    rating: str = ""
    comment: str = ""


_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
}
# Rendered in place of the CSRF field, which differs per visitor; autoescaping turns any "<"
# coming from data into "&lt;", so this text can only come from the template itself.
_CSRF_MARK = "<hoso-csrf-input>"


def _switch_url(request: Request[Any, Any, Any], lang: str, code: str) -> str:
    query = {k: v for k, v in request.query_params.items() if k != "lang"}
    query["lang"] = "en" if lang == "vi" else "vi"
    return f"/t/{code}?{urlencode(query)}"


def _render(request: Request[Any, Any, Any], lang: str, code: str, switch_url: str, **context: Any) -> str:
    """The page, with _CSRF_MARK where the visitor's CSRF field goes (what Litestar's
    Template response would render, given the same context)."""
    template = request.app.template_engine.get_template("citizen.html")  # type: ignore[union-attr]
    page: str = template.render(
        {
            "lang": lang,
            "other_lang": "en" if lang == "vi" else "vi",
            "t": lambda key, **kw: t(key, lang, **kw),
            "switch_url": switch_url,
            "grouped": codes.group(code) if code.isdigit() else code,
            "title": t("page.title", lang, code=codes.group(code) if code.isdigit() else code),
            "authentic": None,
            **context,
            "request": request,
            "csrf_input": _CSRF_MARK,
        }
    )
    return page


def _respond(request: Request[Any, Any, Any], page: str, status: int) -> Response[bytes]:
    token = value_or_default(ScopeState.from_scope(request.scope).csrf_token, "")
    field = f'<input type="hidden" name="_csrf_token" value="{html.escape(token)}" />'
    return Response(
        page.replace(_CSRF_MARK, field).encode(),
        status_code=status,
        media_type=MediaType.HTML,
        headers=_HEADERS,
    )


def _page(
    request: Request[Any, Any, Any], lang: str, code: str, status: int = 200, **context: Any
) -> Response[bytes]:
    return _respond(
        request, _render(request, lang, code, _switch_url(request, lang, code), **context), status
    )


class _PageCache:
    """Rendered journey pages, so a label scanned again and again is not rebuilt each time.

    An entry is keyed by what the page shows: code, language, label signature, the switch
    link, and the family's version (each shipment's id, head and updated_at, read with one
    indexed query per request, so a change made by any server process is seen at once);
    it also ends when the page would start to say "late".
    """

    def __init__(self, size: int = 2048) -> None:
        self.size = size
        self.pages: OrderedDict[tuple[Any, ...], tuple[str, datetime | None]] = OrderedDict()

    def get(self, key: tuple[Any, ...]) -> str | None:
        hit = self.pages.get(key)
        if hit is None:
            return None
        page, until = hit
        if until is not None and utcnow() >= until:
            del self.pages[key]
            return None
        self.pages.move_to_end(key)
        return page

    def put(self, key: tuple[Any, ...], page: str, until: datetime | None) -> None:
        self.pages[key] = (page, until)
        if len(self.pages) > self.size:
            self.pages.popitem(last=False)


def _page_cache(db: Database) -> _PageCache:
    cache = db.cache.get("citizen_pages")
    if cache is None:
        cache = db.cache["citizen_pages"] = _PageCache()
    return cache


def _bad_code(
    request: Request[Any, Any, Any], lang: str, code: str, exc: Exception, authentic: bool | None
) -> Response[bytes]:
    message = t("page.bad_code", lang, reason=str(exc))
    return _page(request, lang, code[:20], 400, journey=None, message=message, authentic=authentic)


class CitizenController(Controller):
    path = "/t"
    tags = ["citizen"]
    include_in_schema = False

    @get("/{code:str}", operation_id="citizenPage", opt=PUBLIC)
    async def page(
        self,
        request: Request[Any, Any, Any],
        db: DB,
        keys: KeysDep,
        code: str,
        s: Annotated[str | None, Parameter(max_length=200)] = None,
        lang: Annotated[str | None, Parameter(max_length=5)] = None,
    ) -> Response[bytes]:
        lang = lang_or_default(lang)
        try:
            code = codes.normalize(code)
        except codes.InvalidCode as exc:
            # an altered code on a signed label is a forgery as far as the citizen is concerned
            return _bad_code(request, lang, code, exc, authentic=False if s is not None else None)
        switch_url = _switch_url(request, lang, code)
        cache = _page_cache(db)
        key = (code, lang, s, switch_url, await service.family_version(db, code))
        page = cache.get(key)
        if page is not None:
            return _respond(request, page, 200)
        journey = await service.journey(db, keys, code, s, lang)
        if journey is None:
            return _page(
                request,
                lang,
                code,
                404,
                journey=None,
                message=t("page.not_found", lang, code=codes.group(code)),
                authentic=service.label_is_authentic(keys, code, s),
            )
        page = _render(
            request, lang, code, switch_url, journey=journey, message=None, authentic=journey.authentic
        )
        cache.put(key, page, journey.fresh_until)
        return _respond(request, page, 200)

    @post("/{code:str}/confirm", operation_id="citizenConfirm", opt=PUBLIC, status_code=200)
    async def confirm(
        self,
        request: Request[Any, Any, Any],
        db: DB,
        keys: KeysDep,
        settings: Cfg,
        code: str,
        data: Annotated[ConfirmForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
        lang: Annotated[str | None, Parameter(max_length=5)] = None,
    ) -> Response[bytes]:
        lang = lang_or_default(lang)
        try:
            code = codes.normalize(code)
        except codes.InvalidCode as exc:
            return _bad_code(request, lang, code, exc, authentic=None)
        try:
            rating = int(data.rating)
        except ValueError:
            rating = 0
        client = client_ip(request, settings.trusted_proxies)
        outcome = await service.confirm(
            db, keys, code, data.pin.strip(), rating, data.comment.strip()[:500] or None, client, lang
        )
        journey = await service.journey(db, keys, code, None, lang)
        response = _page(
            request, lang, code, outcome.status, journey=journey, message=outcome.message, ok=outcome.ok
        )
        if outcome.retry_at is not None:
            wait = max(1, ceil((outcome.retry_at - utcnow()).total_seconds()))
            response.headers["Retry-After"] = str(wait)
        return response
