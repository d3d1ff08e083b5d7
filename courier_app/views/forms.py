"""The recording screens: pickup, delivery, failed attempt, handover, a clerk's batch, and
the photo they take; registered in the route table (`register`). Each renders its flow,
forwards input to it, and on "finish" asks the flow to sign and keep the event(s)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import flet as ft

from shared.codes import group

from ..flows.custody import (
    DISTANCE_REASONS,
    FAILURE_REASONS,
    RECEIVERS,
    RETURN_TO,
    CounterHandoverFlow,
    DeliveryFlow,
    FailedAttemptFlow,
    HandoverFlow,
    Identified,
    Incomplete,
    PickupFlow,
    ReturnFlow,
)
from ..flows.today import Row
from . import ui
from .hardware import CameraPanel
from .navigation import (
    COUNTER,
    DELIVERY,
    FAILED,
    HANDOVER,
    PHOTO,
    PICKUP,
    RETURN,
    SCAN,
    STOP_HANDOVER,
    TODAY,
    Navigator,
    Routes,
    pages_route,
    stop_route,
    stop_scan_route,
)
from .signature import SignatureBox


def register(routes: Routes) -> None:
    routes.add(PICKUP, pickup_screen)
    routes.add(DELIVERY, delivery_screen)
    routes.add(FAILED, failed_screen)
    routes.add(RETURN, return_screen)
    routes.add(HANDOVER, handover_screen)
    routes.add(STOP_HANDOVER, handover_screen)
    routes.add(COUNTER, counter_screen)
    routes.add(PHOTO, photo_screen)


def _row(shell: Navigator, code: str) -> Row:
    row = shell.ctx.today.row_for(code)
    if row is None:
        raise LookupError(f"{code} is not on today's list")
    return row


def _header(shell: Navigator, row: Row, identified: Identified | None = None) -> ft.Control:
    a, stop, tr = row.a, row.stop, shell.ctx.tr
    lines: list[ft.Control] = [
        ft.Text(stop.contact_name, size=20, weight=ft.FontWeight.BOLD),
        ft.Text(f"{stop.address}, {stop.commune}", size=16),
        ft.Text(
            f"{tr('flow.code')}: {group(a.code)} · {a.procedure}",
            size=14,
            color=ft.Colors.BLUE_GREY_700,
        ),
    ]
    if identified is not None:
        how = (
            tr("flow.identified_scan")
            if identified.by == "scan"
            else tr("flow.identified_typed", reason=tr(f"typed.{identified.reason}"))
        )
        color = ui.OK if identified.by == "scan" else ui.SOON
        lines.append(
            ft.Row([ft.Icon(ft.Icons.QR_CODE_2, size=18, color=color), ft.Text(how, size=14, color=color)])
        )
    return ft.Column(lines, spacing=2)


def _toggler(flow: PickupFlow, index: int) -> Callable[[bool], None]:
    return lambda _ticked: flow.toggle(index)


def _scan_first(shell: Navigator, row: Row) -> ft.Control:
    """A form asked for without the envelope identified (a deep link): scan first."""
    tr = shell.ctx.tr
    return ui.form(
        [
            _header(shell, row),
            ui.note(tr("flow.scan_first"), ui.LATE, size=18),
            ft.Row(
                [
                    ui.button(
                        tr("today.scan"),
                        lambda e: shell.replace(stop_scan_route(row)),
                        icon=ft.Icons.QR_CODE_SCANNER,
                    )
                ]
            ),
        ]
    )


def _distance_panel(shell: Navigator, flow: Any) -> ft.Column:
    """Shown once the GPS puts the courier more than 500 m from the address: why?"""
    tr = shell.ctx.tr
    note = ui.bound_field(tr("flow.distance_note"), flow, "distance_note")

    def pick(value: str) -> None:
        flow.distance_reason = value

    return ft.Column(
        [
            ft.Text(tr("flow.distance_reason"), size=17, weight=ft.FontWeight.W_600, color=ui.LATE),
            ui.choices([(r, tr(f"distance.{r}")) for r in DISTANCE_REASONS], flow.distance_reason, pick),
            note,
        ],
        visible=flow.far_from_address,
        spacing=8,
    )


class _Location(ft.Text):
    """Shows the GPS fix as it arrives, the distance from the address, and a flag above 500 m."""

    def __init__(self, shell: Navigator, flow: Any, far: ft.Control | None = None) -> None:
        super().__init__(shell.ctx.tr("flow.locating"), size=15)
        self.shell, self.flow, self.far = shell, flow, far

    def did_mount(self) -> None:
        self.page.run_task(self._locate)

    async def _locate(self) -> None:
        fix = await self.shell.ctx.locator.locate()
        self.flow.set_fix(fix)
        tr = self.shell.ctx.tr
        if fix is None:
            self.value, self.color = tr("flow.no_fix"), ui.SOON
        else:
            d = getattr(self.flow, "distance_from_address_m", None)
            self.value = tr("flow.fix", acc=f"{fix.accuracy_m or 0:.0f}")
            if d is not None:
                self.value += " · " + tr("flow.from_address", d=ui.km(d))
            if getattr(self.flow, "far_from_address", False):
                self.value += " — " + tr("flow.far")
                self.color = ui.LATE
            else:
                self.color = ui.OK
        if self.far is not None:
            self.far.visible = bool(getattr(self.flow, "far_from_address", False))
        if self.page is not None:
            self.shell.update()


def _photo_row(shell: Navigator, flow: Any) -> ft.Control:
    tr = shell.ctx.tr
    count = ft.Text(tr("flow.photos", n=len(flow.photos)), size=15)

    def take(e: object = None) -> None:
        def got(jpeg: bytes) -> None:
            flow.add_photo(jpeg)

        shell.go(PHOTO, got=got)

    return ft.Row([ui.button(tr("flow.photo"), take, icon=ft.Icons.PHOTO_CAMERA, primary=False), count])


def photo_screen(shell: Navigator, got: Callable[[bytes], None]) -> ft.Control:
    tr = shell.ctx.tr
    shell.set_title(tr("flow.photo"))
    panel = CameraPanel()
    status = ui.note(tr("flow.photo_help"))

    async def shoot(e: object = None) -> None:
        jpeg = await panel.take_picture(as_seen=True)  # stored as evidence: never mirrored
        if jpeg is None:
            status.value = tr("scan.no_camera")
            shell.update()
            return
        got(jpeg)
        shell.back()

    async def start() -> None:
        if not await panel.start():
            status.value = tr("scan.no_camera")
            shell.update()

    shell.run_task(start)
    return ft.Column(
        [panel, status, ft.Row([ui.button(tr("flow.shoot"), shoot, icon=ft.Icons.CAMERA)])], spacing=12
    )


def _finish_button(
    shell: Navigator, label: str, flow: Any, error: ft.Text, then: Callable[[], None] | None = None
) -> ft.Control:
    """Sign and keep the record, back to Today (and on to `then`, a next step, if given)."""
    tr = shell.ctx.tr

    async def finish(e: object = None) -> None:
        try:
            result = await asyncio.to_thread(flow.finish)
        except Incomplete as exc:
            error.value = tr(str(exc.args[0]))
            shell.update()
            return
        events = result if isinstance(result, list) else [result]
        shell.go(TODAY, root=True)
        if then is not None:
            then()
        await shell.report_saved([e.id for e in events])  # sent, or kept on the phone: whichever is true

    return ft.Semantics(
        content=ui.button(label, finish, icon=ft.Icons.CHECK), identifier="finish", expand=True
    )


def pickup_screen(
    shell: Navigator, code: str, flow: PickupFlow | None = None, identified: Identified | None = None
) -> ft.Control:
    ctx, tr = shell.ctx, shell.ctx.tr
    shell.set_title(tr("pickup.title"))
    if flow is None:
        if identified is None:
            return _scan_first(shell, _row(shell, code))
        flow = PickupFlow(_row(shell, code), ctx.recorder(), identified=identified)
        shell.keep(flow=flow)  # rebuilding this screen (back from the photo) reuses the same flow
    row = flow.row
    error = ui.error_text()
    far = _distance_panel(shell, flow)
    items: list[ft.Control] = [_header(shell, row, flow.identified), _Location(shell, flow, far), far]
    if flow.institution:
        items.append(ui.note(tr("pickup.at_unit", name=flow.institution), size=17))
    if flow.from_citizen:
        items.append(ft.Text(tr("pickup.components"), size=17, weight=ft.FontWeight.W_600))
        for i, component in enumerate(flow.components):
            items.append(ft.Row([ui.Toggle(component, i in flow.checked, _toggler(flow, i))]))
        fee = ui.bound_field(tr("pickup.fee"), flow, "fee_text", digits=True)
        items.append(fee)
    name = ui.bound_field(
        tr("pickup.giver_citizen" if flow.from_citizen else "pickup.giver_clerk"), flow, "giver_name"
    )
    items.append(name)
    if flow.from_citizen:
        last4 = ui.bound_field(
            tr("flow.id_last4"), flow, "giver_id_last4", digits=True, max_length=4, strip=True
        )
        items.append(last4)
    items += [
        SignatureBox(flow.pad, tr, on_change=lambda: None),
        _photo_row(shell, flow),
        error,
        ft.Row([_finish_button(shell, tr("pickup.finish"), flow, error, then=_pages_after(shell, flow))]),
    ]
    return ui.form(items)


def _pages_after(shell: Navigator, flow: PickupFlow) -> Callable[[], None] | None:
    """A dossier taken from the citizen: its pages may be photographed now (or skipped)."""
    if not (flow.from_citizen and flow.row.a.kind == "submission"):
        return None
    code = flow.row.a.code
    return lambda: shell.go(pages_route(code))


def delivery_screen(
    shell: Navigator, code: str, flow: DeliveryFlow | None = None, identified: Identified | None = None
) -> ft.Control:
    ctx, tr = shell.ctx, shell.ctx.tr
    shell.set_title(tr("delivery.title"))
    if flow is None:
        if identified is None:
            return _scan_first(shell, _row(shell, code))
        flow = ctx.delivery_flow(_row(shell, code), identified)
        shell.keep(flow=flow)
    row = flow.row
    error = ui.error_text()
    pin_status = ui.note("")
    override_note = ui.bound_field(tr("mismatch.override_note"), flow, "override_note")
    override_note.visible = flow.override
    mismatch = ft.Column(spacing=6)
    last4 = ui.bound_field(tr("flow.id_last4"), flow, "id_last4", digits=True, max_length=4, strip=True)
    pin = ui.bound_field(
        tr("delivery.pin"), flow, "pin", digits=True, max_length=6, password=True, strip=True
    )
    proxy = ui.bound_field(tr("delivery.proxy_note"), flow, "proxy_note")

    async def check_pin(e: object = None) -> None:
        pin_status.value, pin_status.color = tr("sync.running"), None
        shell.update()
        status = await asyncio.to_thread(flow.check_pin)
        if status is None:
            pin_status.value, pin_status.color = tr(flow.missing()[0]) if flow.missing() else "", ui.LATE
        else:
            pin_status.value = tr(f"pin.{status}")
            pin_status.color = {"right": ui.OK, "offline": ui.SOON}.get(status, ui.LATE)
        shell.update()

    pin_box = ft.Column(
        [pin, ft.Row([ui.button(tr("delivery.pin_check"), check_pin, primary=False)]), pin_status], spacing=6
    )
    inputs: dict[str, ft.Control] = {"id_last4": last4, "pin": pin_box, "proxy": proxy}
    methods = ui.Segments(
        [(m, tr(f"identity.{m}")) for m in ("id_last4", "pin", "proxy")], flow.method, lambda m: use(m)
    )

    def render() -> None:
        for k, c in inputs.items():
            c.visible = k == flow.method
        methods.select(flow.method)
        showing = flow.method == "id_last4" and flow.id_mismatch
        mismatch.visible = showing
        override_note.visible = showing and flow.override

    def use(method: str) -> None:
        flow.method = method
        render()
        shell.update()

    def ask_again(e: object = None) -> None:
        flow.ask_again()
        last4.value = ""
        render()
        shell.update()

    def override(e: object = None) -> None:
        flow.override = True
        render()
        shell.update()

    def typed_last4(e: Any) -> None:
        flow.id_last4 = (last4.value or "").strip()
        if flow.id_mismatch:
            error.value = tr("flow.id_mismatch")
        elif error.value == tr("flow.id_mismatch"):
            error.value = ""
        render()
        shell.update()

    last4.on_change = typed_last4
    mismatch.controls = [
        ui.note(tr("flow.id_mismatch"), ui.LATE, size=17),
        ft.Row([ui.button(tr("mismatch.ask_again"), ask_again, icon=ft.Icons.REPLAY)]),
        ft.Row([ui.button(tr("mismatch.use_pin"), lambda e: use("pin"), primary=False)]),
        ft.Row([ui.button(tr("mismatch.proxy"), lambda e: use("proxy"), primary=False)]),
        ft.Row([ui.button(tr("mismatch.override"), override, primary=False, danger=True)]),
        override_note,
    ]
    render()
    far = _distance_panel(shell, flow)
    name = ui.bound_field(tr("delivery.receiver"), flow, "receiver_name")
    return ui.form(
        [
            _header(shell, row, flow.identified),
            _Location(shell, flow, far),
            far,
            ft.Text(tr("delivery.identity"), size=17, weight=ft.FontWeight.W_600),
            methods,
            last4,
            mismatch,
            pin_box,
            proxy,
            name,
            SignatureBox(flow.pad, tr, on_change=lambda: None),
            _photo_row(shell, flow),
            error,
            ft.Row([_finish_button(shell, tr("delivery.finish"), flow, error)]),
            ft.Row(
                [
                    ui.button(
                        tr("failed.open"),
                        lambda e: shell.replace(stop_route(row, "failed"), identified=flow.identified),
                        icon=ft.Icons.REPORT,
                        primary=False,
                        danger=True,
                    )
                ]
            ),
        ],
    )


def failed_screen(
    shell: Navigator, code: str, flow: FailedAttemptFlow | None = None, identified: Identified | None = None
) -> ft.Control:
    ctx, tr = shell.ctx, shell.ctx.tr
    shell.set_title(tr("failed.title"))
    if flow is None:
        if identified is None:
            return _scan_first(shell, _row(shell, code))
        flow = FailedAttemptFlow(_row(shell, code), ctx.recorder(), identified=identified)
        shell.keep(flow=flow)
    row = flow.row
    error = ui.error_text()
    note = ui.bound_field(tr("failed.note"), flow, "note")

    def pick(e: Any) -> None:
        flow.reason = e.control.value

    reasons = ft.RadioGroup(
        content=ft.Column(
            [
                ft.Radio(value=r, label=tr(f"reason.{r}"), label_style=ft.TextStyle(size=18))
                for r in FAILURE_REASONS
            ]
        ),
        value=flow.reason,
        on_change=pick,
    )

    def return_if_due() -> None:
        """The attempt just recorded was the third: the return, with the envelope still in hand."""
        after = ctx.today.row_for(row.a.code)
        if after is not None and after.must_return:
            shell.go(stop_route(after, "return"), identified=flow.identified)

    items: list[ft.Control] = [_header(shell, row, flow.identified)]
    if row.attempts:
        items.append(ui.note(tr("failed.before", n=row.attempts), ui.SOON, size=17))
    return ui.form(
        [
            *items,
            _Location(shell, flow),
            reasons,
            note,
            _photo_row(shell, flow),
            error,
            ft.Row([_finish_button(shell, tr("failed.finish"), flow, error, then=return_if_due)]),
        ],
    )


def return_screen(
    shell: Navigator, code: str, flow: ReturnFlow | None = None, identified: Identified | None = None
) -> ft.Control:
    """Three failed attempts: the envelope goes back, to the sender or the post office
    (PRODUCT.md lifecycle), signed for by whoever takes it; or, the courier choosing so,
    one more attempt."""
    ctx, tr = shell.ctx, shell.ctx.tr
    shell.set_title(tr("return.title"))
    if flow is None:
        if identified is None:
            return _scan_first(shell, _row(shell, code))
        flow = ReturnFlow(_row(shell, code), ctx.recorder(), identified=identified)
        shell.keep(flow=flow)
    row = flow.row
    kind = row.a.kind
    error = ui.error_text()
    name = ui.bound_field(tr("return.name"), flow, "receiver_name")
    unit = ui.bound_field(tr("return.unit"), flow, "receiver_unit")

    def pick(value: str) -> None:
        flow.to = value
        unit.visible = flow.receiver_role == "clerk"
        shell.update()

    unit.visible = flow.receiver_role == "clerk"
    where = ui.choices([(t, tr(f"return.to_{t}_{kind}")) for t in RETURN_TO], flow.to, pick)

    def once_more(e: object = None) -> None:
        shell.replace(stop_route(row, row.onward), identified=flow.identified)

    return ui.form(
        [
            _header(shell, row, flow.identified),
            ft.Container(
                ft.Text(
                    tr("return.why", n=row.attempts),
                    size=17,
                    weight=ft.FontWeight.W_600,
                    color=ft.Colors.WHITE,
                ),
                bgcolor=ui.LATE,
                padding=12,
                border_radius=8,
            ),
            ft.Text(tr("return.where"), size=17, weight=ft.FontWeight.W_600),
            where,
            name,
            unit,
            _Location(shell, flow),
            SignatureBox(flow.pad, tr, on_change=lambda: None),
            _photo_row(shell, flow),
            error,
            ft.Row([_finish_button(shell, tr("return.finish"), flow, error)]),
            ft.Row([ui.button(tr("return.once_more"), once_more, icon=ft.Icons.REPLAY, primary=False)]),
        ],
    )


def handover_screen(
    shell: Navigator,
    code: str | None = None,
    flow: HandoverFlow | None = None,
    identified: Identified | None = None,
) -> ft.Control:
    """Envelopes handed on to a clerk or another courier: the stop it was opened from
    (`code`, when its label was scanned: `identified`), then whatever else is scanned."""
    ctx, tr = shell.ctx, shell.ctx.tr
    shell.set_title(tr("handover.title"))
    if flow is None:
        flow = HandoverFlow(ctx.recorder())
        if code is not None and identified is not None:
            flow.add(_row(shell, code))
        shell.keep(flow=flow)
    error = ui.error_text()
    envelopes = ft.Column(spacing=4)

    def render_list() -> None:
        envelopes.controls = [
            ft.Row(
                [
                    ft.Text(
                        f"{group(r.a.code)} · {tr('handover.as.' + flow.event_type(r))}",
                        size=16,
                        expand=True,
                    ),
                    ui.icon_button(
                        ft.Icons.DELETE_OUTLINE, lambda e, c=r.a.code: remove(c), tr("handover.remove")
                    ),
                ]
            )
            for r in flow.rows
        ] or [ui.note(tr("handover.empty"))]

    def remove(code: str) -> None:
        flow.remove(code)
        render_list()
        shell.update()

    def scanned(code: str, identified: Identified) -> None:
        row = ctx.today.row_for(code)
        problem = flow.add(row) if row else "scan.not_assigned"
        shell.back()
        if problem:
            shell.toast(tr(problem), error=True)

    def scan_more(e: object = None) -> None:
        shell.go(SCAN, on_code=scanned, title_key="handover.scan")

    def pick(role: str) -> None:
        flow.receiver_role = role
        render_list()
        shell.update()

    receiver = ui.Segments([(r, tr(f"receiver.{r}")) for r in RECEIVERS], flow.receiver_role, pick)
    name = ui.bound_field(tr("handover.name"), flow, "receiver_name")
    unit = ui.bound_field(tr("handover.unit"), flow, "receiver_unit")
    render_list()
    return ui.form(
        [
            ui.note(tr("handover.help")),
            receiver,
            envelopes,
            ft.Row([ui.button(tr("handover.scan"), scan_more, icon=ft.Icons.QR_CODE_SCANNER, primary=False)]),
            name,
            unit,
            _Location(shell, flow),
            SignatureBox(flow.pad, tr, on_change=lambda: None),
            error,
            ft.Row([_finish_button(shell, tr("handover.finish"), flow, error)]),
        ],
    )


def counter_screen(shell: Navigator, id: str, flow: CounterHandoverFlow | None = None) -> ft.Control:
    """The clerk signed for a batch on the console: the courier checks the list and confirms."""
    ctx, tr = shell.ctx, shell.ctx.tr
    shell.set_title(tr("counter.title"))
    if flow is None:
        pending = next((h for h in ctx.today.handovers if str(h.id) == id), None)
        if pending is None:
            raise LookupError(f"no handover {id} waits for this phone")
        flow = CounterHandoverFlow.for_pending(ctx.recorder(), pending, ctx.today)
        shell.keep(flow=flow)
    pending = flow.pending
    error = ui.error_text()
    envelopes = [ft.Text(f"{group(r.a.code)} · {r.stop.contact_name}", size=16) for r in flow.rows]
    return ui.form(
        [
            ui.note(tr("counter.help", name=pending.counterparty["name"])),
            *envelopes,
            _Location(shell, flow),
            error,
            ft.Row([_finish_button(shell, tr("counter.finish", n=len(flow.rows)), flow, error)]),
        ],
    )
