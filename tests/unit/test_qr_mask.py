"""The label QR's faster mask choice gives qrcode's own penalties and matrices."""

from __future__ import annotations

import random

import pytest
import qrcode
from qrcode import util
from qrcode.constants import ERROR_CORRECT_H, ERROR_CORRECT_Q

from server.labels.render import _QRCode, mask_penalty, qr_matrix
from shared.crypto import SigningKey
from shared.labels import label_url


def _random_matrix(rnd: random.Random, n: int) -> list[list[bool]]:
    p = rnd.random()
    m = [[rnd.random() < p for _ in range(n)] for _ in range(n)]
    # plant finder-like patterns and long runs, in rows and columns
    for _ in range(rnd.randrange(4)):
        pattern = [c == "1" for c in rnd.choice(["10111010000", "00001011101", "0000101110100001011101"])]
        r, c = rnd.randrange(n), rnd.randrange(max(1, n - len(pattern)))
        for k, v in enumerate(pattern[: n - c]):
            m[r][c + k] = v
            m[c + k][r] = v
    return m


@pytest.mark.parametrize("n", [11, 21, 25, 33, 53, 57])
def test_penalty_is_qrcodes(n):
    rnd = random.Random(n)
    for _ in range(150):
        m = _random_matrix(rnd, n)
        assert mask_penalty(m) == util.lost_point(m)


def _reference(data: str, level: int) -> list[list[bool]]:
    qr = qrcode.QRCode(error_correction=level, border=0)
    qr.add_data(data)
    qr.make(fit=True)
    return qr.get_matrix()


def test_label_matrices_are_qrcodes():
    key = SigningKey.generate()
    urls = [label_url("https://hoso.example.gov.vn", f"{8271543557855 + 97 * i}", key) for i in range(12)]
    for url in urls:
        assert qr_matrix(url) == _reference(url, ERROR_CORRECT_Q)
    for data in ["x", "x" * 40, "HOSO" * 30, urls[0] * 3]:
        for level in (ERROR_CORRECT_Q, ERROR_CORRECT_H):
            qr = _QRCode(error_correction=level, border=0)
            qr.add_data(data)
            qr.make(fit=True)
            assert qr.get_matrix() == _reference(data, level)
