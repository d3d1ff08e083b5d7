"""What the flows need from the phone, as small interfaces: the real ones wrap
flet-geolocator and the clock; tests pass fakes. Camera frames reach the scan flow as
JPEG bytes (ScanFlow.on_frame), so it needs no camera interface of its own."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from shared.timeutil import to_wire


@dataclass(frozen=True, slots=True)
class Fix:
    lat: float
    lon: float
    accuracy_m: float | None
    at: datetime  # the fix's own time, kept apart from the device clock (CUSTODY.md §3)

    def wire(self) -> dict[str, object]:
        return {"lat": self.lat, "lon": self.lon, "accuracy_m": self.accuracy_m, "fix_at": to_wire(self.at)}

    @property
    def point(self) -> tuple[float, float]:
        return (self.lat, self.lon)


class Locator(Protocol):
    async def locate(self) -> Fix | None:
        """The current position, or None when no fix could be had (the flow records why)."""


Clock = Callable[[], datetime]
