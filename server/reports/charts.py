"""Charts as server-side SVG: no script, nothing fetched, prints as it shows."""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

from shared.i18n import DEFAULT, number

PALETTE = ("#0b5394", "#1b7f3a", "#e6a100", "#c62828", "#6a3d9a", "#37424a", "#0097a7", "#8d6e63")


def bar_chart(
    title: str, items: Sequence[tuple[str, float]], width: int = 440, unit: str = "", lang: str = DEFAULT
) -> Markup:
    """Horizontal bars, one per item, the value written at the end of each (as `lang` writes numbers)."""
    row, label_w, top = 24, 215, 28
    height = top + row * max(len(items), 1) + 8
    peak = max((v for _, v in items), default=0) or 1
    span = width - label_w - 60
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{escape(title)}">',
        f'<text x="0" y="16" font-size="13" font-weight="700" fill="#1b1b1b">{escape(title)}</text>',
    ]
    for i, (label, value) in enumerate(items):
        y = top + i * row
        w = span * value / peak
        text = f"{number(value, None, lang)}{unit}"
        out.append(
            f'<text x="{label_w - 6}" y="{y + 15}" font-size="12" text-anchor="end" fill="#37424a">'
            f"{escape(label if len(label) <= 32 else label[:31] + '…')}</text>"
            f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{row - 8}" rx="2" '
            f'fill="{PALETTE[i % len(PALETTE)]}"><title>{escape(label)}: {escape(text)}</title></rect>'
            f'<text x="{label_w + w + 5:.1f}" y="{y + 15}" font-size="12" fill="#1b1b1b">'
            f"{escape(text)}</text>"
        )
    out.append("</svg>")
    return Markup("".join(out))


def gauge(title: str, pct: float | None, width: int = 200, lang: str = DEFAULT) -> Markup:
    """A single percentage as a filled bar (on-time rate), written as `lang` writes numbers."""
    shown = "—" if pct is None else f"{number(pct, None, lang)} %"
    fill = 0 if pct is None else max(0.0, min(pct, 100.0)) * (width - 2) / 100
    colour = "#1b7f3a" if (pct or 0) >= 90 else ("#e6a100" if (pct or 0) >= 70 else "#c62828")
    return Markup(
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {width} 52" width="{width}" '
        f'height="52" role="img" aria-label="{escape(title)}: {shown}">'
        f'<text x="0" y="14" font-size="12" fill="#37424a">{escape(title)}</text>'
        f'<rect x="1" y="22" width="{width - 2}" height="22" rx="4" fill="#eceff1"/>'
        f'<rect x="1" y="22" width="{fill:.1f}" height="22" rx="4" fill="{colour}"/>'
        f'<text x="{width / 2}" y="38" font-size="13" font-weight="700" text-anchor="middle" fill="#1b1b1b">'
        f"{shown}</text></svg>"
    )
