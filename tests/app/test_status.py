"""Issue 19 item 7, honest status, in the real Shell (no Flet client) against a real
`hoso serve`: the "saved on the phone" toast only when the record stayed on the phone, the
offline banner as soon as the server is unreachable (probe or failed request) and gone
when it answers, and the GPS asked again after a restart once the screen is up."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import flet as ft
import pytest

from bench._harness import Server
from courier_app.context import AppContext
from courier_app.flows.custody import SCANNED, PickupFlow
from courier_app.link import Link
from courier_app.main import routes
from courier_app.ports import Fix
from courier_app.views import screens
from courier_app.views.shell import Shell
from shared.timeutil import utcnow
from tests.app.test_flows import CITIZEN, _context, _register, _row, _sign
from tests.app.test_views import PageWithoutClient


@pytest.fixture(scope="module")
def server():
    with Server("sqlite") as srv:
        yield srv


def _texts(page: PageWithoutClient) -> list[str]:
    return [str(d.content.value) for d in page.dialogs if isinstance(d, ft.SnackBar)]


def _shell(ctx: AppContext) -> tuple[Shell, PageWithoutClient]:
    page = PageWithoutClient()
    shell = Shell(page, ctx, routes())
    shell.go("/today", root=True)
    return shell, page


def _record(ctx: AppContext, code: str) -> str:
    flow = PickupFlow(_row(ctx, code), ctx.recorder(), identified=SCANNED)
    flow.toggle(0)
    flow.giver_id_last4 = "1357"
    _sign(flow.pad)
    return flow.finish().id


def test_the_toast_says_sent_when_the_sync_succeeded_and_kept_when_it_did_not(server, tmp_path):
    a, b = _register(server, "submission")["code"], _register(server, "submission")["code"]
    ctx = _context(server, tmp_path)
    shell, page = _shell(ctx)
    sent = _record(ctx, a)
    asyncio.run(shell.report_saved([sent]))
    assert _texts(page) == ["Đã gửi 1 bản ghi lên máy chủ."]  # not "saved on the phone, not sent"
    assert ctx.outbox.states([sent]) == {sent: "acked"} and not shell.banner.visible

    server.stop()
    try:
        kept = _record(ctx, b)
        asyncio.run(shell.report_saved([kept]))  # the sync after the record fails
        assert _texts(page)[-1] == "Đã lưu 1 bản ghi trên máy này, chưa gửi. Sẽ tự gửi khi có mạng."
        assert ctx.outbox.states([kept]) == {kept: "pending"}
        assert shell.banner.visible  # the failed request put the banner up at once
        asyncio.run(shell.report_saved([kept]))  # link down: no sync tried, the same truth
        assert _texts(page)[-1].startswith("Đã lưu 1 bản ghi")
    finally:
        server.start()
    ctx.close()


def test_the_offline_banner_follows_the_probe(server, tmp_path):
    ctx = _context(server, tmp_path)
    shell, _ = _shell(ctx)
    assert ctx.probe() and ctx.link.online is True
    shell.show_link()
    assert not shell.banner.visible and not ctx.link.due()  # just heard from it: no probe needed
    server.stop()
    try:
        assert not ctx.probe()  # nothing tapped: the periodic probe alone finds it gone
        shell.show_link()
        assert shell.banner.visible and ctx.link.down and ctx.link.due()
        shell.go("/sync")  # on every screen, not only Today
        assert shell.banner.visible and shell.banner in shell.page.views[-1].controls
        assert "Mất kết nối máy chủ" in shell.banner.content.controls[1].value
    finally:
        server.start()
    assert ctx.probe()
    shell.show_link()
    assert not shell.banner.visible  # gone as soon as the server answers
    ctx.close()


def test_link_probes_rarely_while_requests_keep_coming():
    now = [100.0]
    link = Link(clock=lambda: now[0])
    assert link.online is None and link.due()
    link.heard(True)
    assert not link.due() and link.changes == 1
    now[0] += 11
    assert link.due()
    link.heard(False)
    link.heard(False)
    assert link.down and link.due() and link.changes == 2 and link.wait_s() < 5


class SlowToStartGps:
    """The geolocator as a restarted app meets it: no fix until the screen has been shown."""

    def __init__(self, shell_ref: list[Shell]) -> None:
        self.shell_ref, self.asked_on = shell_ref, []

    async def locate(self) -> Fix | None:
        shell = self.shell_ref[0]
        shown = [e.route for e in shell.stack]
        self.asked_on.append(shown)
        if not shown:
            return None  # before the first page update: the service is not there yet
        return Fix(CITIZEN["lat"] + 0.001, CITIZEN["lon"], 5.0, utcnow())


def test_gps_is_asked_once_today_is_on_screen_after_a_restart(server, tmp_path: Path):
    code = _register(server, "submission")["code"]
    _context(server, tmp_path).close()  # signed in once, then the app was closed
    ref: list[Shell] = []
    gps = SlowToStartGps(ref)
    again = AppContext(tmp_path / "phone", server.base, lambda: datetime.now(UTC), gps)
    assert again.resume_session()
    shell = Shell(PageWithoutClient(), again, routes())
    ref.append(shell)
    asyncio.run(screens.open_today(shell, refresh=True))
    assert gps.asked_on == [["/today"]]  # asked after Today was up, not before
    assert again.today.position is not None
    row = _row(again, code)
    assert row.distance_m is not None and 100 < row.distance_m < 130  # a distance, not "—"
    # and while Today has no fix, the shell asks again (the link loop does, every 20 s)
    again.today.position = None
    shell._gps_asked = float("-inf")
    asyncio.run(shell.locate())
    assert again.today.position is not None
    again.close()
