"""Pages photographed at the pickup, flow-level (courier_app/flows/pages.py) against a real
`hoso serve`: each photo judged on the phone, kept as a draft at once, queued on "done",
uploaded by sync once the pickup is acknowledged, and signed by the server as `digitised`;
a batch behind a later record (a handover already queued) is refused: the counter scans it."""

from __future__ import annotations

import pytest

from courier_app.flows.custody import HandoverFlow, Incomplete
from courier_app.flows.pages import CaptureFlow
from courier_app.outbox import Outbox
from courier_app.views.navigation import PAGES, pages_route
from shared.pages import MIN_SHARPNESS
from tests.app.test_flows import _context, _pick_up, _register, _row, _server_events, _sign, server
from tests.pages_fixture import blurred, dark, jpeg, page_image

__all__ = ["server"]  # the module-scoped `hoso serve` of test_flows


def test_pages_are_judged_on_the_phone_kept_and_signed_by_the_server(server, tmp_path):
    sub = _register(server, "submission")
    ctx = _context(server, tmp_path)
    code = sub["code"]
    flow = CaptureFlow(ctx.outbox, code, ctx.tr)
    assert flow.pickup_id is None  # no pickup on this phone yet: nothing to go with
    _pick_up(ctx, code)
    assert flow.pickup_id is not None
    flow = CaptureFlow(ctx.outbox, code, ctx.tr)  # the screen opened right after the pickup
    assert ctx.outbox.open_captures() == [(code, 0)]  # Today offers to go on

    first = flow.take(jpeg(page_image(1)))
    assert first.ok and first.n == 1 and first.message.startswith("Trang 1 đạt — độ nét ")
    bad = flow.take(jpeg(blurred(page_image(2))))
    assert not bad.ok and bad.n == 2
    assert bad.message == f"Trang 2 chưa đạt: mờ — độ nét {bad.sharpness} (cần {MIN_SHARPNESS}). Chụp lại."
    assert bad.message.count("mờ") == 1  # the reason once, not the server's two-language sentence
    dim = flow.take(jpeg(dark(page_image(2))))
    assert not dim.ok and "quá tối — độ sáng" in dim.message
    assert len(flow.pages) == 1

    # the app is closed between pages: the kept page is still there when the screen reopens
    again = CaptureFlow(Outbox(tmp_path / "phone" / "outbox.db"), code, ctx.tr)
    assert [p.n for p in again.pages] == [1]
    assert flow.take(jpeg(page_image(2))).ok and len(flow.pages) == 2
    assert flow.thumbnail(flow.pages[0])[:3] == b"\xff\xd8\xff"

    assert ctx.outbox.open_captures() == [(code, 2)]
    flow.finish()
    assert ctx.outbox.page_drafts(code) == [] and [b.pages for b in ctx.outbox.page_batches()] == [2]
    assert ctx.outbox.open_captures() == []
    report = ctx.sync_now()
    assert report is not None and (report.accepted, report.pages_sent) == (1, 1), report
    detail = _server_events(server, code)
    assert [e["event"]["type"] for e in detail["events"]] == ["registered", "picked_up", "digitised"]
    digitised = detail["events"][-1]["event"]
    assert [p["sha256"] for p in digitised["data"]["pages"]["pages"]] == [p.sha256 for p in flow.pages]
    assert [b.state for b in ctx.outbox.page_batches()] == ["sent"]

    # the phone's next record links to the server's `digitised` event, and is accepted
    ctx.today.refresh()
    assert _row(ctx, code).head == digitised["hash"]
    handover = HandoverFlow(ctx.recorder(), receiver_name="Phạm Minh Tuấn", receiver_unit="TTHCC-GL")
    assert handover.add(_row(ctx, code)) is None
    _sign(handover.pad)
    handover.finish()
    report = ctx.sync_now()
    assert report is not None and (report.accepted, report.rejected) == (1, 0), ctx.outbox.rejected()
    assert _server_events(server, code)["events"][-1]["event"]["prev"] == digitised["hash"]


def test_a_batch_behind_a_handover_already_queued_is_refused_the_counter_scans_it(server, tmp_path):
    sub = _register(server, "submission")
    ctx = _context(server, tmp_path)
    code = sub["code"]
    _pick_up(ctx, code)
    flow = CaptureFlow(ctx.outbox, code, ctx.tr)
    assert flow.take(jpeg(page_image(1))).ok
    flow.finish()
    # offline, the courier hands the dossier to the shop before the pages could be sent
    handover = HandoverFlow(ctx.recorder(), receiver_name="Phạm Minh Tuấn", receiver_unit="TTHCC-GL")
    handover.add(_row(ctx, code))
    _sign(handover.pad)
    handover.finish()
    report = ctx.sync_now()
    assert report is not None and (report.accepted, report.pages_refused) == (2, 1), report
    [batch] = ctx.outbox.page_batches()
    assert batch.state == "rejected" and "the counter scans its pages instead" in (batch.reason or "")
    assert [e["event"]["type"] for e in _server_events(server, code)["events"]] == [
        "registered",
        "picked_up",
        "delivered",
    ]
    assert ctx.sync_now() is not None and ctx.outbox.page_batches("pending") == []  # never retried


def test_skip_and_nothing_to_finish(server, tmp_path):
    sub = _register(server, "submission")
    ctx = _context(server, tmp_path)
    _pick_up(ctx, sub["code"])
    flow = CaptureFlow(ctx.outbox, sub["code"], ctx.tr)
    with pytest.raises(Incomplete, match=r"capture\.none"):
        flow.finish()
    assert flow.take(jpeg(page_image(1))).ok
    flow.skip()
    assert ctx.outbox.page_drafts(sub["code"]) == [] and ctx.outbox.page_batches() == []
    assert ctx.outbox.open_captures() == []
    assert pages_route(sub["code"]) == PAGES.replace(":code", sub["code"])
