"""A fake webcam for Chromium: a Y4M file (one 4:2:0 frame, looped by the browser) made with
Pillow from a real label PNG, so the app's camera sees the printed label."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

W, H = 640, 480


def label_frame(png: bytes, width: int = W, height: int = H) -> Image.Image:
    """The label laid on a grey desk, filling most of the frame's height."""
    label = Image.open(io.BytesIO(png)).convert("RGB")
    scale = (height * 0.95) / label.height
    label = label.resize((int(label.width * scale), int(label.height * scale)), Image.LANCZOS)
    frame = Image.new("RGB", (width, height), (120, 120, 120))
    frame.paste(label, ((width - label.width) // 2, (height - label.height) // 2))
    return frame


def write_y4m(frame: Image.Image, path: Path) -> Path:
    ycc = frame.convert("YCbCr")
    y, cb, cr = ycc.split()
    half = (frame.width // 2, frame.height // 2)
    with open(path, "wb") as fh:
        fh.write(f"YUV4MPEG2 W{frame.width} H{frame.height} F30:1 Ip A1:1 C420jpeg\n".encode())
        fh.write(b"FRAME\n")
        fh.write(y.tobytes())
        fh.write(cb.resize(half, Image.BILINEAR).tobytes())
        fh.write(cr.resize(half, Image.BILINEAR).tobytes())
    return path
