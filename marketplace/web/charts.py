"""Server-side SVG charts as strings: no script, no CDN, readable at 360 px and 1280 px.

Every chart is a 300 x 220 viewBox with 16-unit text: on a 360-px phone its box is about 300 px wide, so
the text is the body size (16 px); on a wide screen CSS lets it grow to 26rem (text ~22 px), never
thinner. It uses the page's text colour (currentColor) and escapes all text. Axis labels and titles
come from the caller in the reader's language; numbers are formatted for that language. Each mark
carries a class and data-* attributes naming the value it draws, so tests (and screen readers, via
<title>) can check it.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape
from typing import Final

from marketplace.web.formatting import number

WIDTH: Final = 300
HEIGHT: Final = 220
FONT: Final = 16
LEFT: Final = 52
RIGHT: Final = 10
TOP: Final = 24
BOTTOM: Final = 44
PLOT_W: Final = WIDTH - LEFT - RIGHT
PLOT_H: Final = HEIGHT - TOP - BOTTOM


def _num(x: float) -> str:
    """A tick value in the reader's number format, at most two decimals."""
    if x == int(x):
        return number(int(x))
    return number(x, 2).rstrip("0").rstrip(".,")


def _svg(title: str, body: list[str]) -> str:
    t = escape(title)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" '
        f'role="img" aria-label="{t}" font-size="{FONT}" fill="currentColor"><title>{t}</title>'
        + "".join(body) + "</svg>"
    )


def _short(value: float) -> str:
    """1234567 -> 1.2M; labels must fit a 360 px chart."""
    for size, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return f"{_num(round(value / size, 1))}{unit}"
    return _num(round(value, 2))


def _axes(x_label: str, y_label: str, y_max: float) -> list[str]:
    base = TOP + PLOT_H
    return [
        f'<line x1="{LEFT}" y1="{base}" x2="{WIDTH - RIGHT}" y2="{base}" stroke="currentColor"/>',
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{base}" stroke="currentColor"/>',
        f'<text x="{LEFT - 4}" y="{TOP + 4}" text-anchor="end">{escape(_short(y_max))}</text>',
        f'<text x="{LEFT - 4}" y="{base}" text-anchor="end">0</text>',
        f'<text class="axis-label" x="{LEFT + PLOT_W / 2}" y="{HEIGHT - 4}" text-anchor="middle">{escape(x_label)}</text>',
        f'<text class="axis-label" x="4" y="{TOP - 8}">{escape(y_label)}</text>',
    ]


def loss_histogram(edges: Sequence[float], probabilities: Sequence[float], var: float, title: str = "Loss distribution",
                   unit: str = "sat", x_label: str = "loss", y_label: str = "probability", var_label: str = "VaR") -> str:
    """Bars of P(loss in bin) over loss amount, with the VaR drawn as a vertical line."""
    if len(edges) != len(probabilities) + 1 or not probabilities:
        raise ValueError("A histogram needs one more edge than bars.")
    low, high = float(edges[0]), float(edges[-1])
    span = high - low or 1.0
    top = max(probabilities) or 1.0
    base = TOP + PLOT_H
    body = _axes(f"{x_label} ({unit})", y_label, top)

    def x_of(v: float) -> float:
        return LEFT + (min(max(v, low), high) - low) / span * PLOT_W

    for left, right, p in zip(edges[:-1], edges[1:], probabilities):
        h = float(p) / top * PLOT_H
        body.append(
            f'<rect class="bar" x="{x_of(left):.2f}" y="{base - h:.2f}" width="{max(x_of(right) - x_of(left) - 0.5, 0.5):.2f}" '
            f'height="{h:.2f}" fill="currentColor" fill-opacity="0.45" data-low="{left}" data-p="{p}"/>'
        )
    vx = x_of(var)
    body.append(f'<line class="var" x1="{vx:.2f}" y1="{TOP}" x2="{vx:.2f}" y2="{base}" stroke="#c0392b" '
                f'stroke-width="2" data-value="{var}"/>')
    anchor = "end" if vx > LEFT + PLOT_W / 2 else "start"
    body.append(f'<text x="{vx + (-3 if anchor == "end" else 3):.2f}" y="{TOP + 10}" text-anchor="{anchor}" '
                f'fill="#c0392b">{escape(var_label)} {escape(_short(var))}</text>')
    body.append(f'<text x="{LEFT}" y="{base + 18}">{escape(_short(low))}</text>')
    body.append(f'<text x="{WIDTH - RIGHT}" y="{base + 18}" text-anchor="end">{escape(_short(high))}</text>')
    return _svg(title, body)


def bar_chart(labels: Sequence[str], values: Sequence[float], title: str = "Allocation", unit: str = "sat") -> str:
    """Horizontal bars, one per label (allocation by grade or purpose), value written beside each."""
    if len(labels) != len(values) or any(v < 0 for v in values):
        raise ValueError("Give one non-negative value per label.")
    top = max(values, default=0) or 1.0
    rows = max(len(labels), 1)
    row_h = (HEIGHT - TOP - 8) / rows
    label_w = 96
    bar_w = WIDTH - label_w - 52
    body = [f'<text x="4" y="{TOP - 8}">{escape(title)} ({escape(unit)})</text>']
    for i, (label, value) in enumerate(zip(labels, values)):
        y = TOP + i * row_h
        w = float(value) / top * bar_w
        body.append(f'<text x="{label_w - 4}" y="{y + row_h * 0.65:.2f}" text-anchor="end">{escape(str(label))}</text>')
        body.append(f'<rect class="bar" x="{label_w}" y="{y + row_h * 0.15:.2f}" width="{w:.2f}" height="{row_h * 0.7:.2f}" '
                    f'fill="currentColor" fill-opacity="0.45" data-label="{escape(str(label))}" data-value="{value}"/>')
        body.append(f'<text x="{label_w + w + 4:.2f}" y="{y + row_h * 0.65:.2f}">{escape(_short(float(value)))}</text>')
    return _svg(title, body)


def cashflow_timeline(days: Sequence[int], amounts: Sequence[float], day_labels: tuple[str, str] = ("", ""),
                      title: str = "Cash flows", unit: str = "sat") -> str:
    """Stems up (money back) and down (money lent) over time, around a zero line."""
    if len(days) != len(amounts):
        raise ValueError("Give one day per cash flow.")
    first, last = (min(days), max(days)) if days else (0, 1)
    if last == first:  # one day only: the stems stand in the middle, not squeezed against an edge
        first, last = first - 1, last + 1
    span = last - first
    peak = max((abs(a) for a in amounts), default=0) or 1.0
    mid = TOP + PLOT_H / 2
    body = [
        f'<text x="4" y="{TOP - 8}">{escape(title)} ({escape(unit)})</text>',
        f'<line x1="{LEFT}" y1="{mid}" x2="{WIDTH - RIGHT}" y2="{mid}" stroke="currentColor"/>',
        f'<text x="{LEFT - 4}" y="{TOP + 4}" text-anchor="end">+{escape(_short(peak))}</text>',
        f'<text x="{LEFT - 4}" y="{TOP + PLOT_H}" text-anchor="end">-{escape(_short(peak))}</text>',
        f'<text x="{LEFT}" y="{HEIGHT - 4}">{escape(day_labels[0])}</text>',
        f'<text x="{WIDTH - RIGHT}" y="{HEIGHT - 4}" text-anchor="end">{escape(day_labels[1])}</text>',
    ]
    for day, amount in zip(days, amounts):
        x = LEFT + (day - first) / span * PLOT_W
        y = mid - float(amount) / peak * (PLOT_H / 2)
        colour = "#27ae60" if amount >= 0 else "#c0392b"
        body.append(f'<line class="flow" x1="{x:.2f}" y1="{mid}" x2="{x:.2f}" y2="{y:.2f}" stroke="{colour}" '
                    f'stroke-width="2" data-day="{day}" data-amount="{amount}"/>')
    return _svg(title, body)


def line_chart(xs: Sequence[float], ys: Sequence[float], title: str = "Chance of losing money",
               x_label: str = "number of notes", y_label: str = "probability", log_x: bool = False) -> str:
    """A polyline of y over x (the "spread over more loans" curve), a dot per point; x on a log scale if asked,
    or by itself when the counts span 30x or more (1 to 500 would crowd into the left edge)."""
    if len(xs) != len(ys) or not xs:
        raise ValueError("Give one y per x, at least one point.")
    if log_x and min(xs) <= 0:
        raise ValueError("A log scale needs positive x.")
    x_low, x_high = min(xs), max(xs)
    logarithmic = x_low > 0 and (log_x or x_high / x_low >= 30)

    def position(x: float) -> float:
        if logarithmic:
            return (math.log10(x) - math.log10(x_low)) / ((math.log10(x_high) - math.log10(x_low)) or 1.0)
        return (x - x_low) / ((x_high - x_low) or 1.0)

    top = max(ys) or 1.0
    base = TOP + PLOT_H
    body = _axes(x_label + (" (log)" if logarithmic else ""), y_label, top)
    points = [(LEFT + position(x) * PLOT_W, base - y / top * PLOT_H) for x, y in zip(xs, ys)]
    if logarithmic:  # a tick at each power of ten inside the range
        tick = 10.0
        while tick < x_high:
            if tick > x_low * 1.5:
                tx = LEFT + position(tick) * PLOT_W
                body.append(f'<text x="{tx:.2f}" y="{base + 18}" text-anchor="middle">{escape(_short(tick))}</text>')
            tick *= 10
    body.append('<polyline fill="none" stroke="currentColor" stroke-width="2" points="'
                + " ".join(f"{px:.2f},{py:.2f}" for px, py in points) + '"/>')
    for (px, py), x, y in zip(points, xs, ys):
        body.append(f'<circle class="point" cx="{px:.2f}" cy="{py:.2f}" r="2.5" data-x="{x}" data-y="{y}"/>')
    body.append(f'<text x="{LEFT}" y="{base + 18}">{escape(_short(x_low))}</text>')
    body.append(f'<text x="{WIDTH - RIGHT}" y="{base + 18}" text-anchor="end">{escape(_short(x_high))}</text>')
    return _svg(title, body)
