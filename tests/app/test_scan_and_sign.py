"""Scanning (real QR decoding of real label renderings) and the signature pad model."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import msgspec
import pytest
from PIL import Image

from courier_app.flows.scan import ScanFlow
from courier_app.flows.signature import SignaturePad
from courier_app.scanner import classify, key_set, scan_frame
from server.labels.render import LabelInfo, label_png
from shared import codes
from shared.crypto import SigningKey
from shared.i18n import t
from shared.labels import label_url

KEY = SigningKey.generate()
KEYS = [KEY.public_key_b64]


def _label(code: str, key: SigningKey = KEY) -> Image.Image:
    info = LabelInfo(
        code,
        label_url("http://127.0.0.1:8000", code, key),
        "result",
        "Nguyễn Thị Bích",
        "Phường Pleiku",
        datetime.now(UTC),
    )
    return Image.open(io.BytesIO(label_png(info)))


def test_classify_every_kind_of_input():
    mine, other = codes.new_code(), codes.new_code()
    url = label_url("http://x", mine, KEY)
    assert classify(url, KEYS, {mine}).verdict == "ok"
    assert classify(codes.group(mine), KEYS, {mine}).verdict == "ok"
    assert classify(url, KEYS, {other}).verdict == "not_assigned"
    stranger = label_url("http://x", mine, SigningKey.generate())
    # a key id the phone does not know: a newer key, or a forger's (the scan flow refreshes to tell)
    assert classify(stranger, KEYS, {mine}).verdict == "unknown_key"
    assert classify(stranger.split("&k=")[0], KEYS, {mine}).verdict == "forged"  # no key id
    real_kid = url.split("&k=")[1]
    assert classify(stranger.split("&k=")[0] + "&k=" + real_kid, KEYS, {mine}).verdict == "forged"
    assert (
        classify(url.replace(mine, mine[:-1] + str((int(mine[-1]) + 1) % 10)), KEYS, {mine}).verdict
        == "foreign"
    )
    assert classify(mine[:-1] + str((int(mine[-1]) + 1) % 10), KEYS, {mine}).verdict == "bad_code"
    assert classify("https://example.com/menu", KEYS, {mine}).verdict == "foreign"
    assert classify("", KEYS, {mine}).verdict == "bad_code"
    for r in (classify("WIFI:S:cafe;;", KEYS, set()), classify(url, KEYS, set())):
        assert t(r.message_key) != r.message_key and t(r.message_key, "en") != r.message_key


def test_frames_from_real_labels():
    a, b, c = codes.new_code(), codes.new_code(), codes.new_code()
    frame = Image.new("L", (1700, 1250), 255)
    frame.paste(_label(a), (0, 0))
    frame.paste(_label(b), (850, 0))
    results = scan_frame(frame.convert("RGB"), KEYS, {a, b})
    assert sorted(r.code for r in results if r.verdict == "ok") == sorted([a, b])  # two in view: ask which
    forged = scan_frame(_label(c, SigningKey.generate()), KEYS, {c})
    assert [r.verdict for r in forged] == ["unknown_key"]  # a key id the phone does not know…
    flow = ScanFlow(KEYS, {c}, refresh_keys=lambda: key_set(KEYS))
    buf = io.BytesIO()
    _label(c, SigningKey.generate()).convert("RGB").save(buf, format="JPEG")
    assert flow.on_frame(buf.getvalue()) is None and flow.message == "scan.forged"  # …nor the server
    assert scan_frame(Image.new("RGB", (640, 480), "white"), KEYS, {a}) == []


def test_signature_pad():
    pad = SignaturePad(400, 160)
    assert pad.problem() == "sign.empty"
    pad.start(100, 80, 0)
    assert pad.problem() == "sign.too_small"  # a dot
    with pytest.raises(ValueError):
        pad.attachments()
    pad.clear()
    for i in range(30):
        pad.extend(40 + i * 10, 80 + (i % 5) * 8, i * 16)
    pad.start(60, 120, 600)
    pad.extend(300, 40, 700)
    pad.undo()
    assert len(pad.strokes) == 1 and pad.problem() is None
    (png_hash, png_type, png), (json_hash, json_type, strokes) = pad.attachments()
    assert png_type == "image/png" and Image.open(io.BytesIO(png)).size == (400, 160)
    body = msgspec.json.decode(strokes)
    assert json_type == "application/json" and body["w"] == 400 and len(body["strokes"][0]) == 30
    assert body["strokes"][0][3] == [70.0, 104.0, 48]
    assert len(png_hash) == len(json_hash) == 64
