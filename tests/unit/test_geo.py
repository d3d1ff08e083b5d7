import itertools
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.geo import distance_m, order_stops

PLEIKU = (13.9833, 108.0)


def test_distance_is_geodesic():
    assert 1100 < distance_m(PLEIKU, (13.9933, 108.0)) < 1112  # 0.01° of latitude ≈ 1.1 km


def test_stops_on_a_line_are_visited_in_order():
    stops = [(13.99 + 0.01 * k, 108.0) for k in (3, 1, 4, 2, 0)]
    order = order_stops(PLEIKU, stops)
    assert [stops[i][0] for i in order] == sorted(s[0] for s in stops)


def test_unknown_positions_go_last():
    assert order_stops(PLEIKU, [None, (13.99, 108.0), None]) == [1, 0, 2]
    assert order_stops(None, [None, None]) == [0, 1]


def _length(start, stops, order):
    pts = [start, *(stops[i] for i in order)]
    return sum(distance_m(a, b) for a, b in itertools.pairwise(pts))


@settings(max_examples=15, deadline=None)
@given(st.integers(min_value=1, max_value=6), st.randoms(use_true_random=False))
def test_the_best_tour_on_small_days(n, rnd: random.Random):
    stops = [(13.9 + rnd.random() * 0.2, 107.9 + rnd.random() * 0.2) for _ in range(n)]
    order = order_stops(PLEIKU, stops)
    assert sorted(order) == list(range(n))
    best = min(_length(PLEIKU, stops, p) for p in itertools.permutations(range(n)))
    assert _length(PLEIKU, stops, order) <= best + 1e-6


@settings(max_examples=10, deadline=None)
@given(st.randoms(use_true_random=False))
def test_larger_days_beat_plain_nearest_neighbour(rnd: random.Random):
    stops = [(13.9 + rnd.random() * 0.2, 107.9 + rnd.random() * 0.2) for _ in range(14)]
    order = order_stops(PLEIKU, stops)
    assert sorted(order) == list(range(14))
    left, here, greedy = set(range(14)), PLEIKU, []
    while left:
        nxt = min(left, key=lambda i: distance_m(here, stops[i]))
        greedy.append(nxt)
        left.remove(nxt)
        here = stops[nxt]
    assert _length(PLEIKU, stops, order) <= _length(PLEIKU, stops, greedy) + 1e-6
