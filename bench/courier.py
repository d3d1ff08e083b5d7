"""The courier app's costs that a courier feels (issue 5), each against its target.

    .venv/bin/python bench/courier.py [--frames 60] [--writes 300] [--events 1000]

- decode: one 1280×720 JPEG camera frame holding a real label from the server → the
  verified shipment code (JPEG decode + zxing-cpp + label signature check), as the scan
  screen does it. Target < 50 ms per frame.
- outbox write: one signed pickup event with its signature PNG and strokes, into the
  SQLite (WAL, synchronous=FULL) outbox. Target < 10 ms.
- sync: 1,000 queued events (a pickup and a failed attempt on 500 shipments, one signature
  attachment) pushed to a local `hoso serve` on SQLite. Target < 5 s.
- low light and motion (issue 19 item 10): frames of a real label through a simple camera
  model — scene light at 100 %, 25 % or 10 % of normal with the exposure fixed, so the frame
  is darker and noisier (linear light, Poisson shot noise at a full well of 400 electrons,
  3 e⁻ read noise, sRGB gamma, JPEG at quality 92 as the browser's camera gives it), and a
  horizontal motion blur of 0, 4 or 8 px (a QR module is 3.5–5.5 px here: the label 380–600
  px high in a 1280×720 frame, turned −10…10°, placed anywhere across) — decoded by the
  scan screen's own ScanFlow (signature check included), once as the plain read and once
  with the low-light path (the torch on, or a dark frame: contrast stretch + unsharp mask,
  then the global-histogram binarizer; courier_app/scanner.py). A trial is 3 frames of one
  pose with fresh noise and ±3 px of hand shake; "within 3" counts trials with a decode in
  any of them. Target: ≥ 95 % within 3 frames at 25 %.

    .venv/bin/python bench/courier.py --only low-light [--trials 40]

Taps from scan to a completed delivery are counted by tests/e2e/test_courier_browser.py.
"""

from __future__ import annotations

import argparse
import io
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._harness import Server
from courier_app.api import ApiClient
from courier_app.flows.scan import ScanFlow
from courier_app.flows.signature import SignaturePad
from courier_app.outbox import Attachment, Outbox
from courier_app.sync import Syncer
from shared.events import new_event_id, sign_event
from shared.timeutil import to_wire, utcnow


def pct(values: list[float], p: float) -> float:
    return sorted(values)[min(len(values) - 1, int(len(values) * p))]


def frame_with_label(png: bytes, angle: float) -> bytes:
    label = Image.open(io.BytesIO(png)).convert("RGB")
    scale = 600 / label.height
    label = label.resize((int(label.width * scale), 600), Image.LANCZOS).rotate(
        angle, expand=True, fillcolor=(90,) * 3
    )
    frame = Image.new("RGB", (1280, 720), (110, 105, 100))
    frame.paste(label, ((1280 - label.width) // 2, (720 - label.height) // 2))
    out = io.BytesIO()
    frame.save(out, format="JPEG", quality=85)
    return out.getvalue()


def signature() -> SignaturePad:
    pad = SignaturePad(360, 180)
    for i in range(60):
        (pad.start if i == 0 else pad.extend)(20 + i * 5, 90 + 40 * ((i % 10) / 10), i * 16)
    return pad


def bench_decode(srv: Server, frames: int) -> None:
    code, _ = srv.shipments(1)[0]
    png = srv.http.get(f"/api/v1/shipments/{code}/label.png", headers=srv.auth("clerk")).content
    label_key = httpx.get(f"{srv.base}/api/v1/keys").json()["label_public_key"]
    for angle in (0, 12):
        jpeg = frame_with_label(png, angle)
        flow = ScanFlow([label_key], {code})
        times = []
        for _ in range(frames):
            t = time.perf_counter()
            assert flow.on_frame(jpeg) == code
            times.append((time.perf_counter() - t) * 1000)
        p95 = pct(times, 0.95)
        print(
            f"decode 1280x720 frame, label rotated {angle:>2}°: median {statistics.median(times):.1f} ms, "
            f"p95 {p95:.1f} ms  (target < 50 ms: {'met' if p95 < 50 else 'NOT met'})"
        )


FULL_WELL_E = 400.0  # electrons at normal light for a white pixel (a small, cheap sensor)
READ_NOISE_E = 3.0
FRAME = (1280, 720)


def _pose(rng: random.Random) -> tuple[float, float, float, float]:
    """(label height px, angle °, dx, dy) of the label in the frame."""
    return rng.uniform(380, 600), rng.uniform(-10, 10), rng.uniform(-120, 120), rng.uniform(-20, 20)


def _scene(label: Image.Image, pose: tuple[float, float, float, float]) -> np.ndarray:
    height, angle, dx, dy = pose
    scaled = label.resize((int(label.width * height / label.height), int(height)), Image.BILINEAR)
    turned = scaled.rotate(angle, expand=True, fillcolor=100, resample=Image.BILINEAR)
    frame = Image.new("L", FRAME, 110)
    frame.paste(turned, (int((FRAME[0] - turned.width) / 2 + dx), int((FRAME[1] - turned.height) / 2 + dy)))
    return np.asarray(frame, dtype=np.float32) / 255.0


def camera_frame(scene: np.ndarray, light: float, blur_px: int, noise: np.random.Generator) -> bytes:
    """What the phone's camera gives for `scene` (sRGB 0..1) under `light` × normal light."""
    linear = scene**2.2 * light
    if blur_px:
        padded = np.cumsum(np.pad(linear, ((0, 0), (blur_px, 0)), mode="edge"), axis=1)
        linear = (padded[:, blur_px:] - padded[:, :-blur_px]) / blur_px
    electrons = noise.poisson(np.clip(linear * FULL_WELL_E, 0, None)).astype(np.float32)
    electrons += noise.normal(0, READ_NOISE_E, electrons.shape).astype(np.float32)
    srgb = np.clip(electrons / FULL_WELL_E, 0, 1) ** (1 / 2.2) * 255
    out = io.BytesIO()
    Image.fromarray(srgb.astype(np.uint8), "L").convert("RGB").save(out, format="JPEG", quality=92)
    return out.getvalue()


def bench_low_light(srv: Server, trials: int) -> None:
    code, _ = srv.shipments(1)[0]
    png = srv.http.get(f"/api/v1/shipments/{code}/label.png", headers=srv.auth("clerk")).content
    label_key = httpx.get(f"{srv.base}/api/v1/keys").json()["label_public_key"]
    label = Image.open(io.BytesIO(png)).convert("L")
    print(f"low light and motion: {trials} trials × 3 frames per condition (1280×720 JPEG)")
    print("  light  blur | plain: per frame  within 3   ms | low-light path: per frame  within 3   ms")
    for light, blur in ((1.0, 0), (0.25, 0), (0.10, 0), (1.0, 4), (0.25, 4), (0.10, 4), (0.25, 8), (0.10, 8)):
        row = [f"  {light:>4.0%}  {blur:>2} px"]
        for enhanced in (False, True):
            rng, noise = random.Random(19), np.random.default_rng(19)  # the same frames for both
            frames_ok = trials_ok = 0
            times: list[float] = []
            for _ in range(trials):
                pose = _pose(rng)
                hit = False
                for _ in range(3):
                    jitter = (pose[0], pose[1], pose[2] + rng.uniform(-3, 3), pose[3] + rng.uniform(-3, 3))
                    jpeg = camera_frame(_scene(label, jitter), light, blur, noise)
                    flow = ScanFlow([label_key], {code}, enhanced=enhanced)
                    t = time.perf_counter()
                    found = flow.on_frame(jpeg) == code
                    times.append((time.perf_counter() - t) * 1000)
                    frames_ok += found
                    hit = hit or found
                trials_ok += hit
            median = statistics.median(times)
            row.append(f"{frames_ok / (3 * trials):>9.0%} {trials_ok / trials:>9.0%} {median:>5.0f}")
        print(row[0] + " |       " + row[1] + " |                " + row[2])
    print("  target: ≥ 95 % of trials decoded within 3 frames at 25 % light")


def bench_outbox(srv: Server, writes: int, tmp: Path) -> None:
    box = Outbox(tmp / "bench-outbox.db")
    pad = signature()
    attachments = [Attachment(*a) for a in pad.attachments()]
    times = []
    for i in range(writes):
        now = to_wire(utcnow())
        event = sign_event(
            srv.device,
            id=new_event_id(),
            shipment="1000000000009",
            type="picked_up",
            occurred_at=now,
            actor=f"courier:{srv.courier_id}",
            prev=None,
            location={"lat": 13.98, "lon": 108.0, "accuracy_m": 8.0, "fix_at": now},
            counterparty={"name": "Nguyễn Văn A", "role": "citizen", "id_last4": "1234"},
            attachments={"signature": attachments[0].sha256, "photos": []},
            data={"components": ["Tờ khai"], "fee_vnd": 8000, "n": i},
        )
        t = time.perf_counter()
        box.put(event, attachments)
        times.append((time.perf_counter() - t) * 1000)
    box.close()
    print(
        f"outbox write (event + signature PNG + strokes, synchronous=FULL): median "
        f"{statistics.median(times):.2f} ms, p95 {pct(times, 0.95):.2f} ms  "
        f"(target < 10 ms: {'met' if pct(times, 0.95) < 10 else 'NOT met'})"
    )


def bench_sync(srv: Server, events: int, tmp: Path) -> None:
    box = Outbox(tmp / "bench-sync.db")
    pad = signature()
    png, strokes = (Attachment(*a) for a in pad.attachments())
    for code, head in srv.shipments(events // 2):
        now = to_wire(utcnow())
        loc = {"lat": 13.98, "lon": 108.0, "accuracy_m": 8.0, "fix_at": now}
        first = sign_event(
            srv.device,
            id=new_event_id(),
            shipment=code,
            type="picked_up",
            occurred_at=now,
            actor=f"courier:{srv.courier_id}",
            prev=head,
            location=loc,
            counterparty={"name": "Nguyễn Văn A", "role": "citizen", "id_last4": "1234"},
            attachments={"signature": png.sha256, "photos": []},
            data={"components": ["Tờ khai"], "fee_vnd": 50000, "signature_strokes": strokes.sha256},
        )
        box.put(first, [png, strokes])
        box.put(
            sign_event(
                srv.device,
                id=new_event_id(),
                shipment=code,
                type="delivery_failed",
                occurred_at=now,
                actor=f"courier:{srv.courier_id}",
                prev=first.hash,
                location=loc,
                data={"reason": "not_home"},
            )
        )
    with httpx.Client(base_url=srv.base, timeout=60) as http:
        t = time.perf_counter()
        report = Syncer(box, ApiClient(http, lambda: srv.tokens["courier"])).run_until_empty(deadline_s=120)
        elapsed = time.perf_counter() - t
    assert report.accepted == events and box.waiting() == 0, report
    print(
        f"sync {events} queued events (+{report.uploaded} attachments) to a local server: {elapsed:.2f} s, "
        f"{events / elapsed:,.0f} events/s  (target < 5 s: {'met' if elapsed < 5 else 'NOT met'})"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--writes", type=int, default=300)
    ap.add_argument("--events", type=int, default=1000)
    ap.add_argument("--trials", type=int, default=40, help="low light: trials of 3 frames per condition")
    ap.add_argument("--only", choices=("decode", "low-light", "outbox", "sync"), default=None)
    args = ap.parse_args()
    with Server("sqlite") as srv, tempfile.TemporaryDirectory() as tmp:
        if args.only in (None, "decode"):
            bench_decode(srv, args.frames)
        if args.only in (None, "low-light"):
            bench_low_light(srv, args.trials)
        if args.only in (None, "outbox"):
            bench_outbox(srv, args.writes, Path(tmp))
        if args.only in (None, "sync"):
            bench_sync(srv, args.events, Path(tmp))


if __name__ == "__main__":
    main()
