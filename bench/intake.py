"""Intake against a real `hoso serve` (issue 17): what a registration by API key costs, a
repeat of it, twenty identical requests at once, and a batch file through the console.

    .venv/bin/python bench/intake.py [--backend sqlite|postgres] [--n 100] [--rows 500]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench._harness import PASSWORD, Server
from shared.timeutil import utcnow


def _body(i: int) -> dict:
    return {
        "kind": "result",
        "dossier_ref": f"000.00.12.H21-BENCH-{i:06d}",
        "procedure": "Cấp đổi Giấy chứng nhận quyền sử dụng đất",
        "due_at": "2026-12-20T17:00:00+07:00",
        "sender": {"name": "Bưu cục"},
        "recipient": {"name": "Nguyễn Thị Bích", "phone": "0905123456", "address": "12 Trần Hưng Đạo"},
    }


def _ms(xs: list[float]) -> str:
    xs = sorted(xs)
    return f"p50 {statistics.median(xs) * 1000:6.1f} ms  p95 {xs[int(len(xs) * 0.95) - 1] * 1000:6.1f} ms"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backend", default="sqlite", choices=["sqlite", "postgres"])
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--rows", type=int, default=500)
    args = ap.parse_args()
    with Server(args.backend) as srv:
        key = subprocess.run(
            [sys.executable, "-m", "server.cli", "apikey", "create", "BC-1"],
            env=srv.env,
            cwd=srv.root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        h = {"X-API-Key": key}
        first, again, token = [], [], []
        for i in range(args.n):
            t = time.perf_counter()
            r = srv.http.post("/api/v1/shipments", json=_body(i), headers=h)
            first.append(time.perf_counter() - t)
            assert r.status_code == 201, r.text
            t = time.perf_counter()
            r = srv.http.post("/api/v1/shipments", json=_body(i), headers=h)
            again.append(time.perf_counter() - t)
            assert r.status_code == 200, r.text
            t = time.perf_counter()
            r = srv.http.post("/api/v1/shipments", json=_body(10**5 + i), headers=srv.auth("clerk"))
            token.append(time.perf_counter() - t)
            assert r.status_code == 201, r.text
        print(f"{args.backend}: {args.n} registrations each")
        print(f"  clerk token, new           {_ms(token)}")
        print(f"  API key, new               {_ms(first)}")
        print(f"  API key, the same again    {_ms(again)}")

        async def burst() -> float:
            async with httpx.AsyncClient(base_url=srv.base, timeout=60) as c:
                t = time.perf_counter()
                rs = await asyncio.gather(
                    *(c.post("/api/v1/shipments", json=_body(999_999), headers=h) for _ in range(20))
                )
                assert sorted(r.status_code for r in rs) == [200] * 19 + [201]
                return time.perf_counter() - t

        print(f"  20 identical at once       {asyncio.run(burst()) * 1000:6.0f} ms, one shipment")
        due = (utcnow() + timedelta(days=5)).strftime("%d/%m/%Y")
        lines = ["Mã hồ sơ;Họ tên công dân;Địa chỉ;Hạn trả"]
        lines += [f"HS-FILE-{i:06d};Nguyễn Văn {i};{i} Lê Lợi;{due}" for i in range(args.rows)]
        body = ("\ufeff" + "\r\n".join(lines) + "\r\n").encode()
        with httpx.Client(base_url=srv.base, timeout=600) as web:
            page = web.get("/console/login")
            csrf = re.search(r'name="_csrf_token" value="([^"]+)"', page.text).group(1)
            web.post("/console/login", data={"username": "clerk", "password": PASSWORD, "_csrf_token": csrf})
            page = web.get("/console/intake")
            csrf = re.search(r'name="_csrf_token" value="([^"]+)"', page.text).group(1)
            for label in ("new", "again"):
                t = time.perf_counter()
                r = web.post("/console/intake", files={"file": ("f.csv", body)}, data={"_csrf_token": csrf})
                took = time.perf_counter() - t
                assert r.status_code == 200, r.text[-300:]
                done = re.search(r'id="intake-done">([^<]+)<', r.text).group(1)
                print(f"  file of {args.rows} rows, {label:5}    {took:6.2f} s  ({done.strip()})")


if __name__ == "__main__":
    main()
