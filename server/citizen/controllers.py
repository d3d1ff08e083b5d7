"""Citizen pages: no account, Vietnamese first, one light HTML page (API.md "Citizen")."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from litestar import Controller, Request, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, Parameter
from litestar.response import Template
from msgspec import Struct

from shared import codes
from shared.i18n import lang_or_default, t

from ..auth.security import PUBLIC
from ..deps import DB, KeysDep
from . import service


class ConfirmForm(Struct):
    pin: str = ""
    rating: str = ""
    comment: str = ""


def _page(
    request: Request[Any, Any, Any], lang: str, code: str, status: int = 200, **context: Any
) -> Template:
    other = "en" if lang == "vi" else "vi"
    query = {k: v for k, v in request.query_params.items() if k != "lang"}
    query["lang"] = other
    return Template(
        template_name="citizen.html",
        context={
            "lang": lang,
            "other_lang": other,
            "t": lambda key, **kw: t(key, lang, **kw),
            "switch_url": f"/t/{code}?{urlencode(query)}",
            "grouped": codes.group(code) if code.isdigit() else code,
            "title": t("page.title", lang, code=codes.group(code) if code.isdigit() else code),
            "authentic": None,
            **context,
        },
        status_code=status,
        headers={
            "Cache-Control": "no-store",
            "Referrer-Policy": "no-referrer",
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
        },
    )


def _bad_code(
    request: Request[Any, Any, Any], lang: str, code: str, exc: Exception, authentic: bool | None
) -> Template:
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
    ) -> Template:
        lang = lang_or_default(lang)
        try:
            code = codes.normalize(code)
        except codes.InvalidCode as exc:
            # an altered code on a signed label is a forgery as far as the citizen is concerned
            return _bad_code(request, lang, code, exc, authentic=False if s is not None else None)
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
        return _page(request, lang, code, journey=journey, message=None, authentic=journey.authentic)

    @post("/{code:str}/confirm", operation_id="citizenConfirm", opt=PUBLIC, status_code=200)
    async def confirm(
        self,
        request: Request[Any, Any, Any],
        db: DB,
        keys: KeysDep,
        code: str,
        data: Annotated[ConfirmForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
        lang: Annotated[str | None, Parameter(max_length=5)] = None,
    ) -> Template:
        lang = lang_or_default(lang)
        try:
            code = codes.normalize(code)
        except codes.InvalidCode as exc:
            return _bad_code(request, lang, code, exc, authentic=None)
        try:
            rating = int(data.rating)
        except ValueError:
            rating = 0
        client = request.client.host if request.client else "unknown"
        outcome = await service.confirm(
            db, keys, code, data.pin.strip(), rating, data.comment.strip()[:500] or None, client, lang
        )
        journey = await service.journey(db, keys, code, None, lang)
        return _page(
            request, lang, code, outcome.status, journey=journey, message=outcome.message, ok=outcome.ok
        )
