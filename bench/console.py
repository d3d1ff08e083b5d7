# ruff: noqa: E501  (SQL reads better on long lines)
"""The console's board and the monthly report at scale, on PostgreSQL.

    .venv/bin/python bench/console.py seed [--shipments 1000000]    # ~5 events each: ~5,000,000
    .venv/bin/python bench/console.py run                           # board p50/p95, a month's report
    .venv/bin/python bench/console.py explain                       # the plans behind the figures

`seed` builds the database `hoso_bench_console` (dropped first; env `HOSO_BENCH_CONSOLE_DB`
names another, e.g. a scratch database of one's own, for `seed`, `run`, `explain` and the
HTTP benches that read it: bench/board_http.py, bench/log_http.py) with the real migrations, then
fills it in SQL (generate_series, no Python per row): 20 units, 200 couriers, shipments over the
last 365 days (about 4 % still open: those of the last two weeks), and their custody events —
registered, picked up, failed attempts, transfers, delivered or returned, citizens' ratings.
Indexes and constraints are dropped during the load and rebuilt after it, exactly as the
migrations define them. The rows are not signed: these figures are about queries, not proofs.

`run` times, in process, the service calls behind the pages: the board (`server.console.service.
board`, its row query and its count) over a mix of filters, and `server.reports.service.summary`
for the last 30 days and for one calendar month. Targets (issue 6): board p95 < 100 ms, a
month's report < 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._harness import PG_DEFAULT, _pg_admin

# the database seeded and read; HOSO_BENCH_CONSOLE_DB picks another name (a scratch one)
NAME = os.environ.get("HOSO_BENCH_CONSOLE_DB", "hoso_bench_console")
COURIERS = 200
UNITS = 10  # post offices 1..10, one-stop shops 11..20
FIELDS = [
    "Tư pháp - Hộ tịch",
    "Đất đai",
    "Xây dựng",
    "Đăng ký kinh doanh",
    "Lao động - Việc làm",
    "Giao thông vận tải",
    "Bảo trợ xã hội",
    "Cư trú",
]
VN = ZoneInfo("Asia/Ho_Chi_Minh")


def fill(sql: str, **values: object) -> str:
    """Put values into {name} slots, leaving the JSON braces of the SQL alone."""
    for key, value in values.items():
        sql = sql.replace("{" + key + "}", str(value))
    return sql


def _url(pg_url: str) -> str:
    return f"{pg_url.rpartition('/')[0]}/{NAME}"


def _sql_array(items: list[str]) -> str:
    return "ARRAY[" + ",".join("'" + i.replace("'", "''") + "'" for i in items) + "]"


SHIPMENTS_SQL = """
INSERT INTO shipments (id, code, kind, state, dossier_ref, procedure, field, sender, recipient, due_at,
  fee_vnd, components, parent_code, unit_id, dest_unit_id, pin_hash, assigned_courier_id, head, seq,
  attempts, custodian_role, custodian_name, custodian_user_id, created_by, created_at, updated_at, closed_at)
SELECT g, lpad(g::text, 13, '0'), kind, state, 'H21-' || g, 'Thủ tục ' || (g % 40), fields[1 + g % 8],
  '{"name": "Nguyễn Văn An", "address": "12 Lê Lợi", "commune": "Phường Pleiku", "province": "Tỉnh Gia Lai",
    "lat": 13.98, "lon": 108.0}'::json,
  json_build_object('name', 'Trần Thị Bình', 'commune', 'Phường Hội Phú', 'province', 'Tỉnh Gia Lai',
    'lat', 13.96 + (g % 100) * 0.0004, 'lon', 108.01 + (g % 37) * 0.0005),
  created + (2 + g % 12) * interval '1 day', CASE WHEN kind = 'submission' THEN 50000 ELSE 0 END,
  '["Tờ khai"]'::json, NULL,
  CASE WHEN kind = 'submission' THEN 1 + g % 10 ELSE 11 + g % 10 END,
  CASE WHEN kind = 'submission' THEN 11 + g % 10 END,
  'bench', CASE WHEN state = 'cancelled' OR (state = 'registered' AND g % 2 = 0) THEN NULL ELSE courier END,
  NULL, seq, CASE WHEN state IN ('in_custody', 'delivered') THEN g % 4 WHEN state = 'returned' THEN 3 ELSE 0 END,
  CASE state WHEN 'registered' THEN 'sender' WHEN 'in_custody' THEN 'courier' WHEN 'delivered' THEN
    CASE WHEN kind = 'submission' THEN 'clerk' ELSE 'citizen' END WHEN 'returned' THEN 'clerk' ELSE 'sender' END,
  NULL, CASE WHEN state = 'in_custody' THEN courier END, 3, created, created,
  CASE WHEN state IN ('delivered', 'returned', 'cancelled') THEN created + (1 + g % 10) * interval '1 day' END
FROM (
  SELECT g, kind, created, courier, fields, state,
    CASE state WHEN 'registered' THEN 1 WHEN 'cancelled' THEN 2
      WHEN 'in_custody' THEN 2 + g % 4 + (g / 4) % 2
      WHEN 'returned' THEN 6 + (g / 4) % 2
      ELSE 3 + g % 4 + (g / 4) % 2 + CASE WHEN kind = 'result' AND g % 3 = 0 THEN 1 ELSE 0 END END AS seq
  FROM (
    SELECT g, CASE WHEN g % 10 < 7 THEN 'submission' ELSE 'result' END AS kind,
      now() - ({n} - g) * interval '365 days' / {n} AS created,
      {courier0} + g % {couriers} AS courier, {fields} AS fields,
      CASE WHEN ({n} - g) * 365.0 / {n} < 14 THEN
        CASE WHEN g % 100 < 35 THEN 'registered' WHEN g % 100 < 85 THEN 'in_custody'
             WHEN g % 100 < 97 THEN 'delivered' ELSE 'cancelled' END
      ELSE CASE WHEN g % 100 < 91 THEN 'delivered' WHEN g % 100 < 96 THEN 'returned' ELSE 'cancelled' END
      END AS state
    FROM generate_series({lo}, {hi}) AS g
  ) a
) b
"""

# one row per (shipment, position in its chain); the type follows from the position
EVENTS_SQL = """
INSERT INTO custody_events (id, shipment_id, seq, type, hash, prev, actor, device_id, occurred_at, fix_at,
  received_at, lat, lon, body, flags, log_index)
SELECT md5(s.id || ':' || p), s.id, p, t, md5(s.id || '/' || p) || md5(p || '/' || s.id), NULL,
  CASE WHEN t = 'registered' THEN 'clerk:3' WHEN t = 'cancelled' THEN 'dispatcher:2'
       WHEN t = 'confirmed' THEN 'citizen' ELSE 'courier:' || coalesce(s.assigned_courier_id, {courier0}) END,
  NULL, at, CASE WHEN t IN ('registered', 'cancelled', 'confirmed') THEN NULL ELSE at - interval '4 seconds' END,
  at + interval '40 seconds',
  CASE WHEN t IN ('registered', 'cancelled', 'confirmed') THEN NULL ELSE 13.95 + (s.id % 97) * 0.0006 END,
  CASE WHEN t IN ('registered', 'cancelled', 'confirmed') THEN NULL ELSE 107.99 + (s.id % 89) * 0.0006 END,
  json_build_object('v', 1, 'type', t, 'shipment', s.code, 'data',
    CASE t WHEN 'delivery_failed' THEN json_build_object('reason',
           (ARRAY['not_home','not_home','refused','wrong_address','unidentified'])[1 + (s.id + p) % 5])
         WHEN 'confirmed' THEN json_build_object('rating', 1 + (s.id * 7 + 3) % 5)
         ELSE '{}'::json END)::text,
  NULL, NULL
FROM (
  SELECT s.*, p,
    CASE WHEN p = 1 THEN 'registered'
         WHEN s.state = 'cancelled' THEN 'cancelled'
         WHEN p = 2 THEN 'picked_up'
         WHEN p <= 2 + s.attempts THEN 'delivery_failed'
         WHEN s.state = 'in_custody' OR p <= s.seq - 1 - (CASE WHEN conf THEN 1 ELSE 0 END) THEN 'transferred'
         WHEN p = s.seq AND conf THEN 'confirmed'
         WHEN s.state = 'returned' THEN 'returned'
         ELSE 'delivered' END AS t,
    CASE WHEN s.closed_at IS NOT NULL AND p >= s.seq - (CASE WHEN conf THEN 1 ELSE 0 END)
         THEN s.closed_at + (p - s.seq + 1) * interval '1 hour'
         ELSE s.created_at + p * interval '3 hours' END AS at
  FROM (SELECT *, (kind = 'result' AND state = 'delivered' AND id % 3 = 0) AS conf FROM shipments
        WHERE id BETWEEN {lo} AND {hi}) s, generate_series(1, s.seq) AS p
) s
"""


def seed(pg_url: str, n: int) -> None:
    from server.auth.passwords import hash_password
    from server.db.migrate import upgrade

    t0 = time.perf_counter()
    with _pg_admin(pg_url) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{NAME}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{NAME}"')
    upgrade(_url(pg_url))
    import psycopg

    with psycopg.connect(
        _url(pg_url).replace("postgresql+asyncpg://", "postgresql://"), autocommit=True
    ) as c:
        c.execute("SET synchronous_commit = off")
        c.execute("SET maintenance_work_mem = '1GB'")
        c.execute("SET work_mem = '256MB'")
        pw = hash_password("bench-password")
        for i in range(1, 2 * UNITS + 1):
            kind = "post_office" if i <= UNITS else "one_stop_shop"
            c.execute(
                "INSERT INTO units (id, code, name, kind, created_at) VALUES (%s, %s, %s, %s, now())",
                (i, f"{'BC' if i <= UNITS else 'TTHCC'}-{i:02d}", f"Đơn vị {i}", kind),
            )
        staff = [("admin", "admin", None), ("dieuphoi", "dispatcher", 1), ("giaodich", "clerk", 1)]
        staff += [("motcua", "clerk", 11), ("thanhtra", "auditor", None)]
        for i, (username, role, unit) in enumerate(staff, start=1):
            c.execute(
                "INSERT INTO users (id, username, full_name, password_hash, role, unit_id, active, created_at) "
                "VALUES (%s, %s, %s, %s, %s, %s, true, now())",
                (i, username, username, pw, role, unit),
            )
        courier0 = len(staff) + 1
        c.execute(
            "INSERT INTO users (id, username, full_name, password_hash, role, unit_id, active, created_at) "
            "SELECT g, 'buuta' || g, 'Bưu tá ' || g, %s, 'courier', 1 + g %% 10, true, now() "
            "FROM generate_series(%s::int, %s::int) g",
            (pw, courier0, courier0 + COURIERS - 1),
        )
        c.execute("SELECT setval(pg_get_serial_sequence('users', 'id'), %s)", (courier0 + COURIERS,))
        c.execute("SELECT setval(pg_get_serial_sequence('units', 'id'), %s)", (2 * UNITS + 1,))
        # load without indexes or constraints, then rebuild them as the migrations defined them
        tables = ("custody_events", "shipments")
        fks = c.execute(
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE contype = 'f' AND (conrelid::regclass::text = ANY(%s) OR confrelid::regclass::text = ANY(%s))",
            (list(tables), list(tables)),
        ).fetchall()
        keys = c.execute(
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE contype IN ('p', 'u') AND conrelid::regclass::text = ANY(%s)",
            (list(tables),),
        ).fetchall()
        indexes = c.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = ANY(%s) "
            "AND indexname NOT IN (SELECT conname FROM pg_constraint)",
            (list(tables),),
        ).fetchall()
        for table, name, _ in fks + keys:
            c.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
        for name, _ in indexes:
            c.execute(f'DROP INDEX "{name}"')
        saved = [f'ALTER TABLE {t} ADD CONSTRAINT "{n}" {d}' for t, n, d in keys]
        saved += [d for _, d in indexes]
        saved += [f'ALTER TABLE {t} ADD CONSTRAINT "{n}" {d}' for t, n, d in fks]
        step = 100_000
        for lo in range(1, n + 1, step):
            hi = min(lo + step - 1, n)
            c.execute(
                fill(
                    SHIPMENTS_SQL,
                    n=n,
                    lo=lo,
                    hi=hi,
                    courier0=courier0,
                    couriers=COURIERS,
                    fields=_sql_array(FIELDS),
                )
            )
            c.execute(fill(EVENTS_SQL, lo=lo, hi=hi, courier0=courier0))
            print(f"  {hi:>9,} shipments  {time.perf_counter() - t0:6.1f} s", flush=True)
        c.execute("SELECT setval(pg_get_serial_sequence('shipments', 'id'), %s)", (n + 1,))
        t1 = time.perf_counter()
        for statement in saved:
            c.execute(statement)
        print(f"  constraints and indexes rebuilt in {time.perf_counter() - t1:.1f} s", flush=True)
        c.execute("VACUUM (ANALYZE) shipments")
        c.execute("VACUUM (ANALYZE) custody_events")
        ships = c.execute("SELECT count(*) FROM shipments").fetchone()[0]
        events = c.execute("SELECT count(*) FROM custody_events").fetchone()[0]
        open_ = c.execute(
            "SELECT count(*) FROM shipments WHERE state IN ('registered', 'in_custody')"
        ).fetchone()[0]
    print(
        f"seeded {ships:,} shipments ({open_:,} open) and {events:,} events in {time.perf_counter() - t0:.0f} s"
    )


BOARD_FILTERS = [
    {},
    {"late": True},
    {"at_risk": True},
    {"state": "in_custody"},
    {"kind": "result"},
    {"field": "Đất đai"},
    {"unit": "TTHCC-13"},
    {"courier": "COURIER"},
    {"field": "Xây dựng", "kind": "submission", "late": True},
    {"unit": "BC-04", "state": "registered"},
]


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def run(pg_url: str, rounds: int) -> None:
    from server.console.service import BoardFilters, board
    from server.db.engine import Database
    from server.reports import service as reports

    db = Database(_url(pg_url))
    import os

    print(
        f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (other work on the machine counts)"
    )
    try:
        courier = 6 + 17
        timings: dict[str, list[float]] = {}
        for _ in range(2):  # warm the cache and the pool
            await board(db, BoardFilters())
        for _ in range(rounds):
            for f in BOARD_FILTERS:
                f = {k: (str(courier) if v == "COURIER" else v) for k, v in f.items()}
                if "courier" in f:
                    f["courier"] = int(f["courier"])
                name = ",".join(f"{k}={v}" for k, v in f.items()) or "(no filter)"
                t0 = time.perf_counter()
                result = await board(db, BoardFilters(**f))
                timings.setdefault(name, []).append((time.perf_counter() - t0) * 1000)
                timings.setdefault(f"{name}#rows", [len(result.rows), result.matched])
        all_ms = [ms for k, v in timings.items() if not k.endswith("#rows") for ms in v]
        print(f"board ({rounds} rounds of {len(BOARD_FILTERS)} filter sets, rows + count query each):")
        for name in [k for k in timings if not k.endswith("#rows")]:
            ms = timings[name]
            shown, matched = timings[f"{name}#rows"][:2]
            print(
                f"  {name:<45} p50 {statistics.median(ms):7.1f} ms  p95 {_pct(ms, 0.95):7.1f} ms"
                f"   ({int(shown)} shown of {int(matched):,})"
            )
        print(
            f"  ALL                                           p50 {statistics.median(all_ms):7.1f} ms  "
            f"p95 {_pct(all_ms, 0.95):7.1f} ms   (target p95 < 100 ms)"
        )
        now = datetime.now(VN)
        first = (now.replace(day=1) - timedelta(days=1)).replace(day=1)
        windows = {
            "last 30 days": reports.window(None, None),
            f"month {first:%Y-%m}": reports.window(
                first.date().isoformat(), (now.replace(day=1) - timedelta(days=1)).date().isoformat()
            ),
            f"month {first:%Y-%m}, unit TTHCC-13": None,
        }
        print("report summary (5 runs each):")
        for name, win in windows.items():
            unit = "TTHCC-13" if "unit" in name else None
            win = win or windows[f"month {first:%Y-%m}"]
            ms = []
            for _ in range(5):
                t0 = time.perf_counter()
                s = await reports.summary(db, win, unit)
                ms.append((time.perf_counter() - t0) * 1000)
            print(
                f"  {name:<36} median {statistics.median(ms):7.0f} ms  max {max(ms):7.0f} ms   "
                f"({s.total:,} shipments, {s.failed_attempts:,} failed attempts; target < 1000 ms)"
            )
    finally:
        await db.dispose()
    print(f"load average after: {os.getloadavg()[0]:.1f}")


def explain(pg_url: str) -> None:
    """The plans of the board's and the report's heaviest queries, as PostgreSQL runs them."""
    import psycopg

    with psycopg.connect(_url(pg_url).replace("postgresql+asyncpg://", "postgresql://")) as c:
        for title, sql in (
            (
                "board, no filter",
                "SELECT s.id FROM shipments s LEFT JOIN custody_events l ON l.shipment_id = s.id AND l.seq = s.seq "
                "WHERE s.state IN ('registered','in_custody') ORDER BY s.due_at, s.id LIMIT 201",
            ),
            (
                "board, field filter",
                "SELECT s.id FROM shipments s WHERE s.state IN ('registered','in_custody') AND s.field = 'Đất đai' "
                "ORDER BY s.due_at, s.id LIMIT 201",
            ),
            (
                "report, month of events",
                "SELECT count(*) FROM custody_events WHERE type = 'delivery_failed' AND shipment_id IN "
                "(SELECT id FROM shipments WHERE created_at >= now() - interval '60 days' "
                "AND created_at < now() - interval '30 days')",
            ),
        ):
            print(f"-- {title}")
            for (line,) in c.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql).fetchall():
                print("  " + line)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("command", choices=["seed", "run", "explain"])
    parser.add_argument("--shipments", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--pg-url", default=PG_DEFAULT)
    args = parser.parse_args()
    if args.command == "seed":
        seed(args.pg_url, args.shipments)
    elif args.command == "run":
        asyncio.run(run(args.pg_url, args.rounds))
    else:
        explain(args.pg_url)


if __name__ == "__main__":
    main()
