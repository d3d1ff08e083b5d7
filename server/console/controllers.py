"""The dispatcher and clerk console (API.md "Console"): server-rendered pages and forms."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

import anyio.to_thread
from litestar import Controller, Request, Response, get, post
from litestar.channels import ChannelsPlugin
from litestar.datastructures import Cookie
from litestar.di import Provide
from litestar.enums import RequestEncodingType
from litestar.exceptions import HTTPException, NotFoundException
from litestar.params import Body, Parameter, QueryParameter
from litestar.response import Redirect, ServerSentEvent, Template
from msgspec import Struct

from shared import pagecheck
from shared.i18n import t
from shared.lifecycle import IDENTITY_METHODS

from ..auth import service as auth
from ..auth.security import PUBLIC, SESSION_COOKIE, roles
from ..auth.service import CurrentUser
from ..custody import attachments as attachment_store
from ..custody import export
from ..custody.controllers import Sha256Path
from ..deps import DB, Cfg, KeysDep
from ..errors import BadRequest
from ..labels import service as labels
from ..labels.controllers import file_response
from ..outbox import service as outbox
from ..pages import service as pages
from ..reports import service as reports
from ..reports.charts import bar_chart, gauge
from ..reports.controllers import REPORT_READERS, export_response
from ..shipments import service as shipments
from . import catalog, clerk, flagged, live, service
from .couriers import tile_map, workload
from .pages import LANG_COOKIE, error_page, home_for, lang_of, page
from .service import VN, BoardFilters
from .shipment import shipment_page
from .svgplot import Mark, plot

Req = Request[CurrentUser, Any, Any]
Short = Annotated[str | None, Parameter(max_length=200)]
BOARD_VIEWERS = ("dispatcher", "admin", "auditor", "clerk")
ASSIGNERS = ("dispatcher", "admin")
READERS = ("clerk", "dispatcher", "admin", "auditor")
REGISTRARS = ("clerk", "dispatcher", "admin")
RECEIVERS = ("clerk", "admin")
DIGITISERS = ("clerk", "dispatcher")  # shared/lifecycle.py: who may record `digitised`
CONSOLE_SHEET = 200


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


def board_filters(
    state_: Annotated[str | None, QueryParameter(name="state", max_length=40)] = None,
    kind: Short = None,
    field: Short = None,
    unit: Short = None,
    courier: Short = None,
    late: Short = None,
    at_risk: Short = None,
    to_return: Short = None,
) -> BoardFilters:
    """The board's filters from its query string: one dependency for the page and its rows."""
    courier_id = None
    if courier:
        if not courier.isdigit():
            raise BadRequest(f"courier must be a courier's number; got {courier!r}.")
        courier_id = int(courier)
    return BoardFilters(
        state=state_ or None,
        kind=kind or None,
        field=field or None,
        unit=unit or None,
        courier=courier_id,
        late=_flag(late),
        at_risk=_flag(at_risk),
        to_return=_flag(to_return),
    )


class ConsoleController(Controller):
    path = "/console"
    tags = ["console"]
    include_in_schema = False
    exception_handlers = {HTTPException: error_page}
    dependencies = {"f": Provide(board_filters, sync_to_thread=False)}

    @get("/login", operation_id="consoleLoginPage", opt=PUBLIC)
    async def login_page(
        self,
        request: Request[Any, Any, Any],
        next_: Annotated[str | None, QueryParameter(name="next", max_length=200)] = None,
    ) -> Template:
        lang = lang_of(request)
        return page(request, "login.html", title=t("console.login_title", lang), next=next_ or "", error=None)

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
                title=t("console.login_title", lang),
                next=data.next,
                error=t("login.wrong", lang),
                username=data.username,
            )
        if user.role == "courier":
            await auth.revoke_token(db, token)
            return page(
                request,
                "login.html",
                status=403,
                title=t("console.login_title", lang),
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
        await auth.revoke_token(db, request.auth)
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
    async def board(self, request: Req, db: DB, f: BoardFilters) -> Template | Redirect:
        if request.user.role == "clerk":
            return Redirect(home_for("clerk"), status_code=303)
        board = await service.board(db, request.user, f)
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
            flagged=await flagged.recent(db, request.user),  # closed shipments with a flagged handover
        )

    @get("/board/rows", operation_id="consoleBoardRows", opt=roles(*BOARD_VIEWERS))
    async def board_rows(self, request: Req, db: DB, f: BoardFilters) -> Template:
        """The board's rows alone: what the page fetches when a live update arrives."""
        return page(
            request,
            "board_rows.html",
            board=await service.board(db, request.user, f),
            query=urlencode(f.query()),
            can_assign=request.user.role in ASSIGNERS,
        )

    @post(
        "/shipments/{code:str}/assign", operation_id="consoleAssign", opt=roles(*ASSIGNERS), status_code=303
    )
    async def assign(
        self,
        request: Req,
        db: DB,
        keys: KeysDep,
        code: str,
        data: Annotated[AssignForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Redirect:
        if not data.courier_id.isdigit():
            from ..errors import BadRequest

            raise BadRequest(t("board.pick_courier", lang_of(request)))
        await shipments.assign(db, keys, request.user, code, int(data.courier_id))
        back = data.back if data.back.startswith("?") or not data.back else ""
        return Redirect(f"/console/{back}#s{shipments.parse_code(code)}", status_code=303)

    @get("/live", operation_id="consoleLive", opt=roles(*BOARD_VIEWERS))
    async def live(self, request: Req, db: DB, channels: ChannelsPlugin) -> ServerSentEvent:
        """Server-sent events: which of the user's shipments changed (the page then refetches)."""
        return ServerSentEvent(
            live.stream(channels, db, request.user),
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    @get("/shipments/{code:str}", operation_id="consoleShipment", opt=roles(*READERS))
    async def shipment(self, request: Req, db: DB, keys: KeysDep, settings: Cfg, code: str) -> Template:
        return await self._shipment(request, db, keys, settings, code)

    async def _shipment(
        self, request: Req, db: DB, keys: KeysDep, settings: Cfg, code: str, status: int = 200, **ctx: Any
    ) -> Template:
        view = await shipment_page(db, keys, settings.base_url, request.user, code)
        marks = [Mark(lat, lon, f"#{label}") for lat, lon, label in view.points]
        if view.destination:
            marks.append(Mark(*view.destination, t("shipment.address", lang_of(request)), "target"))
        return page(
            request,
            "shipment.html",
            title=view.grouped,
            v=view,
            identity_methods=IDENTITY_METHODS,
            plot=plot(marks, title=t("shipment.map", lang_of(request))),
            status=status,
            can_assign=request.user.role in ASSIGNERS,
            can_digitise=request.user.role in DIGITISERS,
            couriers=await service.couriers(db) if request.user.role in ASSIGNERS else [],
            messages=await outbox.of_code(db, view.detail.code),
            vn=VN,
            **ctx,
        )

    @post(
        "/shipments/{code:str}/pages", operation_id="consoleDigitise", opt=roles(*DIGITISERS), status_code=303
    )
    async def digitise(
        self, request: Req, db: DB, keys: KeysDep, settings: Cfg, code: str
    ) -> Redirect | Template:
        """Pages uploaded or scanned at the counter: checked, bound into one PDF, signed (issue 18)."""
        uploads = await pages.uploads_of(await request.form())
        try:
            await pages.digitise(
                db,
                keys,
                settings.attachments_dir,
                request.user,
                code,
                uploads,
                max_unreferenced=settings.max_unreferenced_bytes,
            )
        except HTTPException as exc:
            if exc.status_code in (403, 404):
                raise
            problems = exc.problems if isinstance(exc, pages.PagesRefused) else []
            return await self._shipment(
                request,
                db,
                keys,
                settings,
                code,
                status=exc.status_code,
                pages_error=exc.detail if not problems else t("pages.retake", lang_of(request)),
                pages_problems=problems,
            )
        return Redirect(f"/console/shipments/{code}#pages", status_code=303)

    @get("/attachments/{sha256:str}/thumb", operation_id="consoleThumbnail", opt=roles(*READERS))
    async def thumbnail(self, request: Req, sha256: Sha256Path, db: DB, settings: Cfg) -> Response[bytes]:
        """A page image scaled to 240 px, for the shipment page (same unit scope as the image)."""
        content_type, body = await attachment_store.load_visible(
            db, settings.attachments_dir, request.user, sha256
        )
        if content_type not in ("image/jpeg", "image/png"):
            raise NotFoundException(f"Attachment {sha256} is not an image and has no thumbnail.")
        small = await anyio.to_thread.run_sync(pagecheck.thumbnail, body)
        headers = attachment_store.served_headers(sha256, "image/jpeg")
        headers["Content-Disposition"] = "inline"
        return Response(small, media_type="image/jpeg", headers=headers)

    @get("/shipments/{code:str}/custody.json", operation_id="consoleExport", opt=roles(*READERS))
    async def export_bundle(
        self, request: Req, db: DB, keys: KeysDep, settings: Cfg, code: str, pages: bool = False
    ) -> Response[Any]:
        """With ?pages=true the bundle carries the digitised pages' files (CUSTODY.md §4.1)."""
        root = settings.attachments_dir if pages else None
        body = await export.bundle(db, keys, request.user, code, files_root=root)
        name = f"hoso-{body['shipment']['code']}-custody.json"
        return Response(body, headers={"Content-Disposition": f'attachment; filename="{name}"'})

    @get("/attachments/{sha256:str}", operation_id="consoleAttachment", opt=roles(*READERS))
    async def attachment(self, request: Req, sha256: Sha256Path, db: DB, settings: Cfg) -> Response[bytes]:
        content_type, body = await attachment_store.load_visible(
            db, settings.attachments_dir, request.user, sha256
        )
        return Response(
            body, media_type=content_type, headers=attachment_store.served_headers(sha256, content_type)
        )

    # ---- clerk: register, labels, receive ---------------------------------------------------

    @get("/provinces.json", operation_id="consoleProvinces", opt=roles(*READERS))
    async def provinces(self) -> Response[Any]:
        """The 34 provinces and their communes (the map since July 2025), for the address pickers."""
        data = [{"name": p["name"], "communes": p["communes"]} for p in catalog.provinces()]
        return Response(data, headers={"Cache-Control": "private, max-age=86400"})

    def _register_page(self, request: Req, units: list[Any], status: int = 200, **ctx: Any) -> Template:
        lang = lang_of(request)
        return page(
            request,
            "register.html",
            status=status,
            title=t("nav.register", lang),
            fields=catalog.FIELDS,
            provinces=[p["name"] for p in catalog.provinces()],
            communes_of=catalog.communes_of,
            units=units,
            **ctx,
        )

    @get("/register", operation_id="consoleRegisterPage", opt=roles(*REGISTRARS))
    async def register_page(self, request: Req, db: DB) -> Template:
        return self._register_page(request, await service.all_units(db), form={}, created=None, error=None)

    @post("/register", operation_id="consoleRegister", opt=roles(*REGISTRARS), status_code=200)
    async def register(self, request: Req, db: DB, keys: KeysDep, settings: Cfg) -> Template:
        form = {k: str(v) for k, v in (await request.form()).items()}
        units = await service.all_units(db)
        try:
            form = await clerk.with_catalogue(db, request.user, form)
            data = clerk.shipment_from_form(form)
            created = await shipments.create(db, keys, settings.base_url, request.user, data)
        except HTTPException as exc:
            return self._register_page(
                request, units, status=exc.status_code, form=form, created=None, error=exc.detail
            )
        return self._register_page(request, units, form={}, created=created, error=None)

    @get("/labels", operation_id="consoleLabelsPage", opt=roles(*REGISTRARS))
    async def labels_page(self, request: Req, db: DB) -> Template:
        rows = await clerk.recent_registered(db, request.user)
        return page(request, "labels.html", title=t("nav.labels", lang_of(request)), recent=rows, error=None)

    @post("/labels.pdf", operation_id="consoleLabelSheet", opt=roles(*REGISTRARS), status_code=200)
    async def labels_sheet(self, request: Req, db: DB, keys: KeysDep, settings: Cfg) -> Response[bytes]:
        form = await request.form()
        text = "\n".join([*form.getall("code", []), str(form.get("codes", ""))])
        wanted = clerk.parse_codes(text)
        sheet = await labels.label_sheet(db, keys, settings.base_url, request.user, wanted, CONSOLE_SHEET)
        return file_response(sheet)

    @get("/shipments/{code:str}/label.pdf", operation_id="consoleLabelPdf", opt=roles(*REGISTRARS))
    async def label_pdf(
        self, request: Req, db: DB, keys: KeysDep, settings: Cfg, code: str
    ) -> Response[bytes]:
        return file_response(await labels.label_pdf(db, keys, settings.base_url, request.user, code))

    @get("/shipments/{code:str}/label.png", operation_id="consoleLabelPng", opt=roles(*REGISTRARS))
    async def label_image(
        self, request: Req, db: DB, keys: KeysDep, settings: Cfg, code: str
    ) -> Response[bytes]:
        return file_response(await labels.label_image(db, keys, settings.base_url, request.user, code))

    @get("/receive", operation_id="consoleReceivePage", opt=roles(*RECEIVERS))
    async def receive_page(self, request: Req, db: DB, courier: Short = None) -> Template:
        courier_id = int(courier) if courier and courier.isdigit() else None
        held = await clerk.held_for_unit(db, request.user, courier_id) if courier_id else []
        return page(
            request,
            "receive.html",
            title=t("nav.receive", lang_of(request)),
            couriers=await service.couriers(db),
            courier_id=courier_id,
            held=held,
            error=None,
        )

    @post("/receive", operation_id="consoleReceive", opt=roles(*RECEIVERS), status_code=303)
    async def receive(self, request: Req, db: DB, settings: Cfg) -> Redirect | Template:
        form = await request.form()
        courier = str(form.get("courier_id", ""))
        try:
            if not courier.isdigit():
                from ..errors import BadRequest

                raise BadRequest(t("receive.pick_courier", lang_of(request)))
            wanted = clerk.parse_codes("\n".join(form.getall("code", [])))
            png = clerk.decode_signature(str(form.get("signature_png", "")))
            handover_id = await clerk.receive(
                db,
                settings.attachments_dir,
                request.user,
                int(courier),
                wanted,
                png,
                str(form.get("signature_strokes", "")).encode(),
            )
        except HTTPException as exc:
            courier_id = int(courier) if courier.isdigit() else None
            return page(
                request,
                "receive.html",
                status=exc.status_code,
                title=t("nav.receive", lang_of(request)),
                couriers=await service.couriers(db),
                courier_id=courier_id,
                held=await clerk.held_for_unit(db, request.user, courier_id) if courier_id else [],
                error=exc.detail,
            )
        return Redirect(f"/console/handovers/{handover_id}", status_code=303)

    @get("/handovers/{handover_id:int}", operation_id="consoleHandover", opt=roles(*RECEIVERS))
    async def handover(self, request: Req, db: DB, handover_id: int) -> Template:
        view = await clerk.handover_view(db, request.user, handover_id)
        return page(request, "handover.html", title=t("receive.slip", lang_of(request)), h=view)

    # ---- dispatcher: couriers, reports --------------------------------------------------------

    @get("/couriers", operation_id="consoleCouriers", opt=roles(*ASSIGNERS))
    async def couriers(self, request: Req, db: DB, settings: Cfg) -> Template:
        loads = await workload(db)
        lang = lang_of(request)
        seen = [
            (c.last_lat, c.last_lon, c.name)
            for c in loads
            if c.last_lat is not None and c.last_lon is not None
        ]
        if settings.tile_url:
            drawing = tile_map(settings.tile_url, seen)
        else:
            drawing = plot(
                [Mark(lat, lon, name, "courier") for lat, lon, name in seen],
                760,
                380,
                t("couriers.positions", lang),
            )
        return page(
            request,
            "couriers.html",
            title=t("nav.couriers", lang),
            loads=loads,
            drawing=drawing,
            tiles=bool(settings.tile_url),
        )

    @get("/reports", operation_id="consoleReports", opt=roles(*REPORT_READERS))
    async def reports_page(
        self,
        request: Req,
        db: DB,
        start: Annotated[str | None, QueryParameter(name="from", max_length=40)] = None,
        end: Annotated[str | None, QueryParameter(name="to", max_length=40)] = None,
        unit: Short = None,
        format_: Annotated[str | None, QueryParameter(name="format", max_length=10)] = None,
    ) -> Template | Response[bytes]:
        lang = lang_of(request)
        s = await reports.summary(db, reports.window(start, end), unit or None, request.user)
        if (download := export_response(s, format_, lang)) is not None:
            return download
        charts = {
            "state": bar_chart(
                t("report.by_state", lang),
                [(t(f"state.{k}", lang), v) for k, v in s.by_state.items()],
                lang=lang,
            ),
            "field": bar_chart(t("report.by_field", lang), list(s.by_field.items())[:8], lang=lang),
            "reasons": bar_chart(
                t("report.failed", lang),
                [(t(f"reason.{k}", lang), v) for k, v in s.failed_reasons.items()],
                lang=lang,
            ),
            "ratings": bar_chart(
                t("report.ratings", lang),
                [(f"{k}★", v) for k, v in s.ratings.by_score.items()],
                lang=lang,
            ),
            "on_time": gauge(t("report.on_time_rate", lang), s.on_time_rate, lang=lang),
        }
        query = {k: v for k, v in (("from", start), ("to", end), ("unit", unit)) if v}
        return page(
            request,
            "reports.html",
            title=t("report.title", lang),
            s=s,
            charts=charts,
            units=await service.all_units(db),
            start_day=reports.local_day(s.start),
            end_day=reports.local_day(s.end, inclusive_end=True),
            csv_query=urlencode({**query, "format": "csv"}),
            xlsx_query=urlencode({**query, "format": "xlsx"}),
            units_shown=[
                u
                for u in await service.all_units(db)
                if request.user.role != "clerk" or u.code == request.user.unit_code
            ],
        )
