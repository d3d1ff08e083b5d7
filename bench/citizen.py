"""The citizen page under load, next to /health on the same server; and label sheets.

    .venv/bin/python bench/citizen.py [--requests 3000] [--clients 4] [--labels 1000]
        [--backend sqlite|postgres] [--root OTHER_CHECKOUT]

A real `hoso serve` (one worker, SQLite by default; `--backend postgres`: a fresh PostgreSQL
database, dropped after; `--root`: another checkout's server, the "before"). /t/{code} (a
delivered result with its full two-leg journey) and /health are each hit by --clients
keep-alive clients; figures are requests/s and p99. Target (issue 4): the page does >= 50%
of /health's rate. Then the time to render one A4 PDF of --labels labels through POST
/api/v1/labels.pdf.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx

from bench._harness import Server

PARTY = {
    "name": "Nguyễn Thị Bích",
    "commune": "Phường Pleiku",
    "province": "Tỉnh Gia Lai",
    "lat": 13.98,
    "lon": 108.0,
}


def load(base: str, path: str, total: int, clients: int) -> tuple[float, float]:
    latencies: list[float] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        mine = []
        with httpx.Client(base_url=base) as http:
            for _ in range(n):
                t = time.perf_counter()
                http.get(path).raise_for_status()
                mine.append(time.perf_counter() - t)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker, args=(total // clients,)) for _ in range(clients)]
    t0 = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    elapsed = time.perf_counter() - t0
    latencies.sort()
    return len(latencies) / elapsed, latencies[int(0.99 * (len(latencies) - 1))] * 1000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=3000)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--labels", type=int, default=1000)
    ap.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--root", type=Path, default=None, help="another checkout's server (the before)")
    args = ap.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (shared machine)")
    with Server(args.backend, root=args.root) as srv:
        _, res = srv.delivered_result(PARTY, chain_length=4)
        page = res["tracking_url"].replace("http://127.0.0.1:" + str(srv.port), "")
        weight = len(httpx.get(srv.base + page).content)
        load(srv.base, "/health", 200, args.clients)  # warm up
        rows = []
        for label, path in (
            ("/health", "/health"),
            ("/t/{code}?s=…", page),
            ("/health", "/health"),
            ("/t/{code}?s=…", page),
        ):
            rows.append((label, *load(srv.base, path, args.requests, args.clients)))
        health = max(r for lbl, r, _ in rows if lbl == "/health")
        citizen = max(r for lbl, r, _ in rows if lbl != "/health")
        print(
            f"citizen page ({args.backend}, server {srv.root}): {args.requests} requests x2 rounds, "
            f"{args.clients} clients, page weight {weight} bytes"
        )
        for label, rate, p99 in rows:
            print(f"  {label:<15} {rate:7.0f} req/s  p99 {p99:6.1f} ms")
        print(f"  best: page {citizen:.0f} req/s = {citizen / health:.0%} of /health (target >= 50%)")

        codes = [c for c, _ in srv.shipments(args.labels)]
        t0 = time.perf_counter()
        r = srv.http.post("/api/v1/labels.pdf", headers=srv.auth("clerk"), json={"codes": codes})
        r.raise_for_status()
        elapsed = time.perf_counter() - t0
        print(
            f"  A4 sheet of {len(codes)} labels: {elapsed:.1f} s, {len(codes) / elapsed:.0f} labels/s, "
            f"{len(r.content) / 1e6:.1f} MB"
        )
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
