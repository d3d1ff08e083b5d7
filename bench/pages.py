"""A 20-page dossier from phone photos (1600×1200 JPEG) bound into one PDF (issue 18, item 4).

    .venv/bin/python -m bench.pages [--pages 20] [--runs 3]

Times server.pages.service.bind_images (every page checked, img2pdf, then OCR in Vietnamese
by the ocrmypdf CLI over tesseract) with and without OCR. Targets: < 10 s with OCR, < 2 s
without. The photos are synthetic: Vietnamese text drawn by Pillow in DejaVu Sans on a sheet
lying on a grey desk (tests/pages_fixture.py).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from server.pages import service
from tests.pages_fixture import jpeg, page_image


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pages", type=int, default=20)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    photos = [(jpeg(page_image(n)), "image/jpeg") for n in range(1, args.pages + 1)]
    size = sum(len(b) for b, _ in photos)
    print(f"{args.pages} pages, 1600×1200 JPEG, {size / 1e6:.1f} MB in all; {os.cpu_count()} CPUs")
    print(f"OCR available: {service.ocr_available()}  (load average {os.getloadavg()[0]:.1f})")
    for ocr in (False, True):
        times = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            bound = service.bind_images(photos, ocr=ocr)
            times.append(time.perf_counter() - t0)
        target = 10.0 if ocr else 2.0
        med = statistics.median(times)
        print(
            f"{'with OCR   ' if ocr else 'without OCR'}: median {med:.2f} s, runs "
            + ", ".join(f"{t:.2f}" for t in times)
            + f" (target < {target:.0f} s: {'met' if med < target else 'MISSED'}); "
            f"PDF {len(bound.pdf) / 1e6:.1f} MB, ocr={bound.ocr}"
        )


if __name__ == "__main__":
    main()
