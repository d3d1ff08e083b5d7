"""Ed25519 signature checks in helper processes, beside the server's one worker.

libsodium releases the GIL while it verifies, so verifier threads looked free. On this
project's two-core machines they were not: every check hands the GIL back and forth
with the writer's thread, and each handoff costs a wakeup; run beside a batch's writer,
two verifier threads made the writer's own work two to three times slower (README,
"Benchmarks"). A helper process has an interpreter of its own: the server only writes
the batch's keys, signatures and hashes to its pipe and blocks on the answer.

Wire format on a helper's stdin and stdout: a 4-byte big-endian length, then the
payload. Request: records of public key (32 bytes) + signature (64) + signed message
(32: the event's hash as sent). Answer: one byte per record, 1 if the signature verifies.
`python -m server.custody.verifier` is the helper; it exits when its stdin closes.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import struct
import subprocess
import sys
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import IO, BinaryIO

from nacl.bindings import crypto_sign_open
from nacl.exceptions import BadSignatureError

KEY, SIG, MSG = 32, 64, 32
RECORD = KEY + SIG + MSG
_HEADER = struct.Struct(">I")
_ROOT = Path(__file__).resolve().parents[2]  # where `server` and `shared` are importable from


def record(public_key: bytes, signature: bytes, message: bytes) -> bytes:
    if (len(public_key), len(signature), len(message)) != (KEY, SIG, MSG):
        raise ValueError("a record is a 32-byte key, a 64-byte signature and a 32-byte message")
    return public_key + signature + message


def check_records(blob: bytes) -> bytes:
    """One byte per record: 1 if its signature verifies. What a helper does."""
    out = bytearray(len(blob) // RECORD)
    for i in range(len(out)):
        o = i * RECORD
        try:
            crypto_sign_open(blob[o + KEY : o + RECORD], blob[o : o + KEY])
        except BadSignatureError:
            continue
        out[i] = 1
    return bytes(out)


def _read(stream: IO[bytes], n: int) -> bytes:
    data = stream.read(n)
    if data is None or len(data) != n:
        raise EOFError("the signature helper's pipe closed")
    return data


def serve(stdin: BinaryIO, stdout: BinaryIO) -> None:
    """A helper's loop: answer each request until stdin closes."""
    while True:
        try:
            (n,) = _HEADER.unpack(_read(stdin, _HEADER.size))
            blob = _read(stdin, n)
        except EOFError:
            return
        answer = check_records(blob)
        stdout.write(_HEADER.pack(len(answer)) + answer)
        stdout.flush()


class _Helper:
    """One helper process and its pipes; used by one thread at a time."""

    def __init__(self) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_ROOT), env.get("PYTHONPATH", "")) if p)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "server.custody.verifier"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )

    def alive(self) -> bool:
        return self.proc.poll() is None

    def check(self, blob: bytes) -> bytes:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(_HEADER.pack(len(blob)) + blob)
        self.proc.stdin.flush()
        (n,) = _HEADER.unpack(_read(self.proc.stdout, _HEADER.size))
        answer = _read(self.proc.stdout, n)
        if len(answer) != len(blob) // RECORD:
            raise EOFError("the signature helper answered for the wrong number of records")
        return answer

    def close(self) -> None:
        with contextlib.suppress(OSError):
            if self.proc.stdin is not None:
                self.proc.stdin.close()  # the helper exits on end of input
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


class SignaturePool:
    """`processes` helpers, each driven by a thread of its own, started on first use.

    With `processes=0` every check runs in the calling thread. A helper that dies or
    misbehaves is replaced on the next request; the request that found it so is checked
    in the driving thread instead, so an answer is never lost. After MAX_FAILURES
    failures in a row (a helper that cannot even start), the pool stops starting them
    and checks everything in its threads, and says so in the log.
    """

    MAX_FAILURES = 3

    def __init__(self, processes: int) -> None:
        self.processes = max(0, processes)
        self._threads: ThreadPoolExecutor | None = None
        self._local = threading.local()
        self._helpers: list[_Helper] = []
        self._lock = threading.Lock()
        self._closed = False
        self._failures = 0

    def _helper(self) -> _Helper:
        helper: _Helper | None = getattr(self._local, "helper", None)
        if helper is None or not helper.alive():
            helper = self._local.helper = _Helper()
            with self._lock:
                self._helpers.append(helper)
        return helper

    def _call(self, blob: bytes) -> bytes:
        if self._failures >= self.MAX_FAILURES:
            return check_records(blob)
        try:
            answer = self._helper().check(blob)
        except (OSError, EOFError, ValueError, struct.error):
            helper = getattr(self._local, "helper", None)
            self._local.helper = None
            if helper is not None:
                helper.close()
            with self._lock:
                self._failures += 1
                if self._failures == self.MAX_FAILURES:
                    logging.getLogger(__name__).error(
                        "signature helpers failed %d times in a row; checking signatures in the server "
                        "process from now on (slower; see HOSO_VERIFY_PROCESSES)",
                        self._failures,
                    )
            return check_records(blob)
        self._failures = 0
        return answer

    def submit(self, blob: bytes) -> Future[bytes]:
        """The answer for these records, from a helper (or here, with no helpers)."""
        if self.processes == 0 or self._closed:
            done: Future[bytes] = Future()
            done.set_result(check_records(blob))
            return done
        with self._lock:
            if self._threads is None:
                self._threads = ThreadPoolExecutor(self.processes, thread_name_prefix="hoso-verify")
                atexit.register(self.close)
        return self._threads.submit(self._call, blob)

    def start(self) -> None:
        """Start the helpers now, in the background, instead of on the first batch."""
        for _ in range(self.processes):
            self.submit(b"")

    def split(self, blob: bytes) -> list[Future[bytes]]:
        """The records shared out between the helpers, in order."""
        n = len(blob) // RECORD
        if n == 0 or self.processes <= 1:
            return [self.submit(blob)]
        step = -(-n // min(self.processes, n)) * RECORD
        return [self.submit(blob[i : i + step]) for i in range(0, len(blob), step)]

    def close(self) -> None:
        self._closed = True
        with self._lock:
            helpers, self._helpers = self._helpers, []
            threads, self._threads = self._threads, None
        if threads is not None:
            threads.shutdown(wait=True)
        for helper in helpers:
            helper.close()


if __name__ == "__main__":
    serve(sys.stdin.buffer, sys.stdout.buffer)
