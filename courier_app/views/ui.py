"""Shared look: large touch targets (56 px buttons, 18 px text) for a phone held on a motorbike."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flet as ft

TOUCH = 56
PRIMARY = ft.Colors.BLUE_800
LATE = ft.Colors.RED_700
SOON = ft.Colors.AMBER_800
OK = ft.Colors.GREEN_700


def button(
    text: str,
    on_click: Callable[..., Any] | None,
    *,
    icon: Any = None,
    primary: bool = True,
    danger: bool = False,
    expand: bool = True,
) -> ft.Button:
    color = LATE if danger else PRIMARY
    return ft.Button(
        content=ft.Text(text, size=18, weight=ft.FontWeight.W_600),
        icon=icon,
        on_click=on_click,
        height=TOUCH,
        expand=expand,
        bgcolor=color if primary else None,
        color=ft.Colors.WHITE if primary else color,
    )


def icon_button(icon: Any, on_click: Callable[..., Any] | None, tooltip: str) -> ft.IconButton:
    """An icon the courier taps: a full TOUCH square, never a 40 px default."""
    return ft.IconButton(icon, on_click=on_click, icon_size=30, tooltip=tooltip, width=TOUCH, height=TOUCH)


class Toggle(ft.Button):
    """A line to tick, as a full-width TOUCH-high button with a box that fills when ticked.
    Flet's Checkbox is 40 px high and a set height scales its box rather than its target."""

    def __init__(self, label: str, value: bool, on_change: Callable[[bool], None]) -> None:
        self.label, self.on_toggle = label, on_change
        super().__init__(
            content=ft.Text(label, size=17, weight=ft.FontWeight.W_600),
            on_click=lambda e: self.tick(),
            height=TOUCH,
            expand=True,
            style=ft.ButtonStyle(alignment=ft.Alignment.CENTER_LEFT),
        )
        self.show(value)

    def show(self, value: bool) -> None:
        self.value = value
        self.icon = ft.Icons.CHECK_BOX if value else ft.Icons.CHECK_BOX_OUTLINE_BLANK
        self.bgcolor = ft.Colors.BLUE_50 if value else None
        self.color = PRIMARY

    def tick(self) -> None:
        self.show(not self.value)
        self.on_toggle(self.value)
        if self.page is not None:
            self.update()


def choices(
    options: list[tuple[str, str]], selected: str | None, on_pick: Callable[[str], None]
) -> ft.Column:
    """A short list to choose one from, as full-width TOUCH-high buttons (the chosen one filled):
    larger targets than radio buttons, and each one says what it records."""
    column = ft.Column(spacing=6)

    def render(current: str | None) -> None:
        column.controls = [
            ft.Row([button(label, lambda e, v=value: pick(v), primary=value == current)])
            for value, label in options
        ]

    def pick(value: str) -> None:
        render(value)
        on_pick(value)
        if column.page is not None:
            column.update()

    render(selected)
    return column


class Segments(ft.Row):
    """One of a few, side by side, as TOUCH-high buttons (the chosen one filled). Material's
    SegmentedButton is 40 px high whatever its padding: under the 48 px a thumb needs."""

    def __init__(self, options: list[tuple[str, str]], selected: str, on_pick: Callable[[str], None]) -> None:
        super().__init__(spacing=4)
        self.options, self.on_pick = options, on_pick
        self.select(selected)

    def select(self, value: str) -> None:
        self.value = value
        self.controls = [
            ft.Button(
                content=ft.Text(label, size=15, weight=ft.FontWeight.W_600, text_align=ft.TextAlign.CENTER),
                on_click=lambda e, v=v: self.picked(v),
                height=TOUCH,
                expand=True,
                bgcolor=PRIMARY if v == value else None,
                color=ft.Colors.WHITE if v == value else PRIMARY,
                style=ft.ButtonStyle(padding=ft.Padding(4, 0, 4, 0)),
            )
            for v, label in self.options
        ]

    def picked(self, value: str) -> None:
        self.select(value)
        self.on_pick(value)


def form(controls: list[ft.Control]) -> ft.Column:
    """A screen's body: one scrolling column whose fields and buttons span the width."""
    return ft.Column(
        controls, spacing=12, scroll=ft.ScrollMode.AUTO, horizontal_alignment=ft.CrossAxisAlignment.STRETCH
    )


def title(text: str) -> ft.Text:
    return ft.Text(text, size=22, weight=ft.FontWeight.BOLD)


def note(text: str, color: Any = None, size: int = 16) -> ft.Text:
    return ft.Text(text, size=size, color=color)


def field(
    label: str,
    value: str = "",
    *,
    on_change: Callable[..., Any] | None = None,
    digits: bool = False,
    password: bool = False,
    max_length: int | None = None,
) -> ft.TextField:
    return ft.TextField(
        label=label,
        value=value,
        on_change=on_change,
        keyboard_type=ft.KeyboardType.NUMBER if digits else ft.KeyboardType.TEXT,
        password=password,
        can_reveal_password=password,
        max_length=max_length,
        # no "0/4" under the box: a screen reader reads the counter out, in English
        counter=ft.Text("") if max_length is not None else None,
        text_size=18,
    )


def bound_field(label: str, target: object, attr: str, *, strip: bool = False, **kw: Any) -> ft.TextField:
    """A field that edits `target.attr` as the courier types (trimmed when `strip`)."""
    box = field(label, getattr(target, attr), **kw)

    def changed(e: Any) -> None:
        text = box.value or ""
        setattr(target, attr, text.strip() if strip else text)

    box.on_change = changed
    return box


def error_text() -> ft.Text:
    return ft.Text("", color=LATE, size=16, weight=ft.FontWeight.W_600)


def badge(text: str, color: Any) -> ft.Container:
    return ft.Container(
        ft.Text(text, size=13, color=ft.Colors.WHITE, weight=ft.FontWeight.BOLD),
        bgcolor=color,
        padding=ft.Padding(8, 3, 8, 3),
        border_radius=12,
    )


def banner(text: str, color: Any, on_click: Callable[..., Any], identifier: str) -> ft.Semantics:
    """A tappable strip of white text on a colour above a list (a button to the screen reader)."""
    return ft.Semantics(
        content=ft.Container(
            ft.Text(text, color=ft.Colors.WHITE, size=16, weight=ft.FontWeight.W_600),
            bgcolor=color,
            padding=12,
            border_radius=8,
            on_click=on_click,
        ),
        identifier=identifier,
        button=True,
    )


def km(meters: float | None) -> str:
    if meters is None:
        return "—"
    return f"{meters:.0f} m" if meters < 1000 else f"{meters / 1000:.1f} km".replace(".", ",")
