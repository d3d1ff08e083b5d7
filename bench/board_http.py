"""The board page over HTTP at scale, turn about with /health (issue 16).

    .venv/bin/python bench/console.py seed --shipments 1000000     # the data (PostgreSQL)
    .venv/bin/python bench/board_http.py [--rounds 20] [--root OTHER_CHECKOUT]
    .venv/bin/python bench/board_http.py --rounds 40 --path '/console/board/rows?at_risk=1'

Starts `hoso serve` (one worker) on the seeded database (`hoso_bench_console`), signs in to the
console as `admin` (every unit; may assign), then for each round fetches the board with each of
bench/console.py's filter sets, each fetch followed by one GET /health, and prints the page's
p50/p95 and size beside /health's. `--root` runs another checkout's server on the same data
(the "before" figure). `--path` (repeatable) fetches those paths instead of the filter sets,
each with its own p50/p95. HOSO_BENCH_CONSOLE_DB names the database (bench/console.py).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._harness import PG_DEFAULT, ROOT, free_port
from bench.console import BOARD_FILTERS, _url


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@contextlib.contextmanager
def serve(db_url: str, root: Path):
    with tempfile.TemporaryDirectory(prefix="hoso-board-") as data:
        port = free_port()
        env = {**os.environ, "HOSO_DATA_DIR": data, "HOSO_DATABASE_URL": db_url}
        proc = subprocess.Popen(
            [sys.executable, "-m", "server.cli", "serve", "--port", str(port)],
            env=env,
            cwd=root,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                with contextlib.suppress(httpx.TransportError):
                    if httpx.get(f"{base}/health").status_code == 200:
                        break
                time.sleep(0.2)
            yield base, proc.pid
        finally:
            proc.terminate()
            proc.wait(timeout=20)


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--root", type=Path, default=ROOT)
    p.add_argument("--pg-url", default=PG_DEFAULT)
    p.add_argument("--path", action="append", default=[], help="a page to fetch instead of the filter sets")
    a = p.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (shared machine)")
    with serve(_url(a.pg_url), a.root) as (base, pid), httpx.Client(base_url=base, timeout=60) as c:
        login = c.get("/console/login").text
        token = re.search(r'name="_csrf_token" value="([^"]+)"', login).group(1)
        r = c.post(
            "/console/login",
            data={"username": "admin", "password": "bench-password", "next": "", "_csrf_token": token},
        )
        assert r.status_code in (200, 303), r.status_code
        queries = list(a.path)
        for f in [] if a.path else BOARD_FILTERS:
            f = {k: ("23" if v == "COURIER" else ("1" if v is True else v)) for k, v in f.items()}
            queries.append("/console/?" + urlencode(f))
        for q in queries[:3]:  # warm the pool and the caches
            c.get(q)
        page_ms: list[float] = []
        health_ms: list[float] = []
        per_path: dict[str, list[float]] = {q: [] for q in queries}
        sizes: dict[str, tuple[int, int]] = {}
        for _ in range(a.rounds):
            for q in queries:
                t0 = time.perf_counter()
                r = c.get(q)
                page_ms.append((time.perf_counter() - t0) * 1000)
                per_path[q].append(page_ms[-1])
                assert r.status_code == 200, (q, r.status_code)
                sizes[q] = (len(r.content), len(re.findall(r'<tr id="s\d{13}"', r.text)))
                t0 = time.perf_counter()
                c.get("/health")
                health_ms.append((time.perf_counter() - t0) * 1000)
        biggest = max(sizes.items(), key=lambda kv: kv[1][0])
        print(f"server: {a.root}")
        print(
            f"board page  p50 {statistics.median(page_ms):7.1f} ms  p95 {_pct(page_ms, 0.95):7.1f} ms"
            f"   ({len(page_ms)} fetches, {len(queries)} filter sets)"
        )
        if a.path:
            for q, ms in per_path.items():
                print(
                    f"  {q}  p50 {statistics.median(ms):7.1f} ms  p95 {_pct(ms, 0.95):7.1f} ms"
                    f"  {sizes[q][0]:,} bytes, {sizes[q][1]} rows"
                )
        print(f"/health     p50 {statistics.median(health_ms):7.1f} ms  p95 {_pct(health_ms, 0.95):7.1f} ms")
        print(f"largest page {biggest[1][0] / 1024:.0f} KiB with {biggest[1][1]} rows ({biggest[0]})")
        print(f"server RSS after the runs: {rss_mib(pid):.0f} MiB")
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
