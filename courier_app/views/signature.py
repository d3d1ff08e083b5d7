"""The signature pad: a GestureDetector over a Canvas; every stroke point goes to the
flow's SignaturePad model (with its time), which decides whether it is a signature."""

from __future__ import annotations

import time
from collections.abc import Callable

import flet as ft
import flet.canvas as cv

from ..flows.signature import SignaturePad

INK = ft.Paint(
    color=ft.Colors.BLUE_900, stroke_width=3, stroke_cap=ft.StrokeCap.ROUND, style=ft.PaintingStyle.STROKE
)


class SignatureBox(ft.Column):
    def __init__(self, pad: SignaturePad, tr: Callable[[str], str], on_change: Callable[[], None]) -> None:
        self.pad = pad
        self._t0 = time.monotonic()
        self._on_change = on_change
        self.canvas = cv.Canvas(shapes=self._shapes(), width=pad.width, height=pad.height)
        surface = ft.GestureDetector(
            content=ft.Container(
                self.canvas,
                width=pad.width,
                height=pad.height,
                bgcolor=ft.Colors.WHITE,
                border=ft.Border.all(2, ft.Colors.BLUE_GREY_300),
                border_radius=8,
            ),
            on_pan_start=self._start,
            on_pan_update=self._move,
            on_pan_end=lambda e: self._on_change(),
            drag_interval=10,
        )
        super().__init__(
            controls=[
                ft.Text(tr("sign.prompt"), size=16),
                ft.Semantics(content=surface, identifier="sigpad", label=tr("sign.prompt")),
                ft.Row(
                    [
                        ft.TextButton(tr("sign.undo"), icon=ft.Icons.UNDO, on_click=self._undo, height=48),
                        ft.TextButton(tr("sign.clear"), icon=ft.Icons.CLEAR, on_click=self._clear, height=48),
                    ]
                ),
            ],
            spacing=6,
        )

    def _ms(self) -> int:
        return int((time.monotonic() - self._t0) * 1000)

    def _start(self, e: ft.DragStartEvent[ft.GestureDetector]) -> None:
        p = e.local_position
        self.pad.start(p.x, p.y, self._ms())
        self.canvas.shapes.append(
            cv.Points(points=[ft.Offset(p.x, p.y)], point_mode=cv.PointMode.POLYGON, paint=INK)
        )
        self.canvas.update()

    def _move(self, e: ft.DragUpdateEvent[ft.GestureDetector]) -> None:
        p = e.local_position
        if not (0 <= p.x <= self.pad.width and 0 <= p.y <= self.pad.height):
            return
        self.pad.extend(p.x, p.y, self._ms())
        stroke = self.canvas.shapes[-1] if self.canvas.shapes else None
        if not isinstance(stroke, cv.Points):
            stroke = cv.Points(points=[], point_mode=cv.PointMode.POLYGON, paint=INK)
            self.canvas.shapes.append(stroke)
        stroke.points = [*(stroke.points or []), ft.Offset(p.x, p.y)]
        self.canvas.update()

    def _shapes(self) -> list[cv.Shape]:
        return [
            cv.Points(points=[ft.Offset(x, y) for x, y, _ in s], point_mode=cv.PointMode.POLYGON, paint=INK)
            for s in self.pad.strokes
        ]

    def _redraw(self) -> None:
        self.canvas.shapes = self._shapes()
        self.canvas.update()
        self._on_change()

    def _undo(self, e: object = None) -> None:
        self.pad.undo()
        self._redraw()

    def _clear(self, e: object = None) -> None:
        self.pad.clear()
        self._redraw()
