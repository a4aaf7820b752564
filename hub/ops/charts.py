"""PURE: a small inline SVG line chart, server-rendered (no script, no CDN: the admin works
offline and under a strict Content-Security-Policy).

``line_chart(title, points, unit)`` draws ``points`` — (unix seconds, value) in time order —
as one polyline scaled to the chart box (y from 0 to the largest value), with the title, the
latest and largest values and the time span as text. Each point is also a ``<circle>`` with a
``<title>`` tooltip, so a single point still shows. Every text is escaped.
"""

from __future__ import annotations

from datetime import datetime, timezone
from html import escape
from typing import Sequence

WIDTH, HEIGHT, PAD_X, PAD_TOP, PAD_BOTTOM = 640, 140, 8, 22, 18


def _fmt(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.2f}"


def _clock(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def scale(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """Chart coordinates of ``points``: x over the time span, y from 0 (bottom) to the max."""
    t0, t1 = points[0][0], points[-1][0]
    top = max(max(v for _, v in points), 0.0) or 1.0
    span = (t1 - t0) or 1.0
    inner_w, inner_h = WIDTH - 2 * PAD_X, HEIGHT - PAD_TOP - PAD_BOTTOM
    return [(round(PAD_X + (t - t0) / span * inner_w if t1 > t0 else WIDTH / 2, 1),
             round(PAD_TOP + inner_h - max(v, 0.0) / top * inner_h, 1)) for t, v in points]


def line_chart(title: str, points: Sequence[tuple[float, float]], unit: str = "") -> str:
    head = (f'<svg class="hub-chart" xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
            f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}">'
            f'<rect width="{WIDTH}" height="{HEIGHT}" fill="#fafafa" stroke="#ddd"/>')
    if not points:
        return (f'{head}<text x="{PAD_X}" y="16" font-size="12">{escape(title)}</text>'
                f'<text x="{PAD_X}" y="{HEIGHT // 2}" font-size="12" fill="#888">no snapshots yet</text></svg>')
    coords = scale(points)
    suffix = f" {unit}" if unit else ""
    summary = (f"{escape(title)}: now {_fmt(points[-1][1])}{escape(suffix)}, "
               f"max {_fmt(max(v for _, v in points))}{escape(suffix)}")
    polyline = " ".join(f"{x},{y}" for x, y in coords)
    dots = "".join(f'<circle cx="{x}" cy="{y}" r="2" fill="#417690"><title>{escape(_clock(t))}: '
                   f'{_fmt(v)}{escape(suffix)}</title></circle>' for (x, y), (t, v) in zip(coords, points))
    return (f'{head}<text x="{PAD_X}" y="16" font-size="12">{summary}</text>'
            f'<polyline fill="none" stroke="#417690" stroke-width="1.5" points="{polyline}"/>{dots}'
            f'<text x="{PAD_X}" y="{HEIGHT - 5}" font-size="10" fill="#666">{escape(_clock(points[0][0]))}</text>'
            f'<text x="{WIDTH - PAD_X}" y="{HEIGHT - 5}" font-size="10" fill="#666" text-anchor="end">'
            f'{escape(_clock(points[-1][0]))}</text></svg>')


def rates(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """Per-second rates between consecutive (time, counter) points, at the later time. A
    counter that went down (the process restarted) counts from zero, as Prometheus does."""
    out = []
    for (t0, v0), (t1, v1) in zip(points, points[1:]):
        if t1 > t0:
            delta = v1 - v0 if v1 >= v0 else v1
            out.append((t1, delta / (t1 - t0)))
    return out
