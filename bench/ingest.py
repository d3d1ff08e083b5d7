"""Ingest throughput of POST /api/v1/events against the irreducible per-event cost.

    .venv/bin/python bench/ingest.py [--events 10000] [--batch 100] [--backends sqlite,postgres]
                                     [--processes 1] [--clients 1] [--root ../before]
                                     [--cpus] [--lock-sample MS]

For each backend: real `hoso serve` processes (`--processes`, default 1; each one uvicorn
worker and the helper processes it starts to check signatures) on one fresh database;
the client pre-signs every event, then `--clients` phones (default: one per process)
post batches of 100, each phone one batch after another over keep-alive connections,
its requests spread round-robin over the processes (as a load balancer would).
Baseline, in the same run: RFC 8785 canonical hash + Ed25519 verify of the same events
on one core, with no HTTP and no database. The two are measured turn about: after every
10 batches per phone synced, the baseline checks those batches' events. This machine's
CPU speed drifts by 20 % and more from one minute to the next; a baseline taken right
before and right after the whole sync put single runs of the same code anywhere from
34 % to 54 %. Targets (issue 2): >= 5,000 events/s on SQLite, and >= 40% of the
baseline; issue 16: PostgreSQL >= 40 % with one process, and 1.6 times that with two.

Also reported: the CPU seconds per 100 events of the server processes (the `hoso serve`
worker, its signature helpers), of the database's backends (PostgreSQL, from
pg_stat_activity), and of the bench client's own sync (not its baseline), from /proc;
and each `hoso serve` process's resident memory before and after the sync. `--cpus`: the
same CPU time as cores kept busy while syncing (the signature helpers counted with their
server), against the machine's cores: what a second process can gain here. `--lock-sample
MS` (PostgreSQL): every MS ms while syncing, whether the log's serialized section is held
by some transaction: the row lock of log_head (a `FOR SHARE SKIP LOCKED` probe, which
finds it taken), or, on a checkout from before log_head, the advisory lock (pg_locks).
On SQLite the serialized section is the whole write transaction, and a probe would take
the write lock itself; it is not sampled.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import statistics
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._harness import PG_DEFAULT, Server, _pg_admin
from shared.events import CustodyEvent, verify_event

CHAIN = 20  # events per shipment: pickup, 18 failed attempts, delivery


def interleave(chains: list[list[dict]], batch: int) -> list[list[dict]]:
    """Batches as phones send them: several shipments per batch, each chain in order."""
    flat = []
    width = max(1, batch // 4)  # 4 consecutive events of 25 shipments per batch of 100
    for start in range(0, len(chains), width):
        group = chains[start : start + width]
        for step in range(0, CHAIN, 4):
            for chain in group:
                flat.extend(chain[step : step + 4])
    return [flat[i : i + batch] for i in range(0, len(flat), batch)]


def post_batch(conn: http.client.HTTPConnection, body: bytes, headers: dict[str, str]) -> str | None:
    """POST one batch; an error's text, or None when every event was accepted."""
    conn.request("POST", "/api/v1/events", body=body, headers=headers)
    resp = conn.getresponse()
    data = resp.read()
    if resp.status != 200:
        return data[:200].decode(errors="replace")
    bad = [x for x in msgspec.json.decode(data)["results"] if x["status"] != "accepted"]
    return str(bad[:3]) if bad else None


_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK


def children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(FileNotFoundError):
            out += [int(x) for x in (task / "children").read_text().split()]
    return out


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def pg_backends(srv: Server) -> list[int]:
    if srv.backend == "sqlite":
        return []
    name = srv.db_url.rpartition("/")[2]
    with _pg_admin(PG_DEFAULT) as conn:
        return [r[0] for r in conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", (name,))]


@dataclass
class Result:
    rate: float  # events/s while syncing
    base: float  # baseline events/s, turn about
    p50_ms: float  # median batch latency
    cpu: dict[str, float]  # CPU seconds per 100 events: servers, helpers, database, client
    rss: list[tuple[float, float]]  # each hoso serve's MiB before and after
    held: float | None  # share of --lock-sample probes that found the serialized section held
    samples: int


def run_backend(
    backend: str,
    n_events: int,
    batch: int,
    clients: int = 1,
    processes: int = 1,
    slice_batches: int = 10,
    root: Path | None = None,
    lock_sample_ms: float = 0.0,
) -> Result:
    """Sync n_events through `processes` servers from `clients` phones at once.

    Each phone has shipments of its own and sends its batches one after another, the
    k-th of them to server (phone + k) mod processes; every `slice_batches` batches per
    phone the phones wait for each other and the baseline checks that slice's events
    once, so the two rates are measured turn about over the same minutes and share this
    machine's speed drifts."""

    with Server(backend, processes=processes, root=root) as srv:
        shipments = srv.shipments(n_events // CHAIN)
        chains = [srv.chain(code, head, CHAIN) for code, head in shipments]
        headers = {**srv.auth("courier"), "content-type": "application/json"}
        latencies: list[float] = []
        errors: list[str] = []
        # each phone's batches, and the same events as Structs for the baseline
        streams = [interleave(chains[k::clients], batch) for k in range(clients)]
        bodies = [[msgspec.json.encode({"events": b}) for b in stream] for stream in streams]
        structs = [[[msgspec.convert(e, CustodyEvent) for e in b] for b in stream] for stream in streams]

        def connect(port: int) -> http.client.HTTPConnection:
            # the stdlib's HTTP/1.1 keep-alive client: the phone's HTTP work happens on the
            # phone, and httpx's own ~1.5 ms of Python per request would otherwise come out of
            # the same two cores the server is being measured on
            return http.client.HTTPConnection("127.0.0.1", port, timeout=120)

        conns = [[connect(port) for port in srv.ports] for _ in range(clients)]

        def phone(k: int, start: int) -> None:
            for j, body in enumerate(bodies[k][start : start + slice_batches], start=start):
                t = time.perf_counter()
                error = post_batch(conns[k][(k + j) % processes], body, headers)
                latencies.append(time.perf_counter() - t)
                if error is not None:
                    errors.append(error)
                    return

        syncing = threading.Event()
        stop = threading.Event()
        probes = [0, 0]  # held, taken
        sampler = None
        if lock_sample_ms and srv.backend != "sqlite":
            sampler = threading.Thread(
                target=sample_lock, args=(srv, lock_sample_ms / 1000, syncing, stop, probes), daemon=True
            )
            sampler.start()
        servers = [p.pid for p in srv.procs]
        helpers = [c for pid in servers for c in children(pid)]
        database = pg_backends(srv)
        rss_before = [rss_mib(pid) for pid in servers]
        before = {pid: cpu_seconds(pid) for pid in servers + helpers + database}
        synced = checked = client_cpu = 0.0
        try:
            for start in range(0, max(len(b) for b in bodies), slice_batches):
                threads = [threading.Thread(target=phone, args=(k, start)) for k in range(clients)]
                c0 = time.process_time()
                t0 = time.perf_counter()
                syncing.set()
                for th in threads:
                    th.start()
                for th in threads:
                    th.join()
                syncing.clear()
                t1 = time.perf_counter()
                client_cpu += time.process_time() - c0
                assert not errors, errors[:3]
                for k in range(clients):
                    for part in structs[k][start : start + slice_batches]:
                        for ev in part:
                            verify_event(ev)
                synced += t1 - t0
                checked += time.perf_counter() - t1
        finally:
            stop.set()
            if sampler is not None:
                sampler.join()
            for row in conns:
                for conn in row:
                    conn.close()
        database = sorted(set(database) | set(pg_backends(srv)))
        spent = {pid: cpu_seconds(pid) - before.get(pid, 0.0) for pid in servers + helpers + database}
        rss_after = [rss_mib(pid) for pid in servers]
        n = sum(len(b) for stream in streams for b in stream)
        per100 = 100 / n
        cpu = {
            "servers": sum(spent[p] for p in servers) * per100,
            "helpers": sum(spent[p] for p in helpers) * per100,
            "database": sum(spent[p] for p in database) * per100,
            "client": client_cpu * per100,
        }
        return Result(
            n / synced,
            n / checked,
            statistics.median(latencies) * 1000,
            cpu,
            list(zip(rss_before, rss_after, strict=True)),
            probes[0] / probes[1] if probes[1] else None,
            probes[1],
        )


def sample_lock(
    srv: Server, every: float, syncing: threading.Event, stop: threading.Event, probes: list[int]
) -> None:
    """Probe the log's serialized section every `every` s while `syncing` (see the docstring)."""
    import psycopg

    with psycopg.connect(srv.db_url.replace("postgresql+asyncpg://", "postgresql://"), autocommit=True) as c:
        has_head = c.execute("SELECT to_regclass('log_head') IS NOT NULL").fetchone()[0]
        if has_head:
            probe = "SELECT count(*) = 0 FROM (SELECT 1 FROM log_head WHERE id = 1 FOR SHARE SKIP LOCKED) x"
        else:
            probe = (
                "SELECT count(*) > 0 FROM pg_locks WHERE locktype = 'advisory' AND granted "
                "AND objid = 1215255407"  # server/log/repository.py's key before log_head, 0x486F536F
            )
        while not stop.is_set():
            if syncing.wait(0.05):
                probes[0] += bool(c.execute(probe).fetchone()[0])
                probes[1] += 1
                time.sleep(every)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=10_000)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--backends", default="sqlite,postgres")
    ap.add_argument("--processes", type=int, default=1, help="hoso serve processes on the one database")
    ap.add_argument(
        "--clients", type=int, default=0, help="phones syncing at once (default: one per server process)"
    )
    ap.add_argument("--root", type=Path, help="serve another checkout's server (the code before a change)")
    ap.add_argument("--cpus", action="store_true", help="report CPU use as cores busy while syncing")
    ap.add_argument(
        "--lock-sample",
        type=float,
        default=0.0,
        metavar="MS",
        help="PostgreSQL: sample every MS ms how often the log's serialized section is held",
    )
    args = ap.parse_args()
    clients = args.clients or args.processes
    print(
        f"ingest: {args.events} events in batches of {args.batch}, {clients} phone(s), "
        f"{args.processes} server process(es), {os.cpu_count()} cores"
    )
    verdict = None
    for backend in args.backends.split(","):
        r = run_backend(
            backend,
            args.events,
            args.batch,
            clients,
            args.processes,
            root=args.root,
            lock_sample_ms=args.lock_sample,
        )
        print(
            f"  {backend:<9} POST /api/v1/events: {r.rate:8.0f} events/s  "
            f"({r.rate / r.base:5.1%} of a baseline of {r.base:,.0f}/s; median batch {r.p50_ms:.1f} ms)"
        )
        cpu = r.cpu
        print(
            f"            CPU ms per 100 events: servers {cpu['servers'] * 1000:.1f}, their signature "
            f"helpers {cpu['helpers'] * 1000:.1f}, database {cpu['database'] * 1000:.1f}, "
            f"bench client {cpu['client'] * 1000:.1f}; wall {100 / r.rate * 1000:.1f}"
        )
        if args.cpus:
            busy = {k: v * r.rate / 100 for k, v in cpu.items()}  # CPU s per 100 events x 100 events/s
            print(
                f"            cores busy while syncing: servers {busy['servers']:.2f} + their helpers "
                f"{busy['helpers']:.2f} + database {busy['database']:.2f} + bench client "
                f"{busy['client']:.2f} = {sum(busy.values()):.2f} of {os.cpu_count()}; "
                f"load average {os.getloadavg()[0]:.2f}"
            )
        if r.held is not None:
            print(f"            log's serialized section held at {r.held:.1%} of {r.samples} probes")
        rss = ", ".join(f"{a:.0f} -> {b:.0f}" for a, b in r.rss)
        print(f"            hoso serve RSS MiB before -> after the sync: {rss}")
        if backend == "sqlite":
            verdict = r.rate >= 5000 and r.rate / r.base >= 0.40
    print(
        "  baseline: hash + Ed25519 verify of the same events, one core, no HTTP/DB, turn about with the sync"
    )
    if verdict is not None:
        met = "met" if verdict else "NOT met"
        print(f"  target: >= 5,000 events/s on SQLite and >= 40% of baseline: {met}")


if __name__ == "__main__":
    main()
