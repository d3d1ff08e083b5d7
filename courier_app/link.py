"""Whether the server can be reached now, as the app shows it (the offline banner).

Every request the API client makes tells the link how it went (`heard`): a transport
error or a 5xx is "down", any other answer is "up". Between requests the shell probes
`GET /health` (`due()` says when: soon while down, rarely while requests keep coming),
so the banner appears within seconds of the server going away, not only after a tap on
refresh, and goes once it answers again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

PROBE_ONLINE_S = 10.0  # while up: a probe only when nothing else was heard for this long
PROBE_OFFLINE_S = 4.0  # while down: try this often


class Link:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.online: bool | None = None  # None: not asked yet
        self.last_heard = float("-inf")
        self.changes = 0  # bumped on every change of `online`
        self._clock = clock
        self._lock = threading.Lock()

    def heard(self, reachable: bool) -> None:
        """A request (or a probe) just reached the server, or failed to."""
        with self._lock:
            if reachable:
                self.last_heard = self._clock()
            if self.online is not reachable:
                self.online = reachable
                self.changes += 1

    @property
    def down(self) -> bool:
        return self.online is False

    def due(self) -> bool:
        """Whether a probe is worth sending now."""
        if self.online is not True:
            return True
        return self._clock() - self.last_heard >= PROBE_ONLINE_S

    def wait_s(self) -> float:
        return PROBE_OFFLINE_S if self.online is not True else PROBE_ONLINE_S / 2
