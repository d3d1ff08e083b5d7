"""What a clerk waits for at the counter: a reception (POST /console/counter/: checks, the
signature stored, the shipment and its signed event written, the PIN hashed) and its receipt
(phiếu tiếp nhận PDF), against a real `hoso serve` on SQLite, one request at a time.

    .venv/bin/python -m bench.counter [--n 20]
"""

from __future__ import annotations

import argparse
import base64
import io
import re
import statistics
import time
from datetime import timedelta

import httpx
from PIL import Image, ImageDraw

from bench._harness import PASSWORD, Server
from shared.timeutil import utcnow

KS1 = {
    "name": "Đăng ký khai sinh",
    "field": "Tư pháp - Hộ tịch",
    "components": ["Tờ khai đăng ký khai sinh", "Giấy chứng sinh (bản chính)"],
    "fee_vnd": 8_000,
}


def _signature() -> str:
    img = Image.new("RGB", (520, 170), "white")
    ImageDraw.Draw(img).line(
        [(20, 120), (90, 40), (160, 130), (300, 50), (480, 110)], fill=(20, 32, 122), width=3
    )
    out = io.BytesIO()
    img.save(out, format="PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()


def _csrf(html: str) -> str:
    found = re.search(r'name="_csrf_token" value="([^"]+)"', html)
    assert found is not None
    return found.group(1)


def _ms(xs: list[float]) -> str:
    xs = sorted(xs)
    p95 = xs[min(len(xs) - 1, round(0.95 * (len(xs) - 1)))]
    return f"median {statistics.median(xs) * 1000:6.1f} ms, p95 {p95 * 1000:6.1f} ms"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20)
    n = ap.parse_args().n
    with Server("sqlite") as srv:
        srv._cli(["unit", "add", "TTHCC-1", "--name", "Trung tâm PVHCC", "--kind", "one_stop_shop"])
        srv._cli(["user", "add", "shopclerk", "--role", "clerk", "--unit", "TTHCC-1"], stdin=PASSWORD + "\n")
        srv.tokens["shopclerk"] = srv._login("shopclerk")
        srv.http.put(
            "/api/v1/units/TTHCC-1/procedures/KS1", headers=srv.auth("shopclerk"), json=KS1
        ).raise_for_status()
        with httpx.Client(base_url=srv.base, timeout=60) as console:
            page = console.get("/console/login")
            console.post(
                "/console/login",
                data={"username": "clerk", "password": PASSWORD, "_csrf_token": _csrf(page.text)},
            )
            token = _csrf(console.get("/console/counter/?dest=TTHCC-1&procedure=KS1").text)
            form = {
                "_csrf_token": token,
                "dest_unit": "TTHCC-1",
                "procedure_code": "KS1",
                "received": KS1["components"],
                "citizen_name": "Nguyễn Thị Bích",
                "citizen_id_last4": "4821",
                "due_date": (utcnow() + timedelta(days=5)).date().isoformat(),
                "signature_png": _signature(),
                "signature_strokes": '{"w": 520, "h": 170, "strokes": []}',
            }
            receptions, receipts = [], []
            for _ in range(n):
                t0 = time.perf_counter()
                r = console.post("/console/counter/", data=form)
                receptions.append(time.perf_counter() - t0)
                assert r.status_code == 200, r.text[-300:]
                found = re.search(r"/console/counter/(\d{13})/receipt.pdf", r.text)
                pin = re.search(r'id="pin">(\d{6})<', r.text)
                assert found is not None and pin is not None
                t0 = time.perf_counter()
                pdf = console.post(
                    f"/console/counter/{found.group(1)}/receipt.pdf",
                    data={"_csrf_token": token, "pin": pin.group(1)},
                )
                receipts.append(time.perf_counter() - t0)
                assert pdf.content.startswith(b"%PDF")
    print(f"counter reception (POST /console/counter/), {n} one after another: {_ms(receptions)}")
    print(f"phiếu tiếp nhận PDF with the PIN checked, {n}: {_ms(receipts)}")


if __name__ == "__main__":
    main()
