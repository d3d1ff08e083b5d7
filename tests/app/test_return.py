"""Issue 19 item 5 against a real `hoso serve`: after three failed delivery attempts (the
server's and this phone's unsynced ones together) the app prompts the return — Today's
card says so, the third failed attempt leads straight to it, and the `returned` event
says where the envelope went — and the console board shows such shipments."""

from __future__ import annotations

import asyncio
import re

import flet as ft
import pytest

from bench._harness import Server
from courier_app.flows.custody import SCANNED, FailedAttemptFlow, Incomplete, PickupFlow, ReturnFlow
from courier_app.main import routes
from courier_app.views.shell import Shell
from tests.app.test_flows import _context, _register, _row, _server_events, _sign
from tests.app.test_status import _texts as toasts
from tests.app.test_views import PageWithoutClient, _texts

KEY = re.compile(r"^[a-z_]+\.[a-z_0-9]+$")


@pytest.fixture(scope="module")
def server():
    with Server("sqlite") as srv:
        yield srv


def _result_in_custody(server, ctx) -> str:
    code = _register(server, "result")["code"]
    ctx.today.refresh()
    pickup = PickupFlow(_row(ctx, code), ctx.recorder(), giver_name="Phạm Minh Tuấn", identified=SCANNED)
    _sign(pickup.pad)
    pickup.set_fix(None)
    pickup.finish()
    return code


def _fail(ctx, code: str) -> None:
    FailedAttemptFlow(_row(ctx, code), ctx.recorder(), reason="not_home", identified=SCANNED).finish()


def _finish_button(control: ft.Control) -> ft.Control:
    """The screen's "finish" button (inside its Semantics(identifier="finish"))."""
    found: list[ft.Control] = []

    def walk(c: object) -> None:
        if isinstance(c, ft.Semantics) and c.identifier == "finish":
            found.append(c.content)
        for name in ("content", "controls"):
            sub = getattr(c, name, None)
            for x in sub if isinstance(sub, list) else [sub]:
                if isinstance(x, ft.BaseControl):
                    walk(x)

    walk(control)
    return found[0]


def test_the_third_failed_attempt_leads_to_the_return(server, tmp_path):
    ctx = _context(server, tmp_path)
    code = _result_in_custody(server, ctx)
    _fail(ctx, code)
    _fail(ctx, code)
    assert ctx.sync_now() is not None and ctx.outbox.waiting() == 0
    ctx.today.refresh()
    row = _row(ctx, code)
    assert (row.attempts, row.action) == (2, "delivery")  # two: deliver again

    page = PageWithoutClient()
    shell = Shell(page, ctx, routes())
    shell.go("/today", root=True)
    shell.go(f"/stop/{code}/failed", identified=SCANNED)
    assert "Đã phát không thành công 2 lần trước đây." in _texts(shell.content)
    flow = shell.stack[-1].state["flow"]
    flow.reason = "not_home"
    server.stop()  # the third attempt offline: the phone counts its own unsynced attempt too
    try:
        asyncio.run(_finish_button(shell.content).on_click(None))
        assert [v.route for v in page.views] == ["/today", f"/stop/{code}/return"]  # prompted at once
        assert toasts(page)[-1].startswith("Đã lưu 1 bản ghi")
        row = _row(ctx, code)
        assert (row.attempts, row.action, row.unsynced) == (3, "return", 1)
        screen = " ".join(_texts(shell.content))
        assert "Đã phát không thành công 3 lần" in screen and "Trả về nơi gửi (Bộ phận Một cửa)" in screen
        assert "Trả về bưu cục" in screen and "Phát thêm một lần" in screen
        shell.go("/today", root=True)  # Today's card says it too
        today = " ".join(_texts(shell.content))
        assert "Hoàn trả" in today and "3 lần phát không thành công" in today
    finally:
        server.start()
    ctx.close()


def test_the_return_is_signed_for_and_says_where_it_went(server, tmp_path):
    ctx = _context(server, tmp_path)
    code = _result_in_custody(server, ctx)
    for _ in range(3):
        _fail(ctx, code)
    row = _row(ctx, code)
    assert row.must_return and row.action == "return"
    flow = ReturnFlow(row, ctx.recorder(), identified=SCANNED)
    assert flow.missing() == ["return.to_missing", "flow.name_missing", "sign.empty"]
    with pytest.raises(Incomplete):
        flow.finish()
    flow.to = "sender"
    flow.receiver_name = "Lê Thị Thu"
    flow.receiver_unit = "TTHCC-GL"
    _sign(flow.pad)
    event = flow.finish()
    assert event.type == "returned" and event.data["return_to"] == "sender" and event.data["attempts"] == 3
    assert event.counterparty.role == "clerk" and event.counterparty.name == "Lê Thị Thu"
    report = ctx.sync_now()
    assert report is not None and (report.accepted, report.rejected) == (5, 0)
    ship = _server_events(server, code)
    assert ship["state"] == "returned" and ship["attempts"] == 3
    ctx.today.refresh()
    row = ctx.today.row_for(code)
    assert row is None or row.done  # off the route: final

    # the other way: "once more" from the return screen opens the delivery, same envelope
    other = _result_in_custody(server, ctx)
    for _ in range(3):
        _fail(ctx, other)
    shell = Shell(PageWithoutClient(), ctx, routes())
    shell.go("/today", root=True)
    for lang in ("vi", "en"):
        ctx.lang = lang
        shell.go(f"/stop/{other}/return", identified=SCANNED)
        assert [t for t in _texts(shell.content) if KEY.match(t)] == []  # translated
    ctx.lang = "vi"
    shell.stack[-1].state["flow"].to = "sender"
    unscanned = Shell(PageWithoutClient(), ctx, routes())
    unscanned.go(f"/stop/{other}/return")
    assert "Họ tên người nhận lại" not in " ".join(_texts(unscanned.content))  # no form before the scan
    ctx.close()


def test_a_submission_returned_to_the_citizen_is_signed_by_the_citizen(server, tmp_path):
    ctx = _context(server, tmp_path)
    code = _register(server, "submission")["code"]
    ctx.today.refresh()
    pickup = PickupFlow(_row(ctx, code), ctx.recorder(), identified=SCANNED)
    pickup.toggle(0)
    pickup.giver_id_last4 = "1357"
    _sign(pickup.pad)
    pickup.finish()
    for _ in range(3):
        _fail(ctx, code)
    flow = ReturnFlow(_row(ctx, code), ctx.recorder(), identified=SCANNED, to="sender")
    flow.receiver_name = "Đặng Thị Hạnh"
    flow.receiver_unit = "ignored for a citizen"
    _sign(flow.pad)
    event = flow.finish()
    assert event.counterparty.role == "citizen" and not isinstance(event.counterparty.unit, str)
    assert ctx.sync_now().rejected == 0 and _server_events(server, code)["state"] == "returned"
    ctx.close()
