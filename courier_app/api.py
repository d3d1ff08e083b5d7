"""The app's one HTTP client: every call the phone makes to the server, typed with the
shared wire schema (`shared.api`), and every HTTP failure turned into an exception a flow
knows what to do with. Nothing else in courier_app names a path or reads a status code.

    ServerUnavailable  no answer (ServerError: the server failed, 5xx): keep the work, try later
    TokenExpired       401: sign in again (the outbox is kept)
    WrongPassword      401 on sign-in
    DeviceTaken        409 on enrolment: this phone's key belongs to another courier
    Refused            any other 4xx, with the server's own words (`detail`)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import TracebackType
from typing import TypeVar

import httpx
import msgspec

from shared import api
from shared.api import (
    AssignmentList,
    DeviceRequest,
    DeviceResponse,
    EventBatchResult,
    EventResult,
    Keys,
    PagesDigitised,
    PendingHandover,
    PendingHandovers,
    PinCheckRequest,
    PinCheckResult,
    TokenRequest,
    TokenResponse,
)
from shared.events import CustodyEvent

HTTP_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
PROBE_TIMEOUT = httpx.Timeout(3.0, connect=3.0)
PAGES_TIMEOUT = httpx.Timeout(120.0, connect=5.0)  # the server binds the PDF (and OCR) before it answers
T = TypeVar("T")


class ApiError(Exception):
    """Anything the server call could not deliver; the subclasses say what to do."""


class ServerUnavailable(ApiError):
    """No answer, or the server failed: nothing was lost, try again later."""


class ServerError(ServerUnavailable):
    """The server answered, with a failure of its own (5xx)."""


class TokenExpired(ApiError):
    """The server no longer accepts the token: sign in again (the outbox is kept)."""


class WrongPassword(ApiError):
    pass


class DeviceTaken(ApiError):
    """This phone's key is enrolled to another courier."""


class Refused(ApiError):
    """The server understood the request and said no (4xx); args[0] is its `detail`."""

    def __init__(self, detail: str, status: int) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status = status


def _signed_out() -> str:
    raise TokenExpired("signed out")


def _detail(r: httpx.Response) -> str:
    try:
        body = r.json()
    except ValueError:
        return f"HTTP {r.status_code}"
    detail = body.get("detail") if isinstance(body, dict) else None
    return str(detail) if detail else f"HTTP {r.status_code}"


class ApiClient:
    """One server, one connection pool. `token` gives the signed-in courier's bearer token
    (or raises TokenExpired); calls that need no sign-in (login, keys) do not ask for it."""

    def __init__(
        self,
        http: httpx.Client,
        token: Callable[[], str] = _signed_out,
        heard: Callable[[bool], None] | None = None,
    ) -> None:
        self.http = http
        self.token = token
        self.heard = heard or (lambda reachable: None)  # each request says whether it reached the server

    @classmethod
    def connect(
        cls,
        base_url: str,
        token: Callable[[], str] = _signed_out,
        heard: Callable[[bool], None] | None = None,
    ) -> ApiClient:
        return cls(httpx.Client(base_url=base_url, timeout=HTTP_TIMEOUT), token, heard)

    @property
    def base_url(self) -> str:
        return str(self.http.base_url).rstrip("/")

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # plumbing ------------------------------------------------------------------------------------
    def _send(
        self,
        method: str,
        path: str,
        *,
        body: object = None,
        content: bytes | None = None,
        content_type: str | None = None,
        token: str | None = None,
        signed_in: bool = True,
        files: list[tuple[str, tuple[str, bytes, str]]] | None = None,
        timeout: httpx.Timeout | None = None,
    ) -> httpx.Response:
        headers: dict[str, str] = {}
        if signed_in:
            headers["Authorization"] = f"Bearer {token or self.token()}"
        if body is not None:
            content, content_type = msgspec.json.encode(body), "application/json"
        if content_type is not None:
            headers["content-type"] = content_type
        try:
            if files is not None:  # multipart: httpx writes the content type with its boundary
                r = self.http.request(
                    method, path, files=files, headers=headers, timeout=timeout or HTTP_TIMEOUT
                )
            else:
                r = self.http.request(
                    method, path, content=content, headers=headers, timeout=timeout or HTTP_TIMEOUT
                )
        except httpx.TransportError as exc:
            self.heard(False)
            raise ServerUnavailable(str(exc)) from exc
        self.heard(r.status_code < 500)
        if r.status_code == 401:
            raise TokenExpired(_detail(r))
        if r.status_code >= 500:
            raise ServerError(f"server answered {r.status_code}")
        if r.status_code >= 400:
            raise Refused(_detail(r), r.status_code)
        return r

    @staticmethod
    def _decode(r: httpx.Response, type_: type[T]) -> T:
        try:
            return msgspec.json.decode(r.content, type=type_)
        except msgspec.ValidationError as exc:  # an answer of another shape: not a server we know
            raise ServerError(f"unexpected answer: {exc}") from exc

    # signing in ----------------------------------------------------------------------------------
    def health(self) -> bool:
        """A cheap probe: does the server answer `GET /health` within a few seconds?"""
        try:
            r = self.http.get("/health", timeout=PROBE_TIMEOUT)
        except httpx.TransportError:
            self.heard(False)
            return False
        self.heard(r.status_code == 200)
        return r.status_code == 200

    def login(self, username: str, password: str) -> TokenResponse:
        """Raises WrongPassword, ServerUnavailable or Refused."""
        try:
            r = self._send("POST", api.TOKEN, body=TokenRequest(username, password), signed_in=False)
        except TokenExpired as exc:
            raise WrongPassword(str(exc)) from exc
        return self._decode(r, TokenResponse)

    def enrol_device(self, token: str, public_key: str, label: str) -> DeviceResponse:
        """Enrol this phone's key for the courier the fresh `token` belongs to; raises DeviceTaken."""
        try:
            r = self._send("POST", api.DEVICES, body=DeviceRequest(public_key, label), token=token)
        except Refused as exc:
            if exc.status == 409:
                raise DeviceTaken(exc.detail) from exc
            raise
        return self._decode(r, DeviceResponse)

    def keys(self) -> Keys:
        return self._decode(self._send("GET", api.KEYS, signed_in=False), Keys)

    # today's work --------------------------------------------------------------------------------
    def assignments(self) -> AssignmentList:
        return self._decode(self._send("GET", api.ASSIGNMENTS), AssignmentList)

    def handovers(self) -> list[PendingHandover]:
        return self._decode(self._send("GET", api.HANDOVERS), PendingHandovers).items

    def check_pin(self, code: str, sealed: str) -> PinCheckResult:
        """A PIN sealed to the server's seal key, checked at once (each wrong try counted;
        Refused 429 past the limit)."""
        r = self._send("POST", api.pin_check_path(code), body=PinCheckRequest(sealed))
        return self._decode(r, PinCheckResult)

    # sync ----------------------------------------------------------------------------------------
    def upload_attachment(self, sha256: str, content_type: str, body: bytes) -> None:
        """Content-addressed, so uploading twice is harmless; raises Refused if not stored."""
        self._send("PUT", api.attachment_path(sha256), content=body, content_type=content_type)

    def sync_events(self, events: Sequence[CustodyEvent | dict[str, object]]) -> list[EventResult]:
        """One batch; the server answers each event (accepted, duplicate or rejected with a
        reason). A batch refused as a whole raises Refused."""
        r = self._send("POST", api.EVENTS, body={"events": list(events)})
        return self._decode(r, EventBatchResult).results

    def upload_pages(self, code: str, pages: Sequence[bytes]) -> PagesDigitised:
        """A dossier's page photos (JPEG, in order): the server checks them, binds the PDF and
        signs `digitised`; the same pages again answer with that event. Refused with the
        server's sentence (403: handed on, the counter scans it instead; 409; 413; 422)."""
        files = [("page", (f"page{n}.jpg", body, "image/jpeg")) for n, body in enumerate(pages, start=1)]
        r = self._send("POST", api.pages_path(code), files=files, timeout=PAGES_TIMEOUT)
        return self._decode(r, PagesDigitised)
