"""How screens find each other without importing each other: a route table.

Each screen module registers its builders under route templates (`register(routes)`);
a screen opens another by route (`nav.go("/stop/1000000000009/pickup")`), never by
calling its builder. The `Shell` (views/shell.py) keeps the stack of open routes in
`page.views`, one `ft.View` per route, as Flet's routing does: `on_view_pop` (the
phone's back button) pops the top view, `on_route_change` (a route typed into the
browser's address bar, or a deep link) rebuilds the stack from the table.

Besides the route's own parameters (`:code` → `code="…"`), `go()` may hand the builder
in-process state that cannot live in a URL: a callback (`on_code`, `got`), or the flow of
a half-filled form so that coming back to it keeps what was entered (`nav.keep(flow=…)`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import flet as ft

from ..context import AppContext
from ..flows.today import Row

LOGIN = "/login"
TODAY = "/today"
SCAN = "/scan"
SYNC = "/sync"
PHOTO = "/photo"
HANDOVER = "/handover"
PICKUP = "/stop/:code/pickup"
DELIVERY = "/stop/:code/delivery"
FAILED = "/stop/:code/failed"
RETURN = "/stop/:code/return"
STOP_HANDOVER = "/stop/:code/handover"
STOP_SCAN = "/stop/:code/scan"
PAGES = "/stop/:code/pages"  # the dossier's pages photographed right after a citizen's pickup
COUNTER = "/counter/:id"


def stop_route(row: Row, action: str | None = None) -> str:
    """The route of what the courier does at this stop (pickup, delivery, handover, failed)."""
    return f"/stop/{row.a.code}/{action or row.action}"


def stop_scan_route(row: Row) -> str:
    """Tapping a stop: scan the envelope in hand first; the scan opens the stop's form."""
    return f"/stop/{row.a.code}/scan"


def pages_route(code: str) -> str:
    """Photographing the dossier's pages, offered right after a pickup from a citizen."""
    return PAGES.replace(":code", code)


def counter_route(handover_id: int) -> str:
    return f"/counter/{handover_id}"


class Navigator(Protocol):
    """What a screen may ask of the frame it is shown in (the Shell; tests use the same)."""

    @property
    def ctx(self) -> AppContext: ...

    def go(self, route: str, *, root: bool = False, **state: Any) -> None:
        """Open `route` on top (or alone, `root=True`), passing `state` to its builder."""

    def replace(self, route: str, **state: Any) -> None:
        """Open `route` in place of the screen on top."""

    def back(self) -> None: ...

    def keep(self, **state: Any) -> None:
        """Rebuilding the screen on top (back from a photo, another language) passes `state` too."""

    def showing(self, control: ft.Control) -> bool:
        """Whether `control` is still the screen on top (background loops stop when not)."""

    def set_title(self, text: str) -> None: ...

    def toast(self, text: str, *, error: bool = False) -> None: ...

    def update(self) -> None: ...

    def run_task(self, task: Callable[[], Awaitable[None]]) -> None: ...

    def wake_sync(self) -> None: ...

    async def sync_once(self) -> None: ...

    async def report_saved(self, ids: list[str]) -> None:
        """Records just written: sync them, then say whether they reached the server."""

    async def locate(self) -> None:
        """Ask the GPS for today's position (re-renders Today when it moved)."""

    def session_expired(self) -> None: ...


Screen = Callable[..., ft.Control]
"""builder(nav, **route_params, **state) -> the screen's control; it sets its own title."""


class UnknownRoute(LookupError):
    pass


@dataclass
class Routes:
    """Route templates (`/stop/:code/pickup`) to screen builders, matched in the order added."""

    _table: list[tuple[str, Screen]] = field(default_factory=list)

    def add(self, template: str, screen: Screen) -> None:
        if any(t == template for t, _ in self._table):
            raise ValueError(f"route {template} registered twice")
        self._table.append((template, screen))

    def resolve(self, route: str) -> tuple[Screen, dict[str, str]]:
        path = route.split("?", 1)[0]
        for template, screen in self._table:
            match = ft.TemplateRoute(path)
            if match.match(template):
                names = [p[1:] for p in template.split("/") if p.startswith(":")]
                return screen, {n: getattr(match, n) for n in names}
        raise UnknownRoute(route)

    def templates(self) -> list[str]:
        return [t for t, _ in self._table]
