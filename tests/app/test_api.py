"""The app's ApiClient without a server: what each HTTP answer becomes for the flows."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import msgspec
import pytest

from courier_app.api import (
    ApiClient,
    DeviceTaken,
    Refused,
    ServerError,
    ServerUnavailable,
    TokenExpired,
    WrongPassword,
)
from courier_app.outbox import Outbox
from courier_app.sync import Syncer
from shared import api
from shared.api import PendingHandover, PendingHandovers
from shared.crypto import SigningKey
from shared.events import new_event_id, sign_event


def _client(answer: httpx.Response | Exception, seen: list[httpx.Request] | None = None) -> ApiClient:
    def handle(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        if isinstance(answer, Exception):
            raise answer
        return answer

    http = httpx.Client(base_url="http://server.test", transport=httpx.MockTransport(handle))
    return ApiClient(http, lambda: "tok")


def test_answers_decode_into_the_shared_structs_with_the_token_sent():
    handover = PendingHandover(
        1, ["1000000000009"], {"name": "A", "role": "clerk"}, "ab" * 32, None, datetime.now(UTC)
    )
    seen: list[httpx.Request] = []
    client = _client(httpx.Response(200, content=msgspec.json.encode(PendingHandovers([handover]))), seen)
    assert client.handovers() == [handover]
    assert seen[0].url.path == api.HANDOVERS and seen[0].headers["authorization"] == "Bearer tok"


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (httpx.Response(401, json={"detail": "expired"}), TokenExpired),
        (httpx.Response(503), ServerError),
        (httpx.Response(200, json={"items": "not a list"}), ServerError),
        (httpx.ConnectError("no route to host"), ServerUnavailable),
        (httpx.Response(403, json={"detail": "couriers only"}), Refused),
    ],
)
def test_http_failures_become_typed_errors(answer, error):
    with pytest.raises(error):
        _client(answer).assignments()


def test_sign_in_failures():
    with pytest.raises(WrongPassword):
        _client(httpx.Response(401, json={"detail": "wrong"})).login("courier", "x")
    with pytest.raises(DeviceTaken):
        _client(httpx.Response(409, json={"detail": "taken"})).enrol_device("tok", "k" * 43, "phone")


def test_a_batch_refused_as_a_whole_is_kept_as_rejected_with_the_servers_words(tmp_path):
    box = Outbox(tmp_path / "outbox.db")
    event = sign_event(
        SigningKey.generate(),
        id=new_event_id(),
        shipment="1000000000009",
        type="delivery_failed",
        occurred_at="2026-11-23T03:04:05.123Z",
        actor="courier:7",
        prev="ab" * 32,
        data={"reason": "not_home", "no_fix_reason": "gps off"},
    )
    box.put(event)
    client = _client(httpx.Response(413, json={"detail": "A batch holds at most 500 events"}))
    report = Syncer(box, client).run_once()
    assert report.rejected == 1 and box.waiting() == 0
    assert [r.reason for r in box.rejected()] == ["A batch holds at most 500 events"]
    box.close()
