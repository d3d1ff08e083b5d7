"""Real servers on 127.0.0.1 that record what the outbox sends them: a minimal SMPP 3.4
SMSC (bind_transmitter / bind_transceiver, submit_sm, enquire_link, unbind), and an HTTP(S)
endpoint (Zalo ZNS's shape, or a webhook receiver) with a self-signed certificate made
with `cryptography`. Used by tests/api/test_outbox.py and bench/outbox.py."""

from __future__ import annotations

import datetime as dt
import http.server
import ipaddress
import json
import socketserver
import ssl
import struct
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared import sms

BIND_TX, BIND_TRX, SUBMIT_SM, ENQUIRE_LINK, UNBIND = 0x02, 0x09, 0x04, 0x15, 0x06
GENERIC_NACK = 0x80000000
ESME_RINVPASWD = 0x0E


@dataclass
class Submitted:
    system_id: str
    source_addr: str
    destination_addr: str
    data_coding: int
    esm_class: int
    short_message: bytes

    @property
    def udh(self) -> bytes:
        return self.short_message[:6] if self.esm_class & 0x40 else b""

    @property
    def text(self) -> str:
        body = self.short_message[6:] if self.esm_class & 0x40 else self.short_message
        return sms.decode(self.data_coding, body)


def _cstr(body: bytes, at: int) -> tuple[str, int]:
    end = body.index(b"\x00", at)
    return body[at:end].decode("latin-1"), end + 1


@dataclass
class SmscState:
    system_id: str
    password: str
    submitted: list[Submitted] = field(default_factory=list)
    binds: list[tuple[str, int]] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    next_id: int = 0

    def messages(self) -> list[tuple[str, str, int]]:
        """(destination, whole text, parts): concatenated parts joined by their UDH reference."""
        out: list[tuple[str, str, int]] = []
        pending: dict[tuple[str, int], dict[int, str]] = {}
        for s in self.submitted:
            if not s.udh:
                out.append((s.destination_addr, s.text, 1))
                continue
            ref, total, seq = s.udh[3], s.udh[4], s.udh[5]
            parts = pending.setdefault((s.destination_addr, ref), {})
            parts[seq] = s.text
            if len(parts) == total:
                out.append((s.destination_addr, "".join(parts[i] for i in sorted(parts)), total))
                del pending[(s.destination_addr, ref)]
        return out


class _SmppHandler(socketserver.BaseRequestHandler):
    server: _SmppServer

    def _read(self, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = self.request.recv(n - len(buf))
            if not chunk:
                raise ConnectionError
            buf += chunk
        return buf

    def _reply(self, command: int, status: int, seq: int, body: bytes = b"") -> None:
        self.request.sendall(struct.pack(">IIII", 16 + len(body), command, status, seq) + body)

    def handle(self) -> None:
        state = self.server.state
        bound_as = ""
        try:
            while True:
                length, command, _status, seq = struct.unpack(">IIII", self._read(16))
                body = self._read(length - 16)
                with state.lock:
                    state.commands.append(hex(command))
                if command in (BIND_TX, BIND_TRX):
                    system_id, at = _cstr(body, 0)
                    password, at = _cstr(body, at)
                    ok = system_id == state.system_id and password == state.password
                    with state.lock:
                        state.binds.append((system_id, command))
                    self._reply(command | 0x80000000, 0 if ok else ESME_RINVPASWD, seq, b"TESTSMSC\x00")
                    if ok:
                        bound_as = system_id
                elif command == SUBMIT_SM:
                    if not bound_as:
                        self._reply(command | 0x80000000, 0x04, seq, b"\x00")  # ESME_RINVBNDSTS
                        continue
                    _service, at = _cstr(body, 0)
                    at += 2
                    source, at = _cstr(body, at)
                    at += 2
                    dest, at = _cstr(body, at)
                    esm_class = body[at]
                    at += 3
                    _sched, at = _cstr(body, at)
                    _valid, at = _cstr(body, at)
                    at += 2
                    data_coding = body[at]
                    sm_length = body[at + 2]
                    short = body[at + 3 : at + 3 + sm_length]
                    with state.lock:
                        state.submitted.append(
                            Submitted(bound_as, source, dest, data_coding, esm_class, short)
                        )
                        state.next_id += 1
                        mid = f"m{state.next_id}"
                    self._reply(command | 0x80000000, 0, seq, mid.encode() + b"\x00")
                elif command == ENQUIRE_LINK:
                    self._reply(command | 0x80000000, 0, seq)
                elif command == UNBIND:
                    self._reply(command | 0x80000000, 0, seq)
                    return
                else:
                    self._reply(GENERIC_NACK, 0x03, seq)  # ESME_RINVCMDID
        except (ConnectionError, OSError):
            return


class _SmppServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    state: SmscState


class Smsc:
    """`with Smsc("hoso", "secret") as smsc:` … `smsc.port`, `smsc.state.messages()`."""

    def __init__(self, system_id: str, password: str) -> None:
        self.server = _SmppServer(("127.0.0.1", 0), _SmppHandler)
        self.server.state = SmscState(system_id, password)
        self.state = self.server.state
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Smsc:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


# --- HTTP(S) ---


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key (PEM files); the certificate is its own CA."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _HttpServer

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def do_POST(self) -> None:
        n = int(self.headers.get("content-length", "0"))
        body = self.rfile.read(n)
        srv = self.server
        with srv.lock:
            srv.received.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
            status, answer = srv.answer(len(srv.received))
        out = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)


class _HttpServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    received: list[Received]
    lock: threading.Lock

    def answer(self, n: int) -> tuple[int, Any]:
        return 200, {"error": 0, "message": "Success", "data": {"msg_id": f"zns-{n}"}}


class Endpoint:
    """An HTTP endpoint on 127.0.0.1 that records every POST; HTTPS with `tls_dir`.
    `answers(n) -> (status, json)` decides each reply (default: ZNS success)."""

    def __init__(self, tls_dir: Path | None = None, answers: Any = None) -> None:
        self.server = _HttpServer(("127.0.0.1", 0), _Handler)
        self.server.received = []
        self.server.lock = threading.Lock()
        if answers is not None:
            self.server.answer = answers  # type: ignore[method-assign]
        self.ca_file: Path | None = None
        scheme = "http"
        if tls_dir is not None:
            cert, key = self_signed(tls_dir)
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(cert, key)
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
            self.ca_file = cert
            scheme = "https"
        self.url = f"{scheme}://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def received(self) -> list[Received]:
        return self.server.received

    def __enter__(self) -> Endpoint:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
