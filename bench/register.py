"""Importing a one-stop shop's dossier register (issue 15: 100,000 rows in under 30 s).

A real `hoso serve` (one worker) on SQLite and/or PostgreSQL; a catalogue of 300 procedures,
then `PUT /api/v1/units/UNIT/register?from=&to=` with 100,000 rows as CSV (UTF-8, BOM) and as
XLSX, and the same period once more (the re-import replaces it). Times are the whole request:
upload, parsing and checking every cell, the transaction deleting the old rows and writing
the new ones.

    .venv/bin/python bench/register.py [--rows 100000] [--backend sqlite|postgres|both]
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._harness import PASSWORD, Server

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
HEADER = ["Mã hồ sơ", "Mã thủ tục", "Lĩnh vực", "Ngày tiếp nhận", "Hình thức tiếp nhận",
          "Ngày trả kết quả", "Hình thức trả kết quả"]  # fmt: skip
CHANNELS = ("Trực tiếp", "Trực tuyến", "Bưu chính")


def rows(n: int) -> list[list[str]]:
    start = date(2026, 1, 1)
    out = []
    for i in range(n):
        got = start + timedelta(days=i % 365)
        out.append([f"000.00.31.H40-{i:07d}", f"1.{i % 300:06d}.000.00.00.H40", "", got.strftime("%d/%m/%Y"),
                    CHANNELS[2 if i % 7 == 0 else i % 2], (got + timedelta(days=7)).isoformat(),
                    CHANNELS[2 if i % 40 == 0 else i % 2]])  # fmt: skip
    return out


def as_csv(table: list[list[str]]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows([HEADER, *table])
    return ("\ufeff" + out.getvalue()).encode()


def as_xlsx(table: list[list[str]]) -> bytes:
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet("Sổ theo dõi")
    sheet.append(HEADER)
    for row in table:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def run(backend: str, n: int) -> None:
    table = rows(n)
    files = {"CSV": (as_csv(table), "text/csv"), "XLSX": (as_xlsx(table), XLSX)}
    with Server(backend) as s:
        s._cli(["unit", "add", "TTHCC-B", "--name", "Trung tâm bench", "--kind", "one_stop_shop"])
        s._cli(["user", "add", "shop", "--role", "clerk", "--unit", "TTHCC-B"], stdin=PASSWORD + "\n")
        s.tokens["shop"] = s._login("shop")
        head = ["Mã thủ tục", "Tên thủ tục", "Lĩnh vực"]
        cat = io.StringIO()
        csv.writer(cat).writerows(
            [head, *([f"1.{i:06d}.000.00.00.H40", f"Thủ tục {i}", "Tư pháp"] for i in range(300))]
        )
        r = s.http.put(
            "/api/v1/units/TTHCC-B/procedures", content=cat.getvalue().encode(), headers=s.auth("shop")
        )
        r.raise_for_status()
        url = "/api/v1/units/TTHCC-B/register?from=2026-01-01&to=2026-12-31"
        for label in ("CSV", "XLSX", "CSV"):
            body, kind = files[label]
            began = time.perf_counter()
            r = s.http.put(url, content=body, headers={**s.auth("shop"), "Content-Type": kind})
            took = time.perf_counter() - began
            r.raise_for_status()
            got = r.json()
            verdict = "met" if took < 30 else "NOT met"
            print(
                f"  {backend:9s} {label:4s} {len(body) / 1e6:5.1f} MB  {got['rows']:,} rows in {took:5.2f} s "
                f"(server {got['seconds']} s; replaced={got['replaced']})  target < 30 s: {verdict}"
            )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    args = ap.parse_args()
    for backend in ("sqlite", "postgres") if args.backend == "both" else (args.backend,):
        run(backend, args.rows)


if __name__ == "__main__":
    main()
