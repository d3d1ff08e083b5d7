"""The ways a message leaves: SMS over SMPP 3.4 (smpplib), Zalo ZNS over HTTPS, webhooks
(Standard Webhooks) over HTTP(S). Each takes a list of messages and answers one outcome per
message, in order: `Sent` or `Failed` (with whether a retry may help).

Nothing here logs a message's text or parameters: a PIN travels in them. smpplib's own
logger, which writes every PDU in hex at DEBUG, is held at WARNING.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import ssl
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx

from shared import sms

SMPP_LOGGER = "hoso.smpp.wire"
logging.getLogger(SMPP_LOGGER).setLevel(logging.WARNING)
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Sent:
    segments: int | None = None
    ref: str = ""


@dataclass(frozen=True, slots=True)
class Failed:
    error: str
    retryable: bool = True


Outcome = Sent | Failed


@dataclass(frozen=True, slots=True)
class Sms:
    number: str  # 84XXXXXXXXX
    text: str
    source_addr: str


@dataclass(frozen=True, slots=True)
class Zns:
    number: str
    template_id: str
    params: dict[str, str]
    tracking_id: str


@dataclass(frozen=True, slots=True)
class Webhook:
    url: str
    msg_id: str
    body: bytes
    secrets: tuple[str, ...]


class RateLimit:
    """A token bucket: `rate` per second, bursts of up to one second's worth; 0: no limit."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.tokens = max(rate, 1.0)
        self.at = time.monotonic()
        self.lock = asyncio.Lock()

    async def take(self, n: int = 1) -> None:
        if self.rate <= 0:
            return
        async with self.lock:
            while True:
                now = time.monotonic()
                self.tokens = min(max(self.rate, 1.0), self.tokens + (now - self.at) * self.rate)
                self.at = now
                if self.tokens >= n or (n > self.rate and self.tokens >= self.rate):
                    self.tokens -= n
                    return
                await asyncio.sleep((min(n, self.rate) - self.tokens) / self.rate)


# --- SMPP 3.4 ---


class SmppChannel:
    """One bound transmitter session, kept open, on a thread of its own. A list of messages
    goes out as a window: every submit_sm first, then their submit_sm_resp, matched by
    sequence number. A text longer than one segment goes as a concatenated SMS (8-bit UDH)."""

    def __init__(
        self,
        host: str,
        port: int,
        system_id: str,
        password: str,
        system_type: str = "",
        timeout: float = 10.0,
    ) -> None:
        self.host, self.port = host, port
        self.system_id, self.password, self.system_type = system_id, password, system_type
        self.timeout = timeout
        self._client: Any = None
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="hoso-smpp")
        self._ref = 0

    async def send(self, messages: Sequence[Sms]) -> list[Outcome]:
        return await asyncio.get_running_loop().run_in_executor(self._thread, self._send, list(messages))

    async def close(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._thread, self._close)
        self._thread.shutdown()

    def _connect(self) -> Any:
        import smpplib.client

        client = smpplib.client.Client(
            self.host, self.port, timeout=self.timeout, logger_name=SMPP_LOGGER, allow_unknown_opt_params=True
        )
        client.connect()
        client.bind_transmitter(
            system_id=self.system_id, password=self.password, system_type=self.system_type
        )
        return client

    def _close(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        try:
            client.unbind()
        except Exception:
            pass
        try:
            client.disconnect()
        except Exception:
            pass

    def _pdus(self, msg: Sms) -> list[dict[str, Any]]:
        parts = sms.split(msg.text)
        data_coding, _ = sms.encode(msg.text)
        self._ref = (self._ref + 1) % 256
        out = []
        for i, part in enumerate(parts, start=1):
            _, payload = sms.encode(part) if data_coding == 0 else (8, part.encode("utf-16-be"))
            esm_class = 0
            if len(parts) > 1:
                payload = bytes((5, 0, 3, self._ref, len(parts), i)) + payload
                esm_class = 0x40  # UDHI
            out.append(
                {
                    "source_addr_ton": 5 if not msg.source_addr.isdigit() else 1,
                    "source_addr_npi": 0 if not msg.source_addr.isdigit() else 1,
                    "source_addr": msg.source_addr,
                    "dest_addr_ton": 1,
                    "dest_addr_npi": 1,
                    "destination_addr": msg.number,
                    "short_message": payload,
                    "data_coding": data_coding,
                    "esm_class": esm_class,
                    "registered_delivery": 0,
                }
            )
        return out

    def _send(self, messages: list[Sms]) -> list[Outcome]:
        import smpplib.exceptions
        import smpplib.smpp

        try:
            if self._client is None:
                self._client = self._connect()
        except smpplib.exceptions.PDUError as exc:
            self._close()
            return [Failed(f"SMPP bind refused: {exc}")] * len(messages)
        except (OSError, smpplib.exceptions.ConnectionError) as exc:
            self._close()
            return [Failed(f"SMPP gateway {self.host}:{self.port} unreachable: {exc}")] * len(messages)
        client = self._client
        waiting: dict[int, int] = {}  # sequence -> message index
        parts = [0] * len(messages)
        errors: dict[int, str] = {}
        refs: dict[int, str] = {}
        try:
            for index, msg in enumerate(messages):
                for fields in self._pdus(msg):
                    pdu = smpplib.smpp.make_pdu("submit_sm", client=client, **fields)
                    client.send_pdu(pdu)
                    waiting[pdu.sequence] = index
                    parts[index] += 1
            while waiting:
                pdu = client.read_pdu()
                if pdu.command == "enquire_link":
                    client.send_pdu(
                        smpplib.smpp.make_pdu("enquire_link_resp", client=client, sequence=pdu.sequence)
                    )
                    continue
                if pdu.command != "submit_sm_resp" or pdu.sequence not in waiting:
                    continue
                index = waiting.pop(pdu.sequence)
                if pdu.status != 0:
                    errors[index] = f"SMSC refused submit_sm: status 0x{pdu.status:08x}"
                elif index not in refs:
                    mid = pdu.message_id
                    refs[index] = mid.decode() if isinstance(mid, bytes) else str(mid or "")
        except (
            TimeoutError,
            OSError,
            smpplib.exceptions.ConnectionError,
            smpplib.exceptions.PDUError,
        ) as exc:
            self._close()
            for index in set(waiting.values()):
                errors.setdefault(index, f"SMPP session lost before submit_sm_resp: {type(exc).__name__}")
        out: list[Outcome] = []
        for index in range(len(messages)):
            if index in errors:
                out.append(Failed(errors[index]))
            else:
                out.append(Sent(segments=parts[index], ref=refs.get(index, "")))
        return out


# --- Zalo ZNS ---


def https_client(ca_file: str, timeout: float = 10.0) -> httpx.AsyncClient:
    verify: Any = ssl.create_default_context(cafile=ca_file) if ca_file else True
    return httpx.AsyncClient(verify=verify, timeout=timeout, follow_redirects=False)


class ZnsChannel:
    """POST {phone, template_id, template_data, tracking_id} with the OA's access token in
    the `access_token` header, as Zalo's ZNS API takes it; `error: 0` is success."""

    def __init__(self, url: str, token: str, client: httpx.AsyncClient) -> None:
        self.url, self.token, self.client = url, token, client

    async def send_one(self, msg: Zns) -> Outcome:
        body = {
            "phone": msg.number,
            "template_id": msg.template_id,
            "template_data": msg.params,
            "tracking_id": msg.tracking_id,
        }
        try:
            resp = await self.client.post(
                self.url, json=body, headers={"access_token": self.token, "Content-Type": "application/json"}
            )
        except httpx.HTTPError as exc:
            return Failed(f"Zalo ZNS unreachable: {type(exc).__name__}")
        try:
            answer = resp.json()
        except ValueError:
            return Failed(f"Zalo ZNS answered HTTP {resp.status_code} without JSON")
        if resp.status_code != 200 or answer.get("error") != 0:
            return Failed(f"Zalo ZNS error {answer.get('error')}: {str(answer.get('message', ''))[:200]}")
        return Sent(ref=str((answer.get("data") or {}).get("msg_id", "")))


# --- Standard Webhooks ---


def new_secret() -> str:
    import os

    return "whsec_" + base64.b64encode(os.urandom(24)).decode()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """`v1,<base64 HMAC-SHA256 of "id.timestamp.body">` under the secret's bytes (after `whsec_`)."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def webhook_headers(msg: Webhook, timestamp: int) -> dict[str, str]:
    return {
        "webhook-id": msg.msg_id,
        "webhook-timestamp": str(timestamp),
        # while a secret rotates both sign: a receiver holding either verifies
        "webhook-signature": " ".join(sign(s, msg.msg_id, timestamp, msg.body) for s in msg.secrets),
        "content-type": "application/json",
        "user-agent": "HoSo-Courier-Webhooks/1",
    }


class WebhookChannel:
    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def send_one(self, msg: Webhook) -> Outcome:
        headers = webhook_headers(msg, int(time.time()))
        try:
            resp = await self.client.post(msg.url, content=msg.body, headers=headers)
        except httpx.HTTPError as exc:
            return Failed(f"webhook endpoint unreachable: {type(exc).__name__}")
        if 200 <= resp.status_code < 300:
            return Sent()
        return Failed(f"webhook endpoint answered HTTP {resp.status_code}")


def webhook_body_bytes(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()


@dataclass(slots=True)
class Channels:
    """What one worker sends with; None: that way is not configured (no default secrets)."""

    smpp: SmppChannel | None = None
    zns: ZnsChannel | None = None
    webhook: WebhookChannel | None = None
    limits: dict[str, RateLimit] = field(default_factory=dict)
    _http: httpx.AsyncClient | None = None

    async def close(self) -> None:
        if self.smpp is not None:
            await self.smpp.close()
        if self._http is not None:
            await self._http.aclose()
