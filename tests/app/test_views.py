"""Every courier screen built in pure Python (no Flet client), in both languages, opened by
its route through the real Shell and route table: each one renders its flow, and no text
on it is a bare i18n key (a missing translation)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import flet as ft
import msgspec
import pytest

from courier_app.context import AppContext
from courier_app.flows.custody import SCANNED, Identified
from courier_app.main import routes
from courier_app.session import Session
from courier_app.views import ui
from courier_app.views.navigation import Navigator
from courier_app.views.shell import Shell, Surface
from shared.api import Assignment, AssignmentList, EventResult, PendingHandover
from shared.crypto import SigningKey
from shared.events import new_event_id, sign_event

KEY = re.compile(r"^[a-z_]+\.[a-z_0-9]+$")  # what t() returns for a key it does not know


class NoGps:
    async def locate(self):
        return None


class PageWithoutClient:
    """An `ft.Page` as far as the Shell draws on it, with no Flutter client behind it."""

    def __init__(self) -> None:
        self.views: list[ft.View] = [ft.View()]
        self.tasks: list[object] = []
        self.dialogs: list[ft.DialogControl] = []

    def run_task(self, handler):  # the screen's camera loop or GPS: not run without a client
        self.tasks.append(handler)

    def update(self, *controls: ft.Control) -> None:
        pass

    def show_dialog(self, dialog: ft.DialogControl) -> None:
        self.dialogs.append(dialog)


def _assignment(code: str, kind: str, state: str) -> Assignment:
    return msgspec.convert(
        {
            "code": code,
            "kind": kind,
            "state": state,
            "head": "ab" * 32,
            "due_at": (datetime.now(UTC) + timedelta(hours=5)).isoformat(),
            "attempts": 0,
            "dossier_ref": "HS-1",
            "procedure": "Đăng ký khai sinh",
            "fee_vnd": 8000,
            "components": ["Tờ khai", "Giấy chứng sinh"],
            "recipient_id_last4_known": True,
            "stop": {
                "kind": "pickup" if state == "registered" else "delivery",
                "lat": 13.98,
                "lon": 108.0,
                "address": "1 Lê Lợi",
                "commune": "Phường Pleiku",
                "province": "Tỉnh Gia Lai",
                "contact_name": "Nguyễn Văn A",
                "contact_phone": None,
            },
            "label_sig": "x",
            "overdue": False,
            "next_events": [],
        },
        Assignment,
        strict=False,
    )


def _texts(control: object) -> list[str]:
    """Every string a courier would read on the screen."""
    out: list[str] = []
    seen: set[int] = set()

    def walk(c: object) -> None:
        if id(c) in seen or c is None:
            return
        seen.add(id(c))
        if isinstance(c, str):
            out.append(c)
            return
        if isinstance(c, list | tuple):
            for x in c:
                walk(x)
            return
        if not isinstance(c, ft.BaseControl):
            return
        for name in ("value", "label", "text", "hint_text", "tooltip", "content", "controls", "segments"):
            walk(getattr(c, name, None))
        for name in ("leading", "title", "actions"):
            walk(getattr(c, name, None))

    walk(control)
    return [t for t in out if t]


@pytest.fixture
def shell(tmp_path: Path):
    ctx = AppContext(tmp_path / "phone", "http://127.0.0.1:9", lambda: datetime.now(UTC), NoGps())
    ctx.sessions.current = Session("http://127.0.0.1:9", "t", 4e9, 7, "courier", "Nguyễn Văn Hùng", "k", "k")
    ctx.today.data = AssignmentList(
        items=[
            _assignment("1000000000009", "submission", "registered"),
            _assignment("2000000000009", "result", "in_custody"),
            _assignment("3000000000009", "submission", "in_custody"),
        ],
        label_public_key="k",
        event_public_key="k",
    )
    ctx.today.handovers = [
        PendingHandover(
            id=1,
            codes=["3000000000009"],
            counterparty={"name": "Phạm Minh Tuấn", "role": "clerk"},
            signature="cd" * 32,
            strokes=None,
            created_at=datetime.now(UTC),
        )
    ]
    key = SigningKey.generate()
    refused = sign_event(
        key,
        id=new_event_id(),
        shipment="2000000000009",
        type="delivery_failed",
        occurred_at="2026-11-23T03:04:05.123Z",
        actor="courier:7",
        prev="ab" * 32,
        data={"reason": "not_home", "no_fix_reason": "gps off"},
    )
    ctx.outbox.put(refused)
    ctx.outbox.acknowledge([EventResult(refused.id, "rejected", "unknown shipment 2000000000009")])
    picked = sign_event(  # this phone's pickup of 3000000000009: its pages may be photographed
        key,
        id=new_event_id(),
        shipment="3000000000009",
        type="picked_up",
        occurred_at="2026-11-23T03:04:05.123Z",
        actor="courier:7",
        prev="cd" * 32,
        data={"no_fix_reason": "gps off"},
    )
    ctx.outbox.put(picked)
    page: Surface = PageWithoutClient()
    nav = Shell(page, ctx, routes())
    nav.go("/today", root=True)
    yield nav
    ctx.close()


def _open(shell: Shell, route: str, **state: object) -> ft.Control:
    shell.go(route, **state)
    assert shell.content is not None and shell.page.views[-1].route == route
    return shell.content


@pytest.mark.parametrize("lang", ["vi", "en"])
def test_every_screen_builds_and_is_translated(shell: Shell, lang: str) -> None:
    shell.ctx.lang = lang
    built = {
        "login": _open(shell, "/login"),
        "login-expired": _open(shell, "/login", expired=True),
        "today": _open(shell, "/today"),
        "scan": _open(shell, "/scan", on_code=lambda code, how: None),
        "stop-scan": _open(shell, "/stop/1000000000009/scan"),
        "sync": _open(shell, "/sync"),
        "pickup-unscanned": _open(shell, "/stop/1000000000009/pickup"),
        "pickup": _open(shell, "/stop/1000000000009/pickup", identified=SCANNED),
        "delivery": _open(shell, "/stop/2000000000009/delivery", identified=SCANNED),
        "failed": _open(shell, "/stop/2000000000009/failed", identified=Identified("typed", "no_label")),
        "handover": _open(shell, "/stop/3000000000009/handover", identified=SCANNED),
        "counter": _open(shell, "/counter/1"),
        "photo": _open(shell, "/photo", got=lambda jpeg: None),
        "pages": _open(shell, "/stop/3000000000009/pages"),
        "pages-no-pickup": _open(shell, "/stop/1000000000009/pages"),
    }
    assert shell.routes.templates() and len(shell.page.views) == len(built) + 1  # a stack of views
    for name, control in built.items():
        texts = _texts(control)
        assert texts, name
        untranslated = [t for t in texts if KEY.match(t)]
        assert untranslated == [], (name, untranslated)
    today = " ".join(_texts(built["today"]))
    assert "Nguyễn Văn A" in today and ("1000 0000 0000 9" in today or "1000 0000 00009" in today)
    assert ("Phạm Minh Tuấn" in today) and shell.title.value
    assert any("Tờ khai" in t for t in _texts(built["pickup"]))
    assert not any("Tờ khai" in t for t in _texts(built["pickup-unscanned"]))  # no form before the scan
    assert "Đã quét tem bì thư" in _texts(built["pickup"]) or "Envelope label scanned" in _texts(
        built["pickup"]
    )  # says how it was identified
    pages = " ".join(_texts(built["pages"]))
    assert ("Bỏ qua — quầy sẽ quét sau" in pages and "Xong (0 trang)" in pages) or "Skip" in pages
    assert "quầy sẽ quét" in " ".join(_texts(built["pages-no-pickup"])) or lang == "en"
    sync = " ".join(_texts(built["sync"]))
    assert "unknown shipment 2000000000009" in sync and (
        "Máy chủ không biết" in sync or "does not know" in sync
    )


def test_screens_open_each_other_by_route_and_back_keeps_the_form(shell: Shell) -> None:
    nav: Navigator = shell  # what screens are given: the Protocol, satisfied by the real Shell
    nav.go("/stop/1000000000009/pickup", identified=SCANNED)
    pickup = shell.content
    flow = shell.stack[-1].state["flow"]
    flow.giver_name = "Trần Văn B"
    nav.go("/photo", got=flow.add_photo)
    shell.stack[-1].state["got"](b"jpeg")
    nav.back()  # the photo screen gives way to the same pickup, rebuilt around the same flow
    assert shell.content is not pickup and shell.stack[-1].state["flow"] is flow
    assert "Trần Văn B" in _texts(shell.content) and len(flow.photos) == 1
    shell.view_popped(
        ft.ViewPopEvent(route="/stop/1000000000009/pickup", name="view_pop", control=shell.page)
    )
    assert [v.route for v in shell.page.views] == ["/today"]
    shell.route_changed(ft.RouteChangeEvent(route="/sync", name="route_change", control=shell.page))
    assert [v.route for v in shell.page.views] == ["/today", "/sync"]
    shell.route_changed(ft.RouteChangeEvent(route="/today", name="route_change", control=shell.page))
    assert [v.route for v in shell.page.views] == ["/today"]
    shell.route_changed(ft.RouteChangeEvent(route="/no/such/screen", name="route_change", control=shell.page))
    assert [v.route for v in shell.page.views] == ["/today"]
    shell.route_changed(ft.RouteChangeEvent(route="/stop/9/pickup", name="route_change", control=shell.page))
    assert [v.route for v in shell.page.views] == ["/today"] and len(shell.stack) == 1  # not on the list


def test_delivery_identity_switch_shows_one_field_at_a_time(shell: Shell) -> None:
    view = _open(shell, "/stop/2000000000009/delivery", identified=SCANNED)
    assert isinstance(view, ft.Column)
    fields = [c for c in view.controls if isinstance(c, ft.TextField)]
    fields += [
        f
        for c in view.controls
        if isinstance(c, ft.Column)
        for f in c.controls
        if isinstance(f, ft.TextField)
    ]
    parent = {id(f): c for c in view.controls if isinstance(c, ft.Column) for f in c.controls}
    segmented = next(c for c in view.controls if isinstance(c, ui.Segments))
    visible = lambda: [  # noqa: E731
        f.label for f in fields if f.visible and getattr(parent.get(id(f)), "visible", True)
    ]
    assert "4 số cuối CCCD" in visible() and "Mã PIN 6 số của người nhận" not in visible()

    segmented.picked("pin")  # what a tap on the PIN segment does
    assert "Mã PIN 6 số của người nhận" in visible() and "4 số cuối CCCD" not in visible()


def test_tapping_a_stop_opens_its_scan_and_the_scan_opens_its_form(shell: Shell) -> None:
    from courier_app.views.screens import _scanned

    shell.go("/today", root=True)
    shell.go("/stop/3000000000009/scan")  # what a tap on a Today card opens
    assert "Quét tem trên bì thư đang cầm" in " ".join(_texts(shell.content))
    _scanned(shell, "3000000000009", SCANNED)  # the label read: that stop's form, in place of the scan
    assert [v.route for v in shell.page.views][-1] == "/stop/3000000000009/handover"
    assert [r.a.code for r in shell.stack[-1].state["flow"].rows] == ["3000000000009"]
    shell.go("/stop/1000000000009/scan")
    _scanned(shell, "1000000000009", Identified("typed", "label_damaged"))
    assert shell.stack[-1].state["flow"].identified == Identified("typed", "label_damaged")
