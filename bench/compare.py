"""Two servers' ingest, turn about: is B faster than A, beyond this machine's drift?

    .venv/bin/python bench/compare.py --a ../old-checkout [--b .] [--a-env K=V ...] [--b-env K=V ...]
        [--events 40000] [--turn 10] [--backend sqlite|postgres]

Both `hoso serve` processes (on SQLite by default, or `--backend postgres` on the local
PostgreSQL, each with its own fresh database) are up at once; one phone syncs `--turn`
batches of 100 to A, then as many to B, and so on, B first every other turn. A single
bench/ingest.py run per side moves by 20 % and more with the machine's speed; measured
turn about, the same code on both sides differs by 1-3 %.
`--a`/`--b`: a checkout of this repository (`git worktree add ../old <commit>`).
"""

from __future__ import annotations

import argparse
import http.client
import statistics
import sys
import time
from pathlib import Path

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._harness import Server
from bench.ingest import CHAIN, interleave, post_batch


def _env(pairs: list[str]) -> dict[str, str]:
    return dict(p.split("=", 1) for p in pairs)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--a", type=Path, default=Path("."), help="checkout A (default: this one)")
    ap.add_argument("--b", type=Path, default=Path("."), help="checkout B (default: this one)")
    ap.add_argument("--a-env", nargs="*", default=[], metavar="K=V", help="extra environment for A")
    ap.add_argument("--b-env", nargs="*", default=[], metavar="K=V", help="extra environment for B")
    ap.add_argument("--events", type=int, default=40_000)
    ap.add_argument("--turn", type=int, default=10, help="batches per turn")
    ap.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    args = ap.parse_args()

    sides = {}
    with (
        Server(args.backend, _env(args.a_env), args.a.resolve()) as a,
        Server(args.backend, _env(args.b_env), args.b.resolve()) as b,
    ):
        for name, srv in (("A", a), ("B", b)):
            chains = [srv.chain(code, head, CHAIN) for code, head in srv.shipments(args.events // CHAIN)]
            bodies = [msgspec.json.encode({"events": batch}) for batch in interleave(chains, 100)]
            headers = {**srv.auth("courier"), "content-type": "application/json"}
            sides[name] = (bodies, headers, http.client.HTTPConnection("127.0.0.1", srv.port), [])
        n = len(sides["A"][0])
        for turn, start in enumerate(range(0, n, args.turn)):
            for name in ("A", "B") if turn % 2 == 0 else ("B", "A"):
                bodies, headers, conn, times = sides[name]
                t = time.perf_counter()
                for body in bodies[start : start + args.turn]:
                    error = post_batch(conn, body, headers)
                    assert error is None, error
                times.append(time.perf_counter() - t)
    ta, tb = sides["A"][3], sides["B"][3]
    ratios = [y / x for x, y in zip(ta, tb, strict=True)]
    events = args.events // CHAIN * CHAIN
    print(f"{args.backend}, {args.turn} batches of 100 a turn")
    print(f"A {args.a} {' '.join(args.a_env)}: {events / sum(ta):,.0f} events/s")
    print(f"B {args.b} {' '.join(args.b_env)}: {events / sum(tb):,.0f} events/s")
    print(
        f"B's time / A's: {sum(tb) / sum(ta):.3f} in all, median turn {statistics.median(ratios):.3f}; "
        f"B faster in {sum(r < 1 for r in ratios)} of {len(ratios)} turns"
    )


if __name__ == "__main__":
    main()
