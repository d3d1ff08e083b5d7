"""Issue 19 item 10: a dark, shaken frame the plain read misses is read by the low-light
path (contrast stretch + unsharp mask, then the global-histogram binarizer), through the
scan screen's own flow; a bright frame never pays for it. Frames come from the benchmark's
camera model (bench/courier.py), seeded, so the same frames every run."""

from __future__ import annotations

import random
import time

import numpy as np
from PIL import Image

from bench.courier import _pose, _scene, camera_frame
from courier_app import scanner
from courier_app.flows.scan import ScanFlow
from shared import codes
from tests.app.test_scan_and_sign import KEYS, _label


def _frames(label: Image.Image, light: float, blur: int, n: int) -> list[bytes]:
    rng, noise = random.Random(19), np.random.default_rng(19)
    return [camera_frame(_scene(label, _pose(rng)), light, blur, noise) for _ in range(n)]


def test_the_low_light_path_reads_dark_shaken_frames_the_plain_read_misses():
    code = codes.new_code()
    label = _label(code).convert("L")
    frames = _frames(label, 0.10, 4, 24)  # 10 % of normal light, 4 px of motion blur
    plain = sum(ScanFlow(KEYS, {code}, enhanced=False).on_frame(f) == code for f in frames)
    path = sum(ScanFlow(KEYS, {code}).on_frame(f) == code for f in frames)
    print(f"10 % light, 4 px blur: plain {plain}/24, low-light path {path}/24")
    assert path > plain and path >= 18
    from io import BytesIO

    dark = Image.open(BytesIO(frames[0]))
    assert scanner.is_dark(dark)  # a dark frame takes the path without the torch


def test_a_bright_frame_with_nothing_to_read_does_not_take_the_path():
    blank = Image.new("RGB", (1280, 720), (200, 200, 200))
    assert not scanner.is_dark(blank)
    t = time.perf_counter()
    assert scanner.decode_frame(blank) == []
    bright_ms = (time.perf_counter() - t) * 1000
    t = time.perf_counter()
    assert scanner.decode_frame(blank, low_light=True) == []  # the torch on: the path runs
    torch_ms = (time.perf_counter() - t) * 1000
    print(f"blank frame: plain {bright_ms:.0f} ms, with the low-light path {torch_ms:.0f} ms")
    assert scanner.decode_frame(b"not an image") == []  # nothing raises on bad input


def test_dark_frames_that_stay_unread_ask_for_light():
    code = codes.new_code()
    flow = ScanFlow(KEYS, {code})
    black = Image.new("RGB", (640, 480), (12, 12, 12))
    from io import BytesIO

    out = BytesIO()
    black.save(out, format="JPEG")
    for _ in range(5):
        assert flow.on_frame(out.getvalue()) is None
    assert not flow.too_dark
    flow.on_frame(out.getvalue())
    assert flow.too_dark  # about 2 s of dark frames: "Tối quá: bật đèn và giữ máy yên trên tem."
    label = BytesIO()
    _label(code).convert("RGB").save(label, format="JPEG")
    assert flow.on_frame(label.getvalue()) == code and not flow.too_dark
