"""The app's frame and navigator: the stack of open routes as `page.views` (one `ft.View`
each, under an app bar with back, the sync badge and language), built from the route
table (views/navigation.py); and a background task that syncs the outbox whenever the
server answers."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import flet as ft

from ..api import TokenExpired
from ..context import AppContext
from . import ui
from .navigation import LOGIN, SYNC, TODAY, Routes, Screen, UnknownRoute

log = logging.getLogger(__name__)
SYNC_EVERY_S = 30.0
GPS_RETRY_S = 20.0  # Today without a GPS fix asks again this often


class Surface(Protocol):
    """The parts of `ft.Page` the shell draws on (a test passes a page without a client)."""

    views: list[ft.View]

    def update(self, *controls: ft.Control) -> None: ...

    def run_task(self, handler: Callable[[], Awaitable[None]]) -> Any: ...

    def show_dialog(self, dialog: ft.DialogControl) -> None: ...


@dataclass
class _Entry:
    route: str
    screen: Screen
    params: dict[str, str]
    state: dict[str, Any] = field(default_factory=dict)
    content: ft.Control | None = None


class Shell:
    def __init__(self, page: Surface, ctx: AppContext, routes: Routes) -> None:
        self.page = page
        self._ctx = ctx
        self.routes = routes
        self.stack: list[_Entry] = []
        self.title = ft.Text("", size=20, weight=ft.FontWeight.BOLD)
        self.sync_chip = ft.Container()
        self._sync_wakeup = asyncio.Event()
        # False while the web page is gone (another tab or a reload took over): this session's
        # loops then leave the outbox to the page that is shown
        self.connected = True
        self._shown: tuple[int, int, int] | None = None  # the outbox's counts as last drawn
        self.banner = self._offline_banner()
        self._shown_link: bool | None = None
        self._gps_asked = float("-inf")
        self._locating = False

    @property
    def ctx(self) -> AppContext:
        return self._ctx

    # navigation ----------------------------------------------------------------------------
    def go(self, route: str, *, root: bool = False, **state: Any) -> None:
        screen, params = self.routes.resolve(route)
        below, views = list(self.stack), list(self.page.views)
        if root:
            self.stack.clear()
            self.page.views.clear()
        self.stack.append(_Entry(route, screen, params, dict(state)))
        self.page.views.append(ft.View(route=route))
        try:
            self._render()
        except Exception:  # a screen that cannot be built leaves the stack as it was
            self.stack[:], self.page.views[:] = below, views
            raise

    def replace(self, route: str, **state: Any) -> None:
        if self.stack:
            self.stack.pop()
            self.page.views.pop()
        self.go(route, **state)

    def back(self) -> None:
        if len(self.stack) > 1:
            self.stack.pop()
            self.page.views.pop()
        self._render()

    def keep(self, **state: Any) -> None:
        self.stack[-1].state.update(state)

    def showing(self, control: ft.Control) -> bool:
        return bool(self.stack) and self.stack[-1].content is control

    @property
    def content(self) -> ft.Control | None:
        """The screen on top."""
        return self.stack[-1].content if self.stack else None

    def view_popped(self, e: ft.ViewPopEvent) -> None:
        """The phone's back button or gesture asked to leave the view on top."""
        if self.stack and e.route == self.stack[-1].route:
            self.back()

    def route_changed(self, e: ft.RouteChangeEvent) -> None:
        """A route from outside (the address bar, a deep link): back to it if it is open,
        else open it (only routes that need no state of the app can come this way)."""
        routes = [entry.route for entry in self.stack]
        if routes and e.route == routes[-1]:
            return
        if e.route in routes:
            while self.stack[-1].route != e.route:
                self.stack.pop()
                self.page.views.pop()
            self._render()
            return
        if self.ctx.session is None and e.route != LOGIN:
            return  # signed out: only the login screen opens from outside
        try:
            self.go(e.route, root=e.route in (TODAY, LOGIN))
        except (UnknownRoute, TypeError, LookupError):  # unknown, needs state, or not on today's list
            log.info("ignored route %s", e.route)

    def _render(self) -> None:
        """Build the screen on top afresh (its flow, kept with `keep`, keeps what was entered)."""
        entry = self.stack[-1]
        # two lines rather than "Nhận bưu…" beside the sync chip at 360 px
        self.title = ft.Text("", size=18, weight=ft.FontWeight.BOLD, max_lines=2)
        self.sync_chip = ft.Container()
        entry.content = entry.screen(self, **entry.params, **entry.state)
        back = ft.IconButton(ft.Icons.ARROW_BACK, on_click=lambda e: self.back(), icon_size=28, tooltip="←")
        back.visible = len(self.stack) > 1
        language = ft.TextButton(
            content=ft.Text("EN" if self.ctx.lang == "vi" else "VI", size=16),
            on_click=self.toggle_language,
            height=48,
        )
        view = self.page.views[-1]
        view.route = entry.route
        view.padding = 0
        view.appbar = ft.AppBar(leading=back, title=self.title, actions=[self.sync_chip, language])
        self.banner = self._offline_banner()
        view.controls = [
            self.banner,
            ft.Container(entry.content, expand=True, padding=ft.Padding(12, 8, 12, 8)),
        ]
        self.refresh_sync_chip(update=False)
        self._shown = self._outbox_counts()
        self.page.update()

    # the offline banner --------------------------------------------------------------------------
    def _offline_banner(self) -> ft.Container:
        """On every screen while the server cannot be reached (ctx.link), gone once it answers."""
        self._shown_link = self.ctx.link.online
        return ft.Container(
            ft.Row(
                [
                    ft.Icon(ft.Icons.CLOUD_OFF, color=ft.Colors.WHITE, size=22),
                    ft.Text(self.ctx.tr("link.offline"), color=ft.Colors.WHITE, size=15, expand=True),
                ],
                spacing=8,
            ),
            bgcolor=ui.SOON,
            padding=ft.Padding(12, 8, 12, 8),
            visible=self.offline,
        )

    @property
    def offline(self) -> bool:
        return self.ctx.session is not None and self.ctx.link.down

    def show_link(self) -> None:
        """Show or hide the banner after a request or a probe; back online, sync at once."""
        online = self.ctx.link.online
        if online == self._shown_link:
            return
        came_back = self._shown_link is False and online is True
        self._shown_link = online
        self.banner.visible = self.offline
        if came_back:
            self.wake_sync()
            if self.stack and self.stack[-1].route == TODAY:
                self.run_task(self._refresh_today)
        self.page.update()

    async def _refresh_today(self) -> None:
        try:
            await asyncio.to_thread(self.ctx.today.refresh)
        except TokenExpired:
            self.session_expired()
            return
        if self.stack and self.stack[-1].route == TODAY:
            self._render()

    async def link_loop(self) -> None:
        """Probe the server cheaply (GET /health) when nothing else was heard from it lately,
        so the banner says "offline" within seconds; and ask the GPS again while Today has no fix."""
        while True:
            if self.connected and self.ctx.session is not None and self.ctx.link.due():
                try:
                    await asyncio.to_thread(self.ctx.probe)
                except Exception:  # never let the loop die
                    log.exception("probe failed")
                self.show_link()
            if (
                self.ctx.today.position is None
                and self.stack
                and self.stack[-1].route == TODAY
                and time.monotonic() - self._gps_asked > GPS_RETRY_S
            ):
                self.run_task(self.locate)
            await asyncio.sleep(self.ctx.link.wait_s())

    # GPS -------------------------------------------------------------------------------------
    async def locate(self) -> None:
        """Ask the GPS for today's route order and distances; called once the screen is up (the
        geolocator is part of the page only after its first update), and again while no fix came."""
        if self._locating:
            return
        self._locating, self._gps_asked = True, time.monotonic()
        try:
            fix = await self.ctx.locator.locate()
        finally:
            self._locating = False
        if fix is None:
            return
        had = self.ctx.today.position
        self.ctx.today.position = fix.point
        if had != fix.point and self.stack and self.stack[-1].route == TODAY:
            self._render()

    def set_title(self, text: str) -> None:
        self.title.value = text

    def toggle_language(self, e: object = None) -> None:
        self.ctx.lang = "en" if self.ctx.lang == "vi" else "vi"
        self._render()

    def toast(self, text: str, *, error: bool = False) -> None:
        self.page.show_dialog(ft.SnackBar(ft.Text(text, size=16), bgcolor=ui.LATE if error else None))

    def update(self) -> None:
        self.page.update()

    def run_task(self, task: Callable[[], Awaitable[None]]) -> None:
        self.page.run_task(task)

    # sync ------------------------------------------------------------------------------------
    def refresh_sync_chip(self, update: bool = True) -> None:
        self.sync_chip.visible = self.ctx.session is not None
        waiting = self.ctx.outbox.waiting()
        rejected = len(self.ctx.outbox.rejected())
        last = self.ctx.outbox.last_sync()
        when = datetime.fromisoformat(last).astimezone().strftime("%H:%M") if last else "—"
        text = self.ctx.tr("sync.chip", waiting=waiting, when=when)
        color = ui.LATE if rejected else (ui.SOON if waiting else ui.OK)
        self.sync_chip.content = ft.Semantics(
            content=ft.TextButton(content=ui.badge(text, color), on_click=lambda e: self.go(SYNC), height=48),
            identifier="sync-chip",
        )
        if update:
            self.page.update()

    def wake_sync(self) -> None:
        self._sync_wakeup.set()

    def disconnected(self) -> None:
        self.connected = False

    def reconnected(self) -> None:
        self.connected = True
        self.wake_sync()

    def _outbox_counts(self) -> tuple[int, int, int]:
        box = self.ctx.outbox
        return box.waiting(), len(box.flagged()), len(box.rejected())

    async def sync_loop(self) -> None:
        """Sync now, then every 30 s or right after a record is written; back off while offline."""
        while True:
            try:
                await self.sync_once()
            except Exception:  # a redraw that failed must not stop syncing
                log.exception("sync round failed")
            delay = SYNC_EVERY_S
            if self.ctx.last_sync_error is not None:
                delay = max(2.0, self.ctx.sync.next_delay())
            try:
                await asyncio.wait_for(self._sync_wakeup.wait(), delay)
            except TimeoutError:
                pass
            self._sync_wakeup.clear()

    async def sync_once(self) -> None:
        if self.ctx.session is None or not self.connected:
            return
        try:
            report = await asyncio.to_thread(self.ctx.sync_now)
        except TokenExpired:
            self.session_expired()
            return
        except Exception:  # never let the loop die; the outbox keeps everything
            log.exception("sync failed")
            return
        self.show_link()
        sent = report is not None and bool(report.accepted or report.rejected or report.duplicate)
        # redraw also when the outbox changed under us (another page of this phone synced it)
        if sent or self._outbox_counts() != self._shown:
            try:
                await asyncio.to_thread(self.ctx.today.refresh)
            except TokenExpired:
                self.session_expired()
                return
            except Exception:  # offline again: draw what the phone has
                log.exception("today's list not refreshed")
            if report is not None and report.rejected:
                self.toast(self.ctx.tr("sync.rejected", n=report.rejected), error=True)
            self._render()
        else:
            self.refresh_sync_chip()

    async def report_saved(self, ids: list[str]) -> None:
        """Records just written: send them now, then say truthfully where they are — sent, or
        kept on this phone until the server can be reached (never "not sent" after a sync)."""
        if not self.ctx.link.down:
            await self.sync_once()
        states = self.ctx.outbox.states(ids)
        sent = sum(1 for st in states.values() if st == "acked")
        kept = sum(1 for st in states.values() if st == "pending")
        if kept:
            self.toast(self.ctx.tr("flow.saved", n=kept))
        elif sent:
            self.toast(self.ctx.tr("flow.sent", n=sent))

    def session_expired(self) -> None:
        self.ctx.sign_out()
        self.go(LOGIN, root=True, expired=True)
