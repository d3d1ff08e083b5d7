# ruff: noqa: E501  (SQL and report lines read better long)
"""The log's read routes over HTTP at scale, each turn about with /health (issue 16).

    .venv/bin/python bench/console.py seed --shipments 1000000   # events to make leaves of
    .venv/bin/python bench/log_http.py prepare [--leaves 1000000]
    .venv/bin/python bench/log_http.py run [--rounds 500] [--root OTHER_CHECKOUT]

`prepare` turns the first --leaves events of `hoso_bench_console` into a Merkle log: sets
their log_index, computes every stored node in Python (shared/merkle.py) and COPYs them into
log_nodes (emptied first). `run` starts `hoso serve` on that database and, round after round,
fetches each route, each fetch followed by one GET /health on the same keep-alive connection:
inclusion of a random leaf, consistency between random sizes, the JSON head, the checkpoint,
a random full level-0 tile, a random partial-free level-1 tile; and prints each route's
p50/p95 beside /health's and the ratio of medians (a single client's rate ratio).
`--root` runs another checkout's server on the same data (the "before"; it has no tiles).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._harness import PG_DEFAULT, ROOT
from bench.board_http import _pct, rss_mib, serve
from bench.console import _url
from shared import merkle


def prepare(pg_url: str, leaves: int) -> None:
    import psycopg

    t0 = time.perf_counter()
    with psycopg.connect(_url(pg_url).replace("postgresql+asyncpg://", "postgresql://")) as c:
        c.execute("UPDATE custody_events SET log_index = NULL WHERE log_index IS NOT NULL")
        c.execute("TRUNCATE log_nodes, tree_heads CASCADE")
        c.execute(
            "WITH first AS (SELECT id, row_number() OVER (ORDER BY id) - 1 AS i FROM custody_events "
            "ORDER BY id LIMIT %s) UPDATE custody_events e SET log_index = first.i FROM first WHERE e.id = first.id",
            (leaves,),
        )
        hashes = [
            bytes.fromhex(h)
            for (h,) in c.execute(
                "SELECT hash FROM custody_events WHERE log_index IS NOT NULL ORDER BY log_index"
            )
        ]
        print(f"  {len(hashes):,} leaves marked in {time.perf_counter() - t0:.0f} s")
        nodes = merkle.append_nodes(0, [merkle.leaf_hash(h) for h in hashes], lambda lv, i: b"")
        with c.cursor().copy("COPY log_nodes (level, idx, hash) FROM STDIN") as cp:
            for (lv, i), h in nodes.items():
                cp.write_row((lv, i, h))
        # the log's head row (size, right edge) as an append would have left it: it works on
        # from there (a database from before log_head gets it from `hoso db upgrade`)
        size = len(hashes)
        edge = b"".join(nodes[key] for key in merkle.right_edge(size))
        if c.execute("SELECT to_regclass('log_head') IS NOT NULL").fetchone()[0]:
            c.execute("UPDATE log_head SET size = %s, edge = %s WHERE id = 1", (size, edge))
        c.commit()
        c.execute("ANALYZE log_nodes")
        c.execute("ANALYZE custody_events")
    print(f"  {len(nodes):,} nodes stored; {time.perf_counter() - t0:.0f} s in all")


def run(pg_url: str, rounds: int, root: Path) -> None:
    import psycopg

    with psycopg.connect(_url(pg_url).replace("postgresql+asyncpg://", "postgresql://")) as c:
        n = c.execute("SELECT count(*) FROM log_nodes WHERE level = 0").fetchone()[0]
        sample = [
            h
            for (h,) in c.execute(
                "SELECT hash FROM custody_events WHERE log_index IS NOT NULL ORDER BY random() LIMIT 2000"
            )
        ]
    rng = random.Random(16)
    print(
        f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (shared machine); {n:,} leaves"
    )

    def path(i: int) -> str:
        s = f"{i % 1000:03d}"
        i //= 1000
        while i:
            s = f"x{i % 1000:03d}/" + s
            i //= 1000
        return s

    routes = {
        "inclusion": lambda: f"/api/v1/log/inclusion?leaf={rng.choice(sample)}",
        "consistency": lambda: "/api/v1/log/consistency?first={}&second={}".format(
            *sorted(rng.sample(range(1, n + 1), 2))
        ),
        "head": lambda: "/api/v1/log/head",
        "checkpoint": lambda: "/api/v1/log/checkpoint",
        "tile 0": lambda: f"/api/v1/log/tile/0/{path(rng.randrange(n // 256))}",
        "tile 1": lambda: f"/api/v1/log/tile/1/{path(rng.randrange(max(1, n // 65536)))}",
    }
    with serve(_url(pg_url), root) as (base, pid), httpx.Client(base_url=base, timeout=60) as c:
        for make in routes.values():  # warm: the first head signs and stores one
            c.get(make())
        times: dict[str, list[float]] = {k: [] for k in routes}
        health: dict[str, list[float]] = {k: [] for k in routes}
        status: dict[str, int] = {}
        for _ in range(rounds):
            for name, make in routes.items():
                url = make()
                t0 = time.perf_counter()
                r = c.get(url)
                times[name].append((time.perf_counter() - t0) * 1000)
                status[name] = r.status_code
                t0 = time.perf_counter()
                c.get("/health")
                health[name].append((time.perf_counter() - t0) * 1000)
        print(f"server: {root}")
        for name in routes:
            ms, hs = times[name], health[name]
            print(
                f"  {name:<12} p50 {statistics.median(ms):6.2f} ms  p95 {_pct(ms, 0.95):6.2f} ms  (HTTP {status[name]})"
                f"   /health p50 {statistics.median(hs):6.2f} ms  p95 {_pct(hs, 0.95):6.2f} ms"
                f"   rate ratio {statistics.median(hs) / statistics.median(ms):.2f}"
            )
        print(f"server RSS after the runs: {rss_mib(pid):.0f} MiB")
    print(f"load average after: {os.getloadavg()[0]:.1f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=["prepare", "run"])
    p.add_argument("--leaves", type=int, default=1_000_000)
    p.add_argument("--rounds", type=int, default=500)
    p.add_argument("--root", type=Path, default=ROOT)
    p.add_argument("--pg-url", default=PG_DEFAULT)
    a = p.parse_args()
    if a.command == "prepare":
        prepare(a.pg_url, a.leaves)
    else:
        run(a.pg_url, a.rounds, a.root)


if __name__ == "__main__":
    main()
