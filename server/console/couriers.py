"""Couriers at a glance: today's workload and the last place each was seen."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from markupsafe import Markup, escape

from shared.timeutil import as_utc, utcnow

from ..db.engine import Database
from . import repository
from .service import VN, local


@dataclass(slots=True)
class CourierLoad:
    id: int
    name: str
    username: str
    to_pick_up: int
    carrying: int
    due_today: int
    late: int
    delivered_today: int
    failed_today: int
    last_lat: float | None
    last_lon: float | None
    last_seen: str


def _today_start(now: datetime) -> datetime:
    return datetime.combine(now.astimezone(VN).date(), time(0), VN)


async def workload(db: Database) -> list[CourierLoad]:
    now = utcnow()
    start = _today_start(now)
    end = start + timedelta(days=1)
    async with db.read() as conn:
        people = await repository.active_couriers(conn)
        ids = [p.id for p in people]
        loads = await repository.open_loads(conn, ids, now, start, end)
        actors = {f"courier:{i}": i for i in ids}
        done = {
            (actors[actor], kind): n
            for (actor, kind), n in (await repository.outcomes_since(conn, list(actors), start)).items()
        }
        last = {}
        for actor, cid in actors.items():
            row = await repository.last_fix(conn, actor)
            if row is not None:
                last[cid] = row
    out = []
    for p in people:
        load = loads.get(p.id)
        seen = last.get(p.id)
        out.append(
            CourierLoad(
                id=p.id,
                name=p.full_name or p.username,
                username=p.username,
                to_pick_up=int(load.to_pick_up or 0) if load else 0,
                carrying=int(load.carrying or 0) if load else 0,
                due_today=int(load.due_today or 0) if load else 0,
                late=int(load.late or 0) if load else 0,
                delivered_today=int(done.get((p.id, "delivered"), 0)),
                failed_today=int(done.get((p.id, "delivery_failed"), 0)),
                last_lat=seen.lat if seen else None,
                last_lon=seen.lon if seen else None,
                last_seen=local(as_utc(seen.received_at)) if seen else "",
            )
        )
    return out


TILE = 256


def _tile_xy(lat: float, lon: float, z: int) -> tuple[float, float]:
    n = 2**z
    x = (lon + 180.0) / 360.0 * n
    y = (1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * n
    return x, y


def tile_map(
    tile_url: str, marks: list[tuple[float, float, str]], width: int = 768, height: int = 384
) -> Markup:
    """Slippy-map tiles from HOSO_TILE_URL ({z}/{x}/{y}) as SVG images, positions drawn on top."""
    if not marks:
        return Markup("")
    z = 17
    while z > 2:
        xs, ys = zip(*(_tile_xy(lat, lon, z) for lat, lon, _ in marks), strict=True)
        if (max(xs) - min(xs)) * TILE < width - 80 and (max(ys) - min(ys)) * TILE < height - 80:
            break
        z -= 1
    xs, ys = zip(*(_tile_xy(lat, lon, z) for lat, lon, _ in marks), strict=True)
    cx, cy = (max(xs) + min(xs)) / 2, (max(ys) + min(ys)) / 2
    ox, oy = cx * TILE - width / 2, cy * TILE - height / 2  # pixel origin of the view
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart map" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img">'
    ]
    for tx in range(int(ox // TILE), int((ox + width) // TILE) + 1):
        for ty in range(int(oy // TILE), int((oy + height) // TILE) + 1):
            url = tile_url.format(z=z, x=tx, y=ty)
            parts.append(
                f'<image href="{escape(url)}" x="{tx * TILE - ox:.0f}" y="{ty * TILE - oy:.0f}" '
                f'width="{TILE}" height="{TILE}"/>'
            )
    for (_lat, _lon, label), x, y in zip(marks, xs, ys, strict=True):
        px, py = x * TILE - ox, y * TILE - oy
        parts.append(
            f'<circle cx="{px:.1f}" cy="{py:.1f}" r="7" fill="#1b7f3a" stroke="#fff" stroke-width="2"/>'
            f'<text x="{px + 10:.1f}" y="{py + 4:.1f}" font-size="13" font-weight="700" fill="#1b1b1b">'
            f"{escape(label)}</text>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))
