"""The app's frame: one screen at a time under an app bar with back, language and the sync
badge; a background task that syncs the outbox whenever the server answers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime

import flet as ft

from ..context import AppContext
from ..sync import TokenExpired
from . import ui

log = logging.getLogger(__name__)
SYNC_EVERY_S = 30.0


class Shell:
    def __init__(self, page: ft.Page, ctx: AppContext) -> None:
        self.page = page
        self.ctx = ctx
        self.stack: list[Callable[[], ft.Control]] = []
        self.body = ft.Container(expand=True, padding=ft.Padding(12, 8, 12, 8))
        self.sync_chip = ft.Container()
        self.back_button = ft.IconButton(
            ft.Icons.ARROW_BACK, on_click=lambda e: self.back(), icon_size=28, tooltip="←"
        )
        self.title = ft.Text("", size=20, weight=ft.FontWeight.BOLD)
        page.appbar = ft.AppBar(
            leading=self.back_button,
            title=self.title,
            actions=[
                self.sync_chip,
                ft.TextButton("EN", on_click=self.toggle_language, height=48),
            ],
        )
        page.add(self.body)
        self._sync_wakeup = asyncio.Event()

    # navigation ----------------------------------------------------------------------------
    def show(self, build: Callable[[], ft.Control], *, root: bool = False) -> None:
        if root:
            self.stack.clear()
        self.stack.append(build)
        self._render()

    def back(self) -> None:
        if len(self.stack) > 1:
            self.stack.pop()
        self._render()

    def replace(self, build: Callable[[], ft.Control]) -> None:
        if self.stack:
            self.stack.pop()
        self.show(build)

    def _render(self) -> None:
        self.body.content = self.stack[-1]()
        self.back_button.visible = len(self.stack) > 1
        self.page.appbar.actions[1].content = ft.Text("EN" if self.ctx.lang == "vi" else "VI", size=16)
        self.refresh_sync_chip(update=False)
        self.page.update()

    def set_title(self, text: str) -> None:
        self.title.value = text

    def toggle_language(self, e: object = None) -> None:
        self.ctx.lang = "en" if self.ctx.lang == "vi" else "vi"
        self._render()

    def toast(self, text: str, *, error: bool = False) -> None:
        self.page.show_dialog(ft.SnackBar(ft.Text(text, size=16), bgcolor=ui.LATE if error else None))

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
            content=ft.TextButton(
                content=ui.badge(text, color), on_click=lambda e: self.open_sync(), height=48
            ),
            identifier="sync-chip",
        )
        if update:
            self.page.update()

    def open_sync(self) -> None:
        from .screens import sync_screen

        self.show(lambda: sync_screen(self))

    def wake_sync(self) -> None:
        self._sync_wakeup.set()

    async def sync_loop(self) -> None:
        """Sync now, then every 30 s or right after a record is written; back off while offline."""
        while True:
            await self.sync_once()
            delay = SYNC_EVERY_S
            if self.ctx.last_sync_error is not None:
                delay = max(2.0, self.ctx.syncer.next_delay())
            try:
                await asyncio.wait_for(self._sync_wakeup.wait(), delay)
            except TimeoutError:
                pass
            self._sync_wakeup.clear()

    async def sync_once(self) -> None:
        if self.ctx.session is None:
            return
        try:
            report = await asyncio.to_thread(self.ctx.sync_now)
        except TokenExpired:
            self.session_expired()
            return
        except Exception:  # never let the loop die; the outbox keeps everything
            log.exception("sync failed")
            return
        if report is not None and (report.accepted or report.rejected or report.duplicate):
            try:
                await asyncio.to_thread(self.ctx.today.refresh)
            except TokenExpired:
                self.session_expired()
                return
            if report.rejected:
                self.toast(self.ctx.tr("sync.rejected", n=report.rejected), error=True)
            self._render()
        else:
            self.refresh_sync_chip()

    def session_expired(self) -> None:
        from .screens import login_screen

        self.ctx.sign_out()
        self.show(lambda: login_screen(self, expired=True), root=True)
