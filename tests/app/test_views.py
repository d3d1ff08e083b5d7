"""Every courier screen built in pure Python (no Flet client), in both languages: each one
renders its flow, and no text on it is a bare i18n key (a missing translation)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import flet as ft
import msgspec
import pytest

from courier_app.context import AppContext
from courier_app.flows.login import Session
from courier_app.flows.today import Assignment
from courier_app.views import forms, screens

KEY = re.compile(r"^[a-z_]+\.[a-z_0-9]+$")  # what t() returns for a key it does not know


class NoGps:
    async def locate(self):
        return None


class FakePage:
    def __init__(self) -> None:
        self.tasks: list[object] = []

    def run_task(self, fn, *args):  # the screen's camera loop or GPS: not run without a client
        self.tasks.append(fn)

    def update(self) -> None:
        pass

    def show_dialog(self, dialog) -> None:
        pass


class FakeShell:
    """The parts of views.shell.Shell that screens use, without a page session."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.page = FakePage()
        self.stack: list = [None]
        self.title = ""
        self.body = ft.Container()

    def set_title(self, text: str) -> None:
        self.title = text

    def show(self, build, *, root: bool = False) -> None:
        self.stack.append(build)

    def back(self) -> None:
        self.stack.pop()

    def replace(self, build) -> None:
        self.stack[-1] = build

    def toast(self, text: str, *, error: bool = False) -> None:
        pass

    def open_sync(self) -> None:
        pass

    def wake_sync(self) -> None:
        pass


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
            },
            "label_sig": "x",
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
    ctx.session = Session("http://127.0.0.1:9", "t", 4e9, 7, "courier", "Nguyễn Văn Hùng", "k", "k")
    from courier_app.flows.today import AssignmentList

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
        {
            "id": 1,
            "codes": ["3000000000009"],
            "counterparty": {"name": "Phạm Minh Tuấn", "role": "clerk"},
            "signature": "cd" * 32,
            "strokes": None,
        }
    ]
    from shared.crypto import SigningKey
    from shared.events import new_event_id, sign_event

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
    ctx.outbox.acknowledge(
        [{"id": refused.id, "status": "rejected", "reason": "unknown shipment 2000000000009"}]
    )
    yield FakeShell(ctx)
    ctx.close()


@pytest.mark.parametrize("lang", ["vi", "en"])
def test_every_screen_builds_and_is_translated(shell, lang):
    shell.ctx.lang = lang
    rows = {r.a.code: r for r in shell.ctx.today.rows()}
    pickup, delivery, handover = rows["1000000000009"], rows["2000000000009"], rows["3000000000009"]
    built = {
        "login": screens.login_screen(shell),
        "login-expired": screens.login_screen(shell, expired=True),
        "today": screens.today_screen(shell),
        "scan": screens.scan_screen(shell, on_code=lambda code: None),
        "sync": screens.sync_screen(shell),
        "pickup": forms.pickup_screen(shell, pickup),
        "delivery": forms.delivery_screen(shell, delivery),
        "failed": forms.failed_screen(shell, delivery),
        "handover": forms.handover_screen(shell, [handover]),
        "counter": forms.counter_screen(shell, shell.ctx.today.handovers[0]),
        "photo": forms.photo_screen(shell, lambda jpeg: None),
    }
    for name, control in built.items():
        texts = _texts(control)
        assert texts, name
        untranslated = [t for t in texts if KEY.match(t)]
        assert untranslated == [], (name, untranslated)
    today = " ".join(_texts(built["today"]))
    assert "Nguyễn Văn A" in today and ("1000 0000 0000 9" in today or "1000 0000 00009" in today)
    assert ("Phạm Minh Tuấn" in today) and shell.title
    assert any("Tờ khai" in t for t in _texts(built["pickup"]))
    sync = " ".join(_texts(built["sync"]))
    assert "unknown shipment 2000000000009" in sync and (
        "Máy chủ không biết" in sync or "does not know" in sync
    )


def test_delivery_identity_switch_shows_one_field_at_a_time(shell):
    row = next(r for r in shell.ctx.today.rows() if r.a.code == "2000000000009")
    view = forms.delivery_screen(shell, row)
    fields = [c for c in view.controls if isinstance(c, ft.TextField)]
    segmented = next(c for c in view.controls if isinstance(c, ft.SegmentedButton))
    visible = lambda: [f.label for f in fields if f.visible]  # noqa: E731
    assert "4 số cuối CCCD" in visible() and "Mã PIN 6 số của người nhận" not in visible()

    class Change:
        control = segmented

    segmented.selected = ["pin"]
    segmented.on_change(Change())
    assert "Mã PIN 6 số của người nhận" in visible() and "4 số cuối CCCD" not in visible()
