"""The dispatcher and clerk console (API.md "Console"): server-rendered pages and forms."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from litestar import Controller, Request, Response, get, post
from litestar.channels import ChannelsPlugin
from litestar.datastructures import Cookie
from litestar.enums import RequestEncodingType
from litestar.exceptions import HTTPException
from litestar.params import Body, Parameter, QueryParameter
from litestar.response import Redirect, ServerSentEvent, Template
from msgspec import Struct

from shared.i18n import t

from ..auth import service as auth
from ..auth.security import PUBLIC, SESSION_COOKIE, roles
from ..auth.service import CurrentUser
from ..custody import attachments as attachment_store
from ..custody import export
from ..custody.controllers import Sha256Path
from ..deps import DB, Cfg, KeysDep
from ..shipments import service as shipments
from . import catalog, live, service
from .pages import LANG_COOKIE, error_page, home_for, lang_of, page
from .service import BoardFilters
from .shipment import shipment_page
from .svgplot import Mark, plot

Req = Request[CurrentUser, Any, Any]
Short = Annotated[str | None, Parameter(max_length=200)]
BOARD_VIEWERS = ("dispatcher", "admin", "auditor", "clerk")
ASSIGNERS = ("dispatcher", "admin")
READERS = ("clerk", "dispatcher", "admin", "auditor")


class LoginForm(Struct):
    username: str = ""
    password: str = ""
    next: str = ""


class AssignForm(Struct):
    courier_id: str = ""
    back: str = ""


def _safe_next(target: str, fallback: str) -> str:
    """Only a path inside the console: never an open redirect."""
    if target.startswith("/console") and not target.startswith("//") and "\\" not in target:
        return target
    return fallback


def _flag(value: str | None) -> bool:
    return value in ("1", "true", "on")


def filters_from(
    state: str | None,
    kind: str | None,
    field: str | None,
    unit: str | None,
    courier: str | None,
    late: str | None,
    at_risk: str | None,
) -> BoardFilters:
    courier_id = None
    if courier:
        if not courier.isdigit():
            from ..errors import BadRequest

            raise BadRequest(f"courier must be a courier's number; got {courier!r}.")
        courier_id = int(courier)
    return BoardFilters(
        state=state or None,
        kind=kind or None,
        field=field or None,
        unit=unit or None,
        courier=courier_id,
        late=_flag(late),
        at_risk=_flag(at_risk),
    )


class ConsoleController(Controller):
    path = "/console"
    tags = ["console"]
    include_in_schema = False
    exception_handlers = {HTTPException: error_page}  # type: ignore[dict-item]

    @get("/login", operation_id="consoleLoginPage", opt=PUBLIC)
    async def login_page(
        self,
        request: Request[Any, Any, Any],
        next_: Annotated[str | None, QueryParameter(name="next", max_length=200)] = None,
    ) -> Template:
        lang = lang_of(request)
        return page(request, "login.html", title=t("login.title", lang), next=next_ or "", error=None)

    @post("/login", operation_id="consoleLogin", opt=PUBLIC, status_code=303)
    async def login(
        self,
        request: Request[Any, Any, Any],
        db: DB,
        settings: Cfg,
        data: Annotated[LoginForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Redirect | Template:
        lang = lang_of(request)
        try:
            token, user = await auth.issue_token(
                db, data.username.strip(), data.password, settings.token_ttl_s
            )
        except HTTPException:
            return page(
                request,
                "login.html",
                status=401,
                title=t("login.title", lang),
                next=data.next,
                error=t("login.wrong", lang),
                username=data.username,
            )
        if user.role == "courier":
            await service.end_session(db, token)
            return page(
                request,
                "login.html",
                status=403,
                title=t("login.title", lang),
                next=data.next,
                error=t("console.courier_use_app", lang),
                username=data.username,
            )
        return Redirect(
            _safe_next(data.next, home_for(user.role)),
            status_code=303,
            cookies=[
                Cookie(
                    key=SESSION_COOKIE,
                    value=token,
                    path="/console",
                    httponly=True,
                    samesite="strict",
                    secure=settings.base_url.startswith("https://"),
                    max_age=settings.token_ttl_s,
                )
            ],
        )

    @post("/logout", operation_id="consoleLogout", opt=roles(*BOARD_VIEWERS), status_code=303)
    async def logout(self, request: Req, db: DB) -> Redirect:
        await service.end_session(db, request.auth)
        return Redirect(
            "/console/login",
            status_code=303,
            cookies=[Cookie(key=SESSION_COOKIE, value="", path="/console", max_age=0, httponly=True)],
        )

    @get("/lang/{lang:str}", operation_id="consoleLanguage", opt=PUBLIC)
    async def language(
        self, lang: str, back: Annotated[str | None, QueryParameter(name="back", max_length=200)] = None
    ) -> Redirect:
        chosen = "en" if lang == "en" else "vi"
        return Redirect(
            _safe_next(back or "", "/console/"),
            status_code=303,
            cookies=[Cookie(key=LANG_COOKIE, value=chosen, path="/console", samesite="strict")],
        )

    @get(["/", ""], operation_id="consoleBoard", opt=roles(*BOARD_VIEWERS))
    async def board(
        self,
        request: Req,
        db: DB,
        state_: Annotated[str | None, QueryParameter(name="state", max_length=40)] = None,
        kind: Short = None,
        field: Short = None,
        unit: Short = None,
        courier: Short = None,
        late: Short = None,
        at_risk: Short = None,
    ) -> Template | Redirect:
        if request.user.role == "clerk":
            return Redirect(home_for("clerk"), status_code=303)
        f = filters_from(state_, kind, field, unit, courier, late, at_risk)
        board = await service.board(db, f)
        lang = lang_of(request)
        return page(
            request,
            "board.html",
            title=t("nav.board", lang),
            board=board,
            filters=f,
            query=urlencode(f.query()),
            fields=list(catalog.FIELDS),
            units=await service.all_units(db),
            couriers=await service.couriers(db),
            can_assign=request.user.role in ASSIGNERS,
        )

    @get("/board/rows", operation_id="consoleBoardRows", opt=roles(*BOARD_VIEWERS))
    async def board_rows(
        self,
        request: Req,
        db: DB,
        state_: Annotated[str | None, QueryParameter(name="state", max_length=40)] = None,
        kind: Short = None,
        field: Short = None,
        unit: Short = None,
        courier: Short = None,
        late: Short = None,
        at_risk: Short = None,
    ) -> Template:
        """The board's rows alone: what the page fetches when a live update arrives."""
        f = filters_from(state_, kind, field, unit, courier, late, at_risk)
        clerk_unit = request.user.unit_id if request.user.role == "clerk" else None
        return page(
            request,
            "board_rows.html",
            board=await service.board(db, f, clerk_unit=clerk_unit),
            query=urlencode(f.query()),
            couriers=await service.couriers(db),
            can_assign=request.user.role in ASSIGNERS,
        )

    @post(
        "/shipments/{code:str}/assign", operation_id="consoleAssign", opt=roles(*ASSIGNERS), status_code=303
    )
    async def assign(
        self,
        request: Req,
        db: DB,
        code: str,
        data: Annotated[AssignForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Redirect:
        if not data.courier_id.isdigit():
            from ..errors import BadRequest

            raise BadRequest(t("board.pick_courier", lang_of(request)))
        await shipments.assign(db, request.user, code, int(data.courier_id))
        back = data.back if data.back.startswith("?") or not data.back else ""
        return Redirect(f"/console/{back}#s{shipments.parse_code(code)}", status_code=303)

    @get("/live", operation_id="consoleLive", opt=roles(*BOARD_VIEWERS))
    async def live(self, channels: ChannelsPlugin) -> ServerSentEvent:
        """Server-sent events: which shipments changed (the page then refetches what it shows)."""
        return ServerSentEvent(
            live.stream(channels), headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        )

    @get("/shipments/{code:str}", operation_id="consoleShipment", opt=roles(*READERS))
    async def shipment(self, request: Req, db: DB, keys: KeysDep, settings: Cfg, code: str) -> Template:
        view = await shipment_page(db, keys, settings.base_url, request.user, code)
        marks = [Mark(lat, lon, f"#{label}") for lat, lon, label in view.points]
        if view.destination:
            marks.append(Mark(*view.destination, t("shipment.address", lang_of(request)), "target"))
        return page(
            request,
            "shipment.html",
            title=view.grouped,
            v=view,
            plot=plot(marks, title=t("shipment.map", lang_of(request))),
            can_assign=request.user.role in ASSIGNERS,
            couriers=await service.couriers(db) if request.user.role in ASSIGNERS else [],
        )

    @get("/shipments/{code:str}/custody.json", operation_id="consoleExport", opt=roles(*READERS))
    async def export_bundle(self, request: Req, db: DB, keys: KeysDep, code: str) -> Response[Any]:
        body = await export.bundle(db, keys, request.user, code)
        name = f"hoso-{body['shipment']['code']}-custody.json"
        return Response(body, headers={"Content-Disposition": f'attachment; filename="{name}"'})

    @get("/attachments/{sha256:str}", operation_id="consoleAttachment", opt=roles(*READERS))
    async def attachment(self, sha256: Sha256Path, db: DB, settings: Cfg) -> Response[bytes]:
        content_type, body = await attachment_store.load(db, settings.attachments_dir, sha256)
        return Response(
            body, media_type=content_type, headers={"Cache-Control": "private, max-age=31536000, immutable"}
        )
