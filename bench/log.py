"""The Merkle log at scale, and what it costs ingest.

    .venv/bin/python bench/log.py [--leaves 1000000] [--backends sqlite,postgres]

1. Appends/s building a log of --leaves leaves through server.log.service.append, in
   transactions of 1,000 (as ingest appends a batch's events in its own transaction).
2. Inclusion-proof latency at that size: p50/p95 of 1,000 proofs for random leaves
   (one indexed query of O(log n) stored nodes, plus hashing), and of consistency
   proofs over HTTP from a real `hoso serve`.
3. Ingest with and without the log, same run (bench/ingest.py's workload, HOSO_MERKLE_LOG=0/1).
Targets (issue 3): the log adds <= 20% to ingest cost; proof p50 < 2 ms at 1M leaves.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx

from bench import ingest
from bench._harness import Server
from server.db.engine import Database
from server.log import service
from shared import merkle

CHUNK = 1000


async def build_and_probe(db_url: str, leaves: int) -> tuple[float, list[float]]:
    db = Database(db_url)
    try:
        t0 = time.perf_counter()
        done = 0
        while done < leaves:
            n = min(CHUNK, leaves - done)
            batch = [hashlib.sha256(f"{done + i}".encode()).digest() for i in range(n)]
            async with db.write() as conn:
                await service.append(conn, batch)
            done += n
            if done % 100_000 == 0:
                print(
                    f"    {done:>9,} leaves, {done / (time.perf_counter() - t0):8.0f} appends/s", flush=True
                )
        rate = leaves / (time.perf_counter() - t0)
        rng = random.Random(1)
        async with db.read() as conn:
            root = await service.root(conn, leaves)
            lat = []
            for _ in range(1000):
                index = rng.randrange(leaves)
                t = time.perf_counter()
                proof = await service.inclusion_proof(conn, index, leaves)
                lat.append((time.perf_counter() - t) * 1000)
                leaf = merkle.leaf_hash(hashlib.sha256(f"{index}".encode()).digest())
                merkle.verify_inclusion(leaf, index, leaves, proof, root)
        return rate, lat
    finally:
        await db.dispose()


def http_consistency(base: str, size: int) -> list[float]:
    rng = random.Random(2)
    lat = []
    with httpx.Client(base_url=base) as http:
        for _ in range(300):
            first = rng.randrange(1, size)
            t = time.perf_counter()
            http.get("/api/v1/log/consistency", params={"first": first, "second": size}).raise_for_status()
            lat.append((time.perf_counter() - t) * 1000)
    return lat


def pct(xs: list[float], p: float) -> float:
    return sorted(xs)[int(p * (len(xs) - 1))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--leaves", type=int, default=1_000_000)
    ap.add_argument("--events", type=int, default=6000, help="events for the with/without ingest comparison")
    ap.add_argument("--backends", default="sqlite,postgres")
    args = ap.parse_args()
    print(f"log: {args.leaves:,} leaves, {os.cpu_count()} cores")
    for backend in args.backends.split(","):
        with Server(backend) as srv:
            srv._stop()  # build the big log with the server stopped, then serve it again
            print(f"  {backend}: building")
            rate, lat = asyncio.run(build_and_probe(srv.db_url, args.leaves))
            srv.start()
            for _ in range(100):
                try:
                    httpx.get(f"{srv.base}/health")
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            http_lat = http_consistency(srv.base, args.leaves)
            print(f"  {backend:<9} appends: {rate:8.0f} leaves/s (transactions of {CHUNK})")
            print(
                f"  {backend:<9} inclusion proof at {args.leaves:,}: p50 {statistics.median(lat):.2f} ms, "
                f"p95 {pct(lat, 0.95):.2f} ms (service: query + hashing)"
            )
            print(
                f"  {backend:<9} consistency proof over HTTP: p50 {statistics.median(http_lat):.2f} ms, "
                f"p95 {pct(http_lat, 0.95):.2f} ms"
            )
    for backend in args.backends.split(","):
        rates = {}
        for flag in ("0", "1", "0", "1"):  # interleaved, best of two each
            os.environ["HOSO_MERKLE_LOG"] = flag
            rate = ingest.run_backend(backend, args.events, 100).rate
            rates[flag] = max(rates.get(flag, 0.0), rate)
        os.environ.pop("HOSO_MERKLE_LOG", None)
        cost = rates["0"] / rates["1"] - 1
        print(
            f"  {backend:<9} ingest without log {rates['0']:6.0f} events/s, "
            f"with log {rates['1']:6.0f} events/s: "
            f"the log adds {cost:+.1%} (target <= 20%)"
        )


if __name__ == "__main__":
    main()
