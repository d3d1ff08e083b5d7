"""A plain SVG plot of positions: the map when no tile server is configured (nothing leaves the building)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

from shared.geo import distance_m


@dataclass(frozen=True, slots=True)
class Mark:
    lat: float
    lon: float
    label: str
    kind: str = "point"  # point | target | courier


COLOURS = {"point": "#0b5394", "target": "#c62828", "courier": "#1b7f3a"}


def plot(marks: Sequence[Mark], width: int = 520, height: int = 300, title: str = "") -> Markup:
    """Equirectangular projection around the marks, with a scale bar; labels beside each mark."""
    if not marks:
        return Markup("")
    lats = [m.lat for m in marks]
    lons = [m.lon for m in marks]
    mid_lat = (min(lats) + max(lats)) / 2
    kx = math.cos(math.radians(mid_lat))
    span_x = max((max(lons) - min(lons)) * kx, 0.002)
    span_y = max(max(lats) - min(lats), 0.002)
    pad = 36
    scale = min((width - 2 * pad) / span_x, (height - 2 * pad) / span_y)
    cx, cy = (min(lons) + max(lons)) / 2, mid_lat

    def xy(lat: float, lon: float) -> tuple[float, float]:
        return width / 2 + (lon - cx) * kx * scale, height / 2 - (lat - cy) * scale

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart plot" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{escape(title)}">',
        f'<rect width="{width}" height="{height}" fill="#f7f9fb" stroke="#d0d7dd"/>',
    ]
    for m in marks:
        x, y = xy(m.lat, m.lon)
        colour = COLOURS.get(m.kind, COLOURS["point"])
        if m.kind == "target":
            parts.append(f'<rect x="{x - 6:.1f}" y="{y - 6:.1f}" width="12" height="12" fill="{colour}"/>')
        else:
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="6" fill="{colour}" stroke="#fff"/>')
        parts.append(
            f'<text x="{x + 9:.1f}" y="{y + 4:.1f}" font-size="12" fill="#1b1b1b">{escape(m.label)}</text>'
        )
    # a scale bar: a round distance that fits a quarter of the width
    metres_per_px = distance_m((cy, cx), (cy, cx + 1 / (kx * scale))) if scale else 0
    target = metres_per_px * width / 4
    nice = next(
        (n for n in (50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000) if n >= target), 100000
    )
    bar = nice / metres_per_px if metres_per_px else 0
    label = f"{nice // 1000} km" if nice >= 1000 else f"{nice} m"
    parts.append(
        f'<line x1="12" y1="{height - 14}" x2="{12 + bar:.1f}" y2="{height - 14}" stroke="#37424a" '
        f'stroke-width="3"/><text x="12" y="{height - 20}" font-size="11" fill="#37424a">{label}</text>'
    )
    parts.append("</svg>")
    return Markup("".join(parts))
