"""The pages of a dossier photographed at the pickup (`/stop/:code/pages`, flows/pages.py):
a live preview, each photo checked on the phone (a retake box says which page, why and its
score), thumbnails of the pages kept, "Xong (n trang)" and "Bỏ qua — quầy sẽ quét sau"."""

from __future__ import annotations

import asyncio
from typing import cast

import flet as ft

from shared.codes import group

from ..flows.custody import Incomplete
from ..flows.pages import THUMB_SIDE, CaptureFlow
from . import ui
from .hardware import CameraPanel
from .navigation import PAGES, TODAY, Navigator, Routes


def register(routes: Routes) -> None:
    routes.add(PAGES, capture_screen)


def capture_screen(shell: Navigator, code: str, flow: CaptureFlow | None = None) -> ft.Control:
    ctx, tr = shell.ctx, shell.ctx.tr
    shell.set_title(tr("capture.title"))
    if flow is None:
        flow = CaptureFlow(ctx.outbox, code, ctx.tr)
        shell.keep(flow=flow)
    if flow.pickup_id is None:  # the pickup was rejected, or a link to one this phone did not make
        flow.skip()  # nothing for the pages to go with: Today stops offering them
        rejected = any(r.shipment == code and r.type == "picked_up" for r in ctx.outbox.rejected())
        return ui.form(
            [
                ui.note(tr("capture.pickup_rejected" if rejected else "capture.no_pickup"), ui.SOON, size=18),
                ft.Row([ui.button(tr("today.title"), lambda e: shell.go(TODAY, root=True))]),
            ]
        )
    panel = CameraPanel()
    status = ui.note(tr("capture.help"))
    retake = ft.Container(
        content=ft.Text("", size=17, weight=ft.FontWeight.W_600, color=ui.LATE),
        bgcolor=ft.Colors.RED_50,
        border=ft.Border.all(2, ui.LATE),
        border_radius=8,
        padding=12,
        visible=False,
    )
    thumbs = ft.Row(wrap=True, spacing=8, run_spacing=8)
    error = ui.error_text()

    def show_thumbs() -> None:
        thumbs.controls = [
            ft.Column(
                [
                    ft.Image(
                        src=flow.thumbnail(p), width=THUMB_SIDE, height=THUMB_SIDE, fit=ft.BoxFit.CONTAIN
                    ),
                    ft.Text(f"{p.n} · {p.sharpness}", size=13),
                ],
                spacing=2,
                horizontal_alignment=ft.CrossAxisAlignment.CENTER,
            )
            for p in flow.pages
        ]
        shoot_label.value = tr("capture.shoot", n=flow.next_number)
        done_label.value = tr("capture.done", n=len(flow.pages))
        done.disabled = not flow.pages
        done.bgcolor = ui.PRIMARY if flow.pages else ft.Colors.BLUE_GREY_200

    async def shoot(e: object = None) -> None:
        jpeg = await panel.take_picture(as_seen=True)  # kept as evidence: never mirrored
        if jpeg is None:
            status.value = tr("scan.no_camera")
            shell.update()
            return
        status.value = tr("capture.checking", n=flow.next_number)
        shell.update()
        verdict = await asyncio.to_thread(flow.take, jpeg)
        retake.visible = not verdict.ok
        if verdict.ok:
            status.value, status.color = verdict.message, ui.OK
        else:
            retake.content.value = verdict.message  # type: ignore[union-attr]
            status.value, status.color = tr("capture.help"), None
        show_thumbs()
        shell.update()

    async def finish(e: object = None) -> None:
        try:
            await asyncio.to_thread(flow.finish)
        except Incomplete as exc:
            error.value = tr(str(exc.args[0]))
            shell.update()
            return
        n = len(flow.pages)
        shell.go(TODAY, root=True)
        shell.toast(tr("capture.queued", n=n))
        shell.wake_sync()

    def skip(e: object = None) -> None:
        flow.skip()
        shell.go(TODAY, root=True)

    async def start() -> None:
        if not await panel.start():
            status.value = tr("scan.no_camera")
            shell.update()

    shoot_button = ui.button(tr("capture.shoot", n=flow.next_number), shoot, icon=ft.Icons.CAMERA)
    done = ui.button(tr("capture.done", n=len(flow.pages)), finish, icon=ft.Icons.CHECK)
    # the labels show_thumbs() rewrites as pages are kept
    shoot_label, done_label = cast(ft.Text, shoot_button.content), cast(ft.Text, done.content)
    show_thumbs()
    shell.run_task(start)
    return ui.form(
        [
            ft.Text(f"{tr('flow.code')}: {group(code)}", size=15, color=ft.Colors.BLUE_GREY_700),
            panel,
            status,
            retake,
            ft.Row([shoot_button]),
            thumbs,
            error,
            ft.Row([done]),
            ft.Row([ui.button(tr("capture.skip"), skip, icon=ft.Icons.SKIP_NEXT, primary=False)]),
        ]
    )
