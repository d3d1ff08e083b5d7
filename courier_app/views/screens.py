"""Login, Today, Scan and Sync screens, registered in the route table (`register`)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime

import flet as ft

from shared.api import PendingHandover
from shared.codes import group

from ..api import TokenExpired
from ..flows.custody import TYPED_REASONS, Identified
from ..flows.rejections import advice
from ..flows.scan import ScanFlow
from ..flows.today import Row
from . import ui
from .hardware import CameraPanel
from .navigation import (
    HANDOVER,
    LOGIN,
    SCAN,
    STOP_SCAN,
    SYNC,
    TODAY,
    Navigator,
    Routes,
    counter_route,
    pages_route,
    stop_route,
    stop_scan_route,
)

SCAN_PAUSE_S = 0.25


def register(routes: Routes) -> None:
    routes.add(LOGIN, login_screen)
    routes.add(TODAY, today_screen)
    routes.add(SCAN, scan_screen)
    routes.add(STOP_SCAN, stop_scan_screen)
    routes.add(SYNC, sync_screen)


def login_screen(shell: Navigator, *, expired: bool = False) -> ft.Control:
    ctx, tr = shell.ctx, shell.ctx.tr
    shell.set_title(tr("login.title"))
    flow = ctx.login_flow()
    server = ui.field(tr("login.server"), ctx.server_url)
    username = ui.field(tr("login.username"))
    password = ui.field(tr("login.password"), password=True)
    error = ui.error_text()
    if expired:
        error.value = tr("login.expired", n=ctx.outbox.waiting())
    progress = ft.ProgressRing(visible=False, width=28, height=28)

    async def submit(e: object = None) -> None:
        progress.visible, error.value = True, ""
        shell.update()
        session = await asyncio.to_thread(
            flow.submit, server.value or "", username.value or "", password.value or ""
        )
        progress.visible = False
        if session is None:
            error.value = tr(flow.error or "login.server_error")
            shell.update()
            return
        ctx.signed_in(session)
        await open_today(shell, refresh=True)
        shell.wake_sync()

    password.on_submit = submit
    return ft.Column(
        [
            ui.title(tr("app.name")),
            ui.note(tr("login.help")),
            server,
            username,
            password,
            error,
            ft.Row([ui.button(tr("login.submit"), submit, icon=ft.Icons.LOGIN), progress]),
        ],
        spacing=14,
        scroll=ft.ScrollMode.AUTO,
        horizontal_alignment=ft.CrossAxisAlignment.STRETCH,
    )


async def open_today(shell: Navigator, *, refresh: bool = False) -> None:
    ctx = shell.ctx
    if refresh:
        try:
            await asyncio.to_thread(ctx.today.refresh)
        except TokenExpired:
            shell.session_expired()
            return
    shell.go(TODAY, root=True)
    # after the screen is up: at start-up the GPS service reaches the phone with the first
    # page update, and asking before it (a resumed session) never got a fix
    await shell.locate()


def _stop_card(shell: Navigator, index: int, row: Row) -> ft.Control:
    tr = shell.ctx.tr
    a = row.a
    color = ui.OK if row.done else (ui.LATE if row.must_return else ui.PRIMARY)
    badges: list[ft.Control] = [ui.badge(tr(f"action.{row.action}"), color)]
    if row.attempts and not row.done:
        badges.append(ui.badge(tr("today.attempts", n=row.attempts), ui.SOON))
    if row.late:
        badges.append(ui.badge(tr("today.late"), ui.LATE))
    elif row.due_soon:
        badges.append(ui.badge(tr("today.due_soon"), ui.SOON))
    if row.unsynced:
        badges.append(ui.badge(tr("today.unsynced"), ft.Colors.BLUE_GREY_600))
    due = a.due_at.astimezone().strftime("%d/%m %H:%M")
    lines: list[ft.Control] = [
        ft.Row([ft.Text(f"{index}.", size=20, weight=ft.FontWeight.BOLD), *badges], wrap=True),
        ft.Text(row.stop.contact_name, size=18, weight=ft.FontWeight.W_600),
        ft.Text(f"{row.stop.address}, {row.stop.commune}", size=16),
        ft.Text(
            f"{tr('today.distance')}: {ui.km(row.distance_m)} · {tr('today.due')}: {due}",
            size=15,
            color=ft.Colors.BLUE_GREY_700,
        ),
        ft.Text(f"{group(a.code)} · {a.procedure}", size=14, color=ft.Colors.BLUE_GREY_600),
    ]
    return ft.Card(
        ft.Container(
            ft.Column(lines, spacing=4),
            padding=14,
            on_click=(lambda e: shell.go(stop_scan_route(row))) if not row.done else None,
            ink=True,
        ),
    )


def today_screen(shell: Navigator) -> ft.Control:
    ctx, tr = shell.ctx, shell.ctx.tr
    shell.set_title(tr("today.title"))
    rows = ctx.today.rows()
    open_rows = [r for r in rows if not r.done]
    cards = [_stop_card(shell, i + 1, r) for i, r in enumerate(rows)]
    header: list[ft.Control] = []
    if ctx.today.offline and not ctx.link.down:  # the server answers again: the list is still the old one
        header.append(ui.note(tr("today.offline"), ui.SOON))
    if flagged := ctx.outbox.flagged():
        header.append(
            ft.Container(
                ft.Text(tr("sync.flagged", n=len(flagged)), color=ft.Colors.WHITE, size=16),
                bgcolor=ui.SOON,
                padding=12,
                border_radius=8,
                on_click=lambda e: shell.go(SYNC),
            )
        )
    if rejected := ctx.outbox.rejected():
        header.append(
            ft.Container(
                ft.Text(tr("today.rejected", n=len(rejected)), color=ft.Colors.WHITE, size=16),
                bgcolor=ui.LATE,
                padding=12,
                border_radius=8,
                on_click=lambda e: shell.go(SYNC),
            )
        )
    for pending in ctx.today.counter_handovers():
        header.append(
            ui.banner(
                tr("counter.banner", name=pending.counterparty["name"], n=len(pending.codes)),
                ui.OK,
                lambda e, p=pending: _open_counter(shell, p),
                "counter-handover",
            )
        )
    for code, n in ctx.outbox.open_captures():  # pages offered, neither done nor skipped yet
        header.append(
            ui.banner(
                tr("capture.resume", code=group(code), n=n),
                ui.PRIMARY,
                lambda e, c=code: shell.go(pages_route(c)),
                "capture-resume",
            )
        )
    summary = tr("today.summary", n=len(open_rows), late=sum(r.late for r in open_rows))

    async def refresh(e: object = None) -> None:
        await open_today(shell, refresh=True)

    return ft.Column(
        [
            *header,
            ft.Row([ui.button(tr("today.scan"), lambda e: shell.go(SCAN), icon=ft.Icons.QR_CODE_SCANNER)]),
            ft.Row(
                [
                    ui.button(
                        tr("today.handover"),
                        lambda e: shell.go(HANDOVER),
                        icon=ft.Icons.MOVE_UP,
                        primary=False,
                    ),
                    ui.icon_button(ft.Icons.REFRESH, refresh, tr("today.refresh")),
                ]
            ),
            ui.note(summary, size=15),
            *(cards or [ui.note(tr("today.empty"))]),
        ],
        spacing=10,
        scroll=ft.ScrollMode.AUTO,
        horizontal_alignment=ft.CrossAxisAlignment.STRETCH,
    )


def _open_counter(shell: Navigator, pending: PendingHandover) -> None:
    shell.go(counter_route(pending.id))


def _scanned(shell: Navigator, code: str, identified: Identified) -> None:
    """Scanned from Today: the scan screen gives way to what the courier does at that stop,
    its form knowing how the envelope was identified."""
    row = shell.ctx.today.row_for(code)
    if row is None or row.done:
        shell.toast(shell.ctx.tr("scan.nothing_to_do"), error=True)
        return
    shell.replace(stop_route(row), identified=identified)


def stop_scan_screen(shell: Navigator, code: str) -> ft.Control:
    """A stop tapped on Today: its form opens only from the envelope's own label."""
    row = shell.ctx.today.row_for(code)
    name = row.stop.contact_name if row else code
    return scan_screen(shell, hint=shell.ctx.tr("scan.for_stop", name=name))


def scan_screen(
    shell: Navigator,
    *,
    on_code: Callable[[str, Identified], None] | None = None,
    title_key: str = "scan.title",
    hint: str | None = None,
) -> ft.Control:
    """Camera preview scanning continuously, a torch toggle, and typed entry (with the reason
    it was not scanned) as a fallback. A code found goes to `on_code`; by default it opens
    that stop's flow."""
    ctx, tr = shell.ctx, shell.ctx.tr
    found: Callable[[str, Identified], None] = on_code or (lambda code, how: _scanned(shell, code, how))
    shell.set_title(tr(title_key))
    flow = ScanFlow(ctx.today.label_keys, ctx.today.assigned_codes(), refresh_keys=ctx.today.fresh_label_keys)
    panel = CameraPanel()
    status = ft.Text(hint or tr("scan.aim"), size=17, weight=ft.FontWeight.W_600)
    choices = ft.Column()
    typed = ui.field(tr("scan.typed"), digits=True, max_length=16)
    reason: dict[str, str | None] = {"value": None}

    def pick_reason(value: str) -> None:
        reason["value"] = value

    reasons = ui.choices([(r, tr(f"typed.{r}")) for r in TYPED_REASONS], None, pick_reason)
    view = ft.Column(spacing=10, scroll=ft.ScrollMode.AUTO)

    def verdict(code: str | None) -> None:
        if code is not None and flow.identified is not None:
            found(code, flow.identified)
            return
        if flow.choices:
            status.value = tr("scan.which")
            choices.controls = [
                ui.button(group(c), lambda e, c=c: verdict(flow.choose(c)), primary=False)
                for c in flow.choices
            ]
        elif flow.message:
            status.value = tr(flow.message)
        shell.update()

    async def loop() -> None:
        if not await panel.start():
            status.value = tr("scan.no_camera")
            shell.update()
            return
        while view.page is not None and shell.showing(view):
            jpeg = await panel.take_picture()
            if jpeg is None:
                await asyncio.sleep(SCAN_PAUSE_S)
                continue
            code = await asyncio.to_thread(flow.on_frame, jpeg)
            if not shell.showing(view):
                return
            if flow.too_dark and not flow.message and status.value != tr("scan.too_dark"):
                status.value = tr("scan.too_dark")  # light the label (torch), hold the phone still
                shell.update()
            if code is not None or flow.choices or flow.message:
                verdict(code)
                if code is not None or flow.choices:
                    return
            await asyncio.sleep(SCAN_PAUSE_S)

    def submit_typed(e: object = None) -> None:
        verdict(flow.on_typed(typed.value or "", reason["value"]))

    async def torch(e: object = None) -> None:
        if not await panel.toggle_torch():
            shell.toast(tr("scan.no_torch"))
        flow.low_light = panel.torch  # torch on: frames the plain read misses take the low-light path

    typed.on_submit = submit_typed
    view.controls = [
        panel,
        ft.Row([ui.icon_button(ft.Icons.FLASHLIGHT_ON, torch, tr("scan.torch")), status], wrap=True),
        choices,
        ft.Divider(),
        typed,
        ui.note(tr("scan.typed_reason")),
        reasons,
        ft.Row([ui.button(tr("scan.typed_ok"), submit_typed, primary=False)]),
    ]
    shell.run_task(loop)
    return view


def _local_time(wire: str | None) -> str:
    if not wire:
        return "—"
    return datetime.fromisoformat(wire).astimezone().strftime("%H:%M:%S %d/%m/%Y")


def sync_screen(shell: Navigator) -> ft.Control:
    ctx, tr = shell.ctx, shell.ctx.tr
    shell.set_title(tr("sync.title"))
    counts = ctx.outbox.counts()
    last = ctx.outbox.last_sync()
    rejected = ctx.outbox.rejected()
    status = ui.note("")

    async def sync_now(e: object = None) -> None:
        status.value = tr("sync.running")
        shell.update()
        before = ctx.outbox.counts().get("acked", 0)
        await shell.sync_once()
        after = ctx.outbox.counts()
        if ctx.last_sync_error:
            shell.toast(tr("sync.not_sent", n=after.get("pending", 0)), error=True)
        else:
            shell.toast(tr("sync.sent", n=after.get("acked", 0) - before))
        shell.replace(SYNC)

    items: list[ft.Control] = [
        ui.note(tr("sync.waiting", n=counts.get("pending", 0)), size=18),
        ui.note(tr("sync.acked", n=counts.get("acked", 0))),
        ui.note(tr("sync.last", when=_local_time(last))),
    ]
    if ctx.last_sync_error:
        items.append(ui.note(tr("sync.offline"), ui.SOON))
    items += [ft.Row([ui.button(tr("sync.now"), sync_now, icon=ft.Icons.SYNC)]), status]
    if flagged := ctx.outbox.flagged():
        items.append(ui.title(tr("sync.flagged_title")))
        for f in flagged:
            items.append(
                ft.Container(
                    ft.Column(
                        [
                            ft.Text(
                                f"{group(f.shipment)} · {tr(f.step_key)}",
                                size=16,
                                weight=ft.FontWeight.W_600,
                            ),
                            *(ft.Text(tr("sync.flag_" + flag), size=16, color=ui.SOON) for flag in f.flags),
                        ],
                        spacing=2,
                    ),
                    border=ft.Border.all(1, ui.SOON),
                    border_radius=8,
                    padding=10,
                )
            )
    if rejected:
        items.append(ui.title(tr("sync.rejected_title")))
        for r in rejected:
            items.append(
                ft.Container(
                    ft.Column(
                        [
                            ft.Text(
                                f"{r.shipment} · {tr('step.' + r.type)}", size=16, weight=ft.FontWeight.W_600
                            ),
                            ft.Text(tr(advice(r.reason)), size=16, color=ui.LATE),
                            ft.Text(
                                tr("reject.server_said", reason=r.reason),
                                size=13,
                                color=ft.Colors.BLUE_GREY_600,
                            ),
                        ],
                        spacing=2,
                    ),
                    border=ft.Border.all(1, ui.LATE),
                    border_radius=8,
                    padding=10,
                )
            )
        items.append(ui.note(tr("sync.rejected_help")))
    for batch in ctx.outbox.page_batches("pending"):
        items.append(ui.note(tr("capture.waiting", code=group(batch.shipment), n=batch.pages)))
    for batch in ctx.outbox.page_batches("rejected"):  # kept with the server's sentence, not retried
        items.append(
            ft.Container(
                ft.Text(
                    tr("capture.refused", code=group(batch.shipment), reason=batch.reason or ""),
                    size=16,
                    color=ui.SOON,
                ),
                border=ft.Border.all(1, ui.SOON),
                border_radius=8,
                padding=10,
            )
        )
    return ft.Column(items, spacing=12, scroll=ft.ScrollMode.AUTO)
