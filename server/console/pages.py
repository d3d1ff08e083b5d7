"""How every console page is rendered: layout context, navigation by role, errors as pages."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from litestar import Request, Response
from litestar.exceptions import HTTPException
from litestar.response import Redirect, Template

from shared.i18n import lang_or_default, number, t, vnd
from shared.i18n.outbox import skip_note_key

from ..auth.security import LoginRequired

LANG_COOKIE = "hoso_lang"
HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    # everything the console loads is its own: no CDN, no outside requests by default;
    # a tile server, when configured, is the one exception (img-src)
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data: {tiles}; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'"
    ),
}
# (key, href, roles): what each role sees follows its role
NAV = (
    ("nav.board", "/console/", ("dispatcher", "admin", "auditor")),
    ("nav.register", "/console/register", ("clerk", "dispatcher", "admin")),
    ("nav.intake", "/console/intake", ("clerk", "dispatcher")),
    ("nav.labels", "/console/labels", ("clerk", "dispatcher", "admin")),
    ("nav.receive", "/console/receive", ("clerk", "admin")),
    ("nav.counter", "/console/counter/", ("clerk",)),
    ("nav.couriers", "/console/couriers", ("dispatcher", "admin")),
    ("nav.reports", "/console/reports", ("dispatcher", "admin", "auditor", "shop_clerk")),
    ("nav.money", "/console/money", ("clerk", "dispatcher", "admin", "auditor")),
    ("nav.shop", "/console/shop", ("shop_clerk", "dispatcher", "admin", "auditor")),
    ("nav.scoring", "/console/scoring", ("admin",)),
    ("nav.outbox", "/console/outbox", ("admin",)),
)
HOME = {"clerk": "/console/register"}


def home_for(role: str) -> str:
    return HOME.get(role, "/console/")


def lang_of(request: Request[Any, Any, Any]) -> str:
    return lang_or_default(request.query_params.get("lang") or request.cookies.get(LANG_COOKIE))


def _tile_origin(request: Request[Any, Any, Any]) -> str:
    url = getattr(request.app.state, "tile_url", "")
    if not url:
        return ""
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}"


def page(
    request: Request[Any, Any, Any], template: str, *, status: int = 200, title: str = "", **context: Any
) -> Template:
    lang = lang_of(request)
    user = request.scope.get("user")
    nav = []
    if user is not None:
        path = request.url.path
        # a one-stop shop's clerk also sees its unit's report and catalogue
        shop_clerk = user.role == "clerk" and getattr(user, "unit_kind", "") == "one_stop_shop"
        for key, href, allowed in NAV:
            if user.role in allowed or (shop_clerk and "shop_clerk" in allowed):
                active = path == href or (href != "/console/" and path.startswith(href))
                nav.append({"label": t(key, lang), "href": href, "active": active})
    headers = dict(HEADERS)
    headers["Content-Security-Policy"] = headers["Content-Security-Policy"].format(
        tiles=_tile_origin(request)
    )
    return Template(
        template_name=f"console/{template}",
        context={
            "lang": lang,
            "other_lang": "en" if lang == "vi" else "vi",
            "t": lambda key, **kw: t(key, lang, **kw),
            "num": lambda value, digits=None: number(value, digits, lang),
            "vnd": vnd,
            "outbox_note": lambda text: t(key, lang) if text and (key := skip_note_key(text)) else text,
            "user": user,
            "nav": nav,
            "title": title,
            "here": quote(str(request.url.path) + (f"?{request.url.query}" if request.url.query else "")),
            **context,
        },
        status_code=status,
        headers=headers,
    )


def error_page(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    """Errors on console pages: a redirect to sign in, or a page with the human sentence."""
    if isinstance(exc, LoginRequired):
        target = quote(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
        if request.headers.get("accept", "").startswith("text/event-stream"):
            return Response({"status_code": 401, "detail": exc.detail}, status_code=401)
        return Redirect(f"/console/login?next={target}", status_code=303)
    lang = lang_of(request)
    return page(
        request,
        "error.html",
        status=exc.status_code,
        title=t("console.error", lang),
        message=exc.detail,
        status_code=exc.status_code,
    )
