"""Distances and the order of a courier's stops (geopy underneath).

Up to seven stops the best order is found exactly; beyond that, nearest neighbour from
where the courier stands, then 2-opt and single-stop moves until nothing shortens the path. Stops without
coordinates go last, in the order given (the caller sorts them by due date).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from geopy.distance import geodesic

Point = tuple[float, float]  # (lat, lon)
EXACT_UP_TO = 7


def distance_m(a: Point, b: Point) -> float:
    return float(geodesic(a, b).meters)


def order_stops(start: Point | None, stops: Sequence[Point | None]) -> list[int]:
    """Indices of `stops` in visiting order from `start` (open path: no return)."""
    known = [i for i, p in enumerate(stops) if p is not None]
    unknown = [i for i, p in enumerate(stops) if p is None]
    if not known:
        return unknown
    pts = [p for p in stops if p is not None]  # in the order of `known`
    n = len(pts)
    d = [[distance_m(pts[i], pts[j]) if i != j else 0.0 for j in range(n)] for i in range(n)]
    origin = start or pts[0]
    from_start = [distance_m(origin, p) for p in pts]

    def length(order: Sequence[int]) -> float:
        return from_start[order[0]] + sum(d[a][b] for a, b in itertools.pairwise(order))

    if n <= EXACT_UP_TO:
        best = min(itertools.permutations(range(n)), key=length)
        return [known[i] for i in best] + unknown
    # nearest neighbour
    left = set(range(n))
    current = min(left, key=lambda i: from_start[i])
    order = [current]
    left.remove(current)
    while left:
        current = min(left, key=d[current].__getitem__)
        order.append(current)
        left.remove(current)

    # 2-opt on the open path; the first leg starts at `origin`
    def leg(a: int | None, b: int) -> float:
        return from_start[b] if a is None else d[a][b]

    improved = True
    while improved:
        improved = False
        for i in range(n - 1):
            for k in range(i + 1, n):
                before = order[i - 1] if i > 0 else None
                after = order[k + 1] if k + 1 < n else None
                old = leg(before, order[i]) + (d[order[k]][after] if after is not None else 0.0)
                new = leg(before, order[k]) + (d[order[i]][after] if after is not None else 0.0)
                if new < old - 1e-6:
                    order[i : k + 1] = reversed(order[i : k + 1])
                    improved = True
        # or-opt: move one stop to wherever it shortens the path most
        for i in range(n):
            rest = order[:i] + order[i + 1 :]
            best_j, best_len = None, length(order) - 1e-6
            for j in range(n):
                candidate = [*rest[:j], order[i], *rest[j:]]
                if (cand_len := length(candidate)) < best_len:
                    best_j, best_len = j, cand_len
            if best_j is not None:
                order = [*rest[:best_j], order[i], *rest[best_j:]]
                improved = True
    return [known[i] for i in order] + unknown
