"""Other requests' latency while clients send wrong passwords, against the same without them.

    .venv/bin/python bench/auth.py [--rounds 6] [--requests 200] [--attackers 3] [--unlimited]
                                   [--root OTHER_CHECKOUT]

A real `hoso serve` (one worker, SQLite). One client measures GET /health and an
authenticated GET /api/v1/shipments/{code}, one request after another; turn about, it does so
alone and while --attackers clients each post wrong passwords to POST /api/v1/auth/token
as fast as they are answered. Figures: p50 and p99 of the measured requests in each
condition, and how many wrong-password answers (401 checked by argon2, 429 refused before)
the attackers got. --unlimited raises the login limits out of reach, so every wrong password
costs an argon2 check: what the event loop sees when argon2 runs in threads. --root runs
another checkout's server (e.g. one from before this change) the same way.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx

from bench._harness import Server


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[int(q * (len(ordered) - 1))] * 1000


def measure(srv: Server, paths: list[tuple[str, dict[str, str]]], n: int) -> list[float]:
    out = []
    with httpx.Client(base_url=srv.base, timeout=60) as http:
        for i in range(n):
            path, headers = paths[i % len(paths)]
            t = time.perf_counter()
            http.get(path, headers=headers).raise_for_status()
            out.append(time.perf_counter() - t)
    return out


def attack(base: str, stop: threading.Event, answers: Counter[int], lock: threading.Lock, who: int) -> None:
    with httpx.Client(base_url=base, timeout=60) as http:
        while not stop.is_set():
            r = http.post("/api/v1/auth/token", json={"username": "courier", "password": f"wrong-{who}"})
            with lock:
                answers[r.status_code] += 1


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--attackers", type=int, default=3)
    ap.add_argument("--unlimited", action="store_true")
    ap.add_argument("--root", type=Path, default=None)
    args = ap.parse_args()
    env = {}
    if args.unlimited:
        env = {
            "HOSO_LOGIN_FAILURES_PER_ACCOUNT": "1000000000",
            "HOSO_LOGIN_FAILURES_PER_CLIENT": "1000000000",
        }
    with Server("sqlite", extra_env=env, root=args.root) as srv:
        ((code, _head),) = srv.shipments(1)
        paths = [("/health", {}), (f"/api/v1/shipments/{code}", srv.auth("dispatcher"))]
        measure(srv, paths, 50)  # warm up
        quiet: list[float] = []
        loud: list[float] = []
        answers: Counter[int] = Counter()
        lock = threading.Lock()
        for _ in range(args.rounds):
            quiet += measure(srv, paths, args.requests)
            stop = threading.Event()
            threads = [
                threading.Thread(target=attack, args=(srv.base, stop, answers, lock, i))
                for i in range(args.attackers)
            ]
            for th in threads:
                th.start()
            time.sleep(0.2)
            loud += measure(srv, paths, args.requests)
            stop.set()
            for th in threads:
                th.join()
    mode = "limits out of reach" if args.unlimited else "default login limits"
    print(f"server: {args.root or 'this checkout'}, {mode}, {args.rounds} rounds turn about")
    print(f"{'condition':<34} {'p50 ms':>8} {'p99 ms':>8} {'requests':>9}")
    print(f"{'alone':<34} {_pct(quiet, 0.5):8.1f} {_pct(quiet, 0.99):8.1f} {len(quiet):9d}")
    label = f"with {args.attackers} wrong-password clients"
    print(f"{label:<34} {_pct(loud, 0.5):8.1f} {_pct(loud, 0.99):8.1f} {len(loud):9d}")
    print(f"p50 ratio: {_pct(loud, 0.5) / _pct(quiet, 0.5):.1f}x")
    print("wrong-password answers:", dict(sorted(answers.items())))


if __name__ == "__main__":
    main()
