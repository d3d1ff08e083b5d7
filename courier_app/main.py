"""The courier app: builds the real services (outbox, device key, camera, GPS, HTTP) and
runs the Flet app — in the browser for `hoso app`, or packaged by `flet build apk`.

The layers, from the screen down (each imports only those below it):

    views/       Flet screens, registered in a route table (views/navigation.py) and shown
                 by the Shell (views/shell.py), which also runs the background sync
    context.py   the composition root: builds and wires everything below
    flows/       plain-Python state of each thing a courier does: login, today, scan, pickup,
                 delivery, handover; they take their I/O as arguments
    session.py   who is signed in, kept across launches
    sync.py      pushes the outbox to the server, with backoff
    api.py       the one HTTP client, typed with the wire schema in shared/api.py
    outbox.py    the durable local queue of signed events and attachments (SQLite)
    device.py    the device key; ports.py the GPS and clock interfaces
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import flet as ft
from flet.utils.platform_utils import is_mobile

from .context import AppContext
from .views import capture, forms, screens
from .views.hardware import GeoLocator, SecureKeyStore
from .views.navigation import LOGIN, Routes
from .views.shell import Shell
from .webclient import local_assets

DEFAULT_SERVER = "http://127.0.0.1:8000"
ASSETS = Path(__file__).resolve().parent.parent / "assets"


def _data_dir() -> Path:
    # On Android, Flet points FLET_APP_STORAGE_DATA at the app's private storage.
    return Path(os.environ.get("HOSO_APP_DATA") or os.environ.get("FLET_APP_STORAGE_DATA") or "var/courier")


def routes() -> Routes:
    """Every screen of the app, by route."""
    table = Routes()
    screens.register(table)
    forms.register(table)
    capture.register(table)
    return table


def make_main(server_url: str, data_dir: Path) -> Callable[[ft.Page], Awaitable[None]]:
    async def main(page: ft.Page) -> None:
        page.title = "HoSo — Bưu tá"
        # screens change in place, as on the cheap phones couriers carry: no route animation
        still = ft.PageTransitionTheme.NONE
        page.theme = ft.Theme(
            color_scheme_seed=ft.Colors.BLUE_800,
            page_transitions=ft.PageTransitionsTheme(
                android=still, ios=still, linux=still, macos=still, windows=still
            ),
        )
        page.theme_mode = ft.ThemeMode.LIGHT
        page.padding = 0
        locator = GeoLocator()
        keystore = None
        if is_mobile():  # type: ignore[no-untyped-call]  # on the phone the key lives in secure storage, not in a file
            keystore = SecureKeyStore()
            await keystore.ensure()
        ctx = AppContext(data_dir, server_url, lambda: datetime.now(UTC), locator, keystore)
        shell = Shell(page, ctx, routes())
        page.data = shell  # reachable from tests that drive the page
        page.on_route_change = shell.route_changed
        page.on_view_pop = shell.view_popped
        page.on_close = lambda e: ctx.close()  # the web session expired: release the outbox
        page.on_disconnect = lambda e: shell.disconnected()  # the tab went away (or reloads)
        page.on_connect = lambda e: shell.reconnected()
        if ctx.resume_session():
            await screens.open_today(shell, refresh=True)
        else:
            shell.go(LOGIN, root=True)
        page.run_task(shell.sync_loop)
        page.run_task(shell.link_loop)

    return main


def run(
    server_url: str = DEFAULT_SERVER,
    port: int = 8550,
    host: str = "127.0.0.1",
    data_dir: Path | None = None,
    open_browser: bool = True,
) -> None:
    # absolute: Flet reads a relative assets_dir from the app's own folder, not from here
    data_dir = (data_dir or _data_dir()).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    assets = ASSETS
    if not is_mobile():  # type: ignore[no-untyped-call]  # the browser build: nothing from outside
        assets = local_assets(ASSETS, data_dir / "web-assets")
    ft.run(
        make_main(server_url, data_dir),
        name="",
        host=host,
        port=port,
        view=ft.AppView.WEB_BROWSER if open_browser else None,
        assets_dir=str(assets),
        no_cdn=True,
    )


def cli(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="hoso app", description="HoSo courier app in the browser")
    p.add_argument("--server", default=os.environ.get("HOSO_SERVER_URL", DEFAULT_SERVER))
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8550)
    p.add_argument("--data-dir", type=Path, default=None)
    p.add_argument("--no-browser", action="store_true", help="serve only; open the URL yourself")
    args = p.parse_args(argv)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        # the browser build is one courier's phone: whoever opens it acts with that courier's key
        print(
            f"warning: --host {args.host} lets anyone who reaches it act as the signed-in courier", flush=True
        )
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    data = args.data_dir or _data_dir()
    print(f"Courier app: http://{args.host}:{args.port}/  (server {args.server}, data {data})", flush=True)
    run(args.server, args.port, args.host, data, open_browser=not args.no_browser)


if __name__ == "__main__":
    cli()
