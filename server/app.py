"""create_app(settings) -> Litestar. Nothing global happens at import time."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from litestar import Litestar, get
from litestar.config.app import AppConfig
from litestar.config.csrf import CSRFConfig
from litestar.contrib.jinja import JinjaTemplateEngine
from litestar.di import Provide
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig
from msgspec import Struct
from sqlalchemy import text

from shared.api import Keys as Keys

from . import __version__, openapi
from .auth.controllers import AuthController
from .auth.security import PUBLIC, BearerAuth, role_guard
from .citizen.controllers import CitizenController
from .console.api import HandoverController
from .console.controllers import ConsoleController
from .console.live import channels_plugin, publisher
from .counter.controllers import CounterConsole
from .custody.controllers import CustodyController
from .custody.verifier import SignaturePool
from .db.engine import Database
from .deps import DB, Cfg, KeysDep
from .errors import exception_handlers
from .intake.console import IntakeConsole
from .keys import load_keys, load_secret
from .labels.controllers import DocumentController, LabelController
from .log.controllers import LogController
from .money.controllers import MoneyConsoleController, MoneyController
from .outbox.controllers import OutboxConsole
from .outbox.worker import run_until
from .pages.controllers import PagesController
from .reports.controllers import ReportController
from .shipments.controllers import ShipmentController
from .shop.console import ShopConsole
from .shop.controllers import ShopController
from .strict import strict_json_body


class Health(Struct):
    status: str
    db: str
    version: str


@get("/health", operation_id="health", tags=["health"], opt=PUBLIC)
async def health(db: DB) -> Health:
    async with db.read() as conn:
        await conn.execute(text("SELECT 1"))
    return Health(status="ok", db="ok", version=__version__)


@get("/api/v1/keys", operation_id="publicKeys", tags=["log"], opt=PUBLIC)
async def public_keys(keys: KeysDep) -> Keys:
    return Keys(**keys.public())  # type: ignore[arg-type]


def create_app(settings: Cfg) -> Litestar:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    keys = load_keys(settings.keys_dir)
    holder: dict[str, Database] = {}
    channels = channels_plugin(settings.redis_url)
    # helper processes for signature checks, started on first use (`hoso serve` starts them at once)
    signatures = SignaturePool(settings.verify_processes)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        db = Database(
            settings.db_url,
            merkle_log=settings.merkle_log,
            sqlite_writer=settings.sqlite_writer,
            outbox=settings.outbox_rows,
        )
        holder["db"] = db
        app.state.db = db
        app.state.tile_url = settings.tile_url
        db.listeners.append(publisher(channels))
        # the outbox worker inside the server (HOSO_OUTBOX_WORKER=0: only `hoso worker` processes)
        stop = asyncio.Event()
        worker_task = None
        if settings.outbox_worker:
            worker_task = asyncio.create_task(run_until(db, settings, keys, stop), name="hoso-outbox")
        try:
            yield
        finally:
            stop.set()
            if worker_task is not None:
                try:
                    await asyncio.wait_for(worker_task, timeout=5)
                except (TimeoutError, asyncio.CancelledError):
                    worker_task.cancel()
                except Exception:
                    logging.getLogger(__name__).exception("outbox worker failed")
            await db.dispose()
            signatures.close()

    def provide_db() -> Database:
        return holder["db"]

    def on_app_init(config: AppConfig) -> AppConfig:
        return config

    app = Litestar(
        route_handlers=[
            health,
            public_keys,
            AuthController,
            ShipmentController,
            CustodyController,
            PagesController,
            LogController,
            LabelController,
            DocumentController,
            CitizenController,
            ReportController,
            ShopController,
            ShopConsole,
            IntakeConsole,
            ConsoleController,
            CounterConsole,
            HandoverController,
            MoneyController,
            MoneyConsoleController,
            OutboxConsole,
            create_static_files_router(
                "/console/static",
                directories=[Path(__file__).with_name("static")],
                opt=PUBLIC,
                include_in_schema=False,
            ),
        ],
        lifespan=[lifespan],
        dependencies={
            "db": Provide(provide_db, sync_to_thread=False),
            "signatures": Provide(lambda: signatures, sync_to_thread=False),
            "settings": Provide(lambda: settings, sync_to_thread=False),
            "keys": Provide(lambda: keys, sync_to_thread=False),
        },
        middleware=[DefineMiddleware(BearerAuth, exclude=["^/schema"])],
        guards=[role_guard],
        before_request=strict_json_body,
        exception_handlers=exception_handlers,  # type: ignore[arg-type]
        openapi_config=OpenAPIConfig(
            title="HoSo Courier", version=__version__, path="/schema", components=openapi.components()
        ),
        request_max_body_size=settings.max_body_bytes,
        template_config=TemplateConfig(
            directory=Path(__file__).with_name("templates"), engine=JinjaTemplateEngine
        ),
        # forms are only on HTML pages; the JSON API authenticates with bearer tokens, not cookies
        csrf_config=CSRFConfig(
            secret=load_secret(settings.keys_dir, "csrf"),
            exclude=["^/api/", "^/schema", "^/health"],
            cookie_httponly=True,
            cookie_samesite="strict",
        ),
        on_app_init=[on_app_init],
        plugins=[channels],
        debug=False,
    )
    app.state.signatures = signatures
    app.state.settings = settings  # the authentication middleware's limits and trusted proxies
    openapi.document(app)
    return app
