"""Live updates reach an open console within 2 s: in memory in one process, and on Redis
from one `hoso serve` process to another sharing the database."""

from __future__ import annotations

import os
import queue
import re
import threading
import time

import httpx
import msgspec
import pytest

from bench._harness import PASSWORD, Server, free_port, start_serve, stop_serve

REDIS_URL = os.environ.get("HOSO_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
STRICT = os.environ.get("HOSO_TEST_STRICT") == "1"


def _redis_or_skip() -> None:
    try:
        import redis

        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except Exception as exc:
        if STRICT:
            pytest.fail(f"Redis is not reachable at {REDIS_URL}: {exc}")
        pytest.skip(f"needs Redis at {REDIS_URL} (HOSO_TEST_REDIS_URL)")


def console_client(base: str, username: str = "dispatcher") -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=30)
    page = client.get("/console/login")
    token = re.search(r'name="_csrf_token" value="([^"]+)"', page.text).group(1)
    r = client.post("/console/login", data={"username": username, "password": PASSWORD, "_csrf_token": token})
    assert r.status_code == 303, r.text
    return client


class EventStream:
    """Reads /console/live on a thread; events land in a queue as (name, data, time received)."""

    def __init__(self, client: httpx.Client) -> None:
        self.events: queue.Queue[tuple[str, dict, float]] = queue.Queue()
        self._client = client
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._read()
        except httpx.HTTPError:
            if not self._stop.is_set():
                raise

    def _read(self) -> None:
        with self._client.stream("GET", "/console/live", headers={"Accept": "text/event-stream"}) as r:
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
            name = "message"
            for line in r.iter_lines():
                if self._stop.is_set():
                    return
                if line.startswith("event:"):
                    name = line.split(":", 1)[1].strip()
                elif line.startswith("data:"):
                    self.events.put(
                        (name, msgspec.json.decode(line.split(":", 1)[1].strip()), time.monotonic())
                    )
                    name = "message"

    def wait_for(
        self, name: str, code: str | None = None, what: str | None = None, timeout: float = 5.0
    ) -> tuple[dict, float]:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                got, data, when = self.events.get(timeout=left)
            except queue.Empty:
                break
            if got != name or (what is not None and data.get("what") != what):
                continue
            if code is None or code in data.get("codes", []):
                return data, when
        raise AssertionError(f"no {name} event for {code} within {timeout} s")

    def close(self) -> None:
        self._stop.set()
        self._client.close()


def _check_changes_arrive(producer: Server, stream: EventStream) -> str:
    stream.wait_for("ready")
    [(code, head)] = producer.shipments(1)  # registered, then assigned: both announced
    stream.wait_for("change", code, "registered")
    stream.wait_for("change", code, "assigned")
    sent = time.monotonic()
    r = producer.http.post(
        "/api/v1/events", headers=producer.auth("courier"), json={"events": producer.chain(code, head, 1)}
    )
    assert r.json()["results"][0]["status"] == "accepted", r.text
    _data, received = stream.wait_for("change", code, "event")
    assert received - sent < 2.0, received - sent
    return code


def test_live_updates_in_memory():
    with Server("sqlite") as srv:
        stream = EventStream(console_client(srv.base))
        try:
            code = _check_changes_arrive(srv, stream)
        finally:
            stream.close()
        rows = console_client(srv.base).get(f"/console/board/rows?courier={srv.courier_id}").text
        assert f'id="s{code}"' in rows and "Đang vận chuyển" in rows


def test_live_updates_across_processes_on_redis():
    _redis_or_skip()
    with Server("postgres", extra_env={"HOSO_REDIS_URL": REDIS_URL}) as srv:
        port = free_port()
        other = start_serve(srv.env, port)
        try:
            base = f"http://127.0.0.1:{port}"
            stream = EventStream(console_client(base))  # watching the second process ...
            try:
                _check_changes_arrive(srv, stream)  # ... while the courier syncs to the first
            finally:
                stream.close()
        finally:
            stop_serve([other])


def test_live_stream_tells_each_unit_only_of_its_shipments():
    """A board of another unit hears nothing of this unit's new codes (issue 13.1)."""
    with Server("sqlite") as srv:
        srv._cli(["unit", "add", "BC-2", "--name", "Bưu cục khác", "--kind", "post_office"])
        srv._cli(["user", "add", "clerk2", "--role", "clerk", "--unit", "BC-2"], stdin=PASSWORD + "\n")
        own = EventStream(console_client(srv.base, "dispatcher"))
        other = EventStream(console_client(srv.base, "clerk2"))
        try:
            own.wait_for("ready")
            other.wait_for("ready")
            [(code, _head)] = srv.shipments(1)
            own.wait_for("change", code, "registered")
            own.wait_for("change", code, "assigned")
            with pytest.raises(AssertionError, match="no change event"):
                other.wait_for("change", timeout=1.5)  # before: both changes, with the code
        finally:
            own.close()
            other.close()
