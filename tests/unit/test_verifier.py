"""The signature helpers (server/custody/verifier.py): real processes, real libsodium."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from server.custody.verifier import RECORD, SignaturePool, _Helper, check_records, record
from server.settings import Settings, SettingsError
from shared.crypto import SigningKey


def _records(n: int, bad: set[int]) -> bytes:
    key = SigningKey.generate()
    out = []
    for i in range(n):
        message = os.urandom(32)
        sig = key.sign(message)
        if i in bad:
            sig = bytes([sig[0] ^ 1]) + sig[1:]
        out.append(record(key.public_key, sig, message))
    return b"".join(out)


def test_records_verify_one_by_one():
    blob = _records(5, bad={1, 4})
    assert check_records(blob) == bytes([1, 0, 1, 1, 0])
    with pytest.raises(ValueError):
        record(b"k" * 31, b"s" * 64, b"m" * 32)


@pytest.mark.parametrize("processes", [0, 1, 3])
def test_the_pool_answers_in_order(processes):
    blob = _records(50, bad={0, 17, 49})
    pool = SignaturePool(processes)
    try:
        for _ in range(2):  # the second time through running helpers
            answer = b"".join(f.result(timeout=30) for f in pool.split(blob))
            assert len(answer) == len(blob) // RECORD
            assert [i for i, ok in enumerate(answer) if not ok] == [0, 17, 49]
        assert len(pool._helpers) == processes
        assert pool.split(b"")[0].result(timeout=30) == b""
        helpers = list(pool._helpers)
    finally:
        pool.close()
    assert all(not h.alive() for h in helpers)  # closing the pool ends its helpers


def test_a_helper_dying_mid_request_costs_no_answer(monkeypatch):
    blob = _records(20, bad={3})
    pool = SignaturePool(1)
    try:
        assert pool.submit(blob).result(timeout=30)[3] == 0
        [helper] = pool._helpers
        helper.proc.kill()
        helper.proc.wait()
        # as if it died between the liveness check and the request
        monkeypatch.setattr(_Helper, "alive", lambda self: True)
        answer = pool.submit(blob).result(timeout=30)
        assert [i for i, ok in enumerate(answer) if not ok] == [3]
        monkeypatch.undo()
        assert pool.submit(blob).result(timeout=30) == answer
        assert len(pool._helpers) == 2 and pool._helpers[-1].alive()
    finally:
        pool.close()


def test_helpers_that_cannot_start_are_given_up_after_a_few_tries(monkeypatch, caplog):
    blob = _records(20, bad={5})
    pool = SignaturePool(1)
    starts = []

    def broken(self):  # a helper that exits at once, as if it could not import
        starts.append(1)
        pipe = subprocess.PIPE
        self.proc = subprocess.Popen([sys.executable, "-c", "pass"], stdin=pipe, stdout=pipe)

    monkeypatch.setattr(_Helper, "__init__", broken)
    try:
        for _ in range(SignaturePool.MAX_FAILURES + 3):
            answer = pool.submit(blob).result(timeout=30)
            assert [i for i, ok in enumerate(answer) if not ok] == [5]
        assert len(starts) == SignaturePool.MAX_FAILURES
        assert "checking signatures in the server process" in caplog.text
    finally:
        pool.close()


def test_the_setting():
    assert Settings.from_env({"HOSO_VERIFY_PROCESSES": "0"}).verify_processes == 0
    assert Settings.from_env({}).verify_processes >= 1
    for bad in ("two", "-1"):
        with pytest.raises(SettingsError, match="HOSO_VERIFY_PROCESSES"):
            Settings.from_env({"HOSO_VERIFY_PROCESSES": bad})
