"""Small HTML pages for the reports of accuracy assessment and class training.

Only the standard library: values are escaped, numbers formatted by the caller or here.
"""
from __future__ import annotations

import html
from typing import Iterable, Mapping, Sequence

STYLE = ("body{font-family:sans-serif;margin:1.5em;max-width:70em}"
         "table{border-collapse:collapse;margin:.5em 0 1.2em}"
         "td,th{border:1px solid #bbb;padding:.2em .5em;text-align:right}"
         "th{background:#eee}td.l,th.l{text-align:left}.note{color:#444}")


def fmt(value, digits: int = 3) -> str:
    """A number for a table: None/NaN as an en dash, floats with ``digits`` decimals."""
    if value is None:
        return "–"
    if isinstance(value, float):
        if value != value:  # NaN
            return "–"
        return f"{value:.{digits}f}"
    return str(value)


def table(header: Sequence[str], rows: Iterable[Sequence], first_left: bool = True) -> str:
    """An HTML table; the first column left-aligned (labels)."""
    def cell(tag, i, v):
        cls = ' class="l"' if first_left and i == 0 else ""
        return f"<{tag}{cls}>{html.escape(v if isinstance(v, str) else fmt(v))}</{tag}>"

    out = ["<table><tr>" + "".join(cell("th", i, h) for i, h in enumerate(header)) + "</tr>"]
    for row in rows:
        out.append("<tr>" + "".join(cell("td", i, v) for i, v in enumerate(row)) + "</tr>")
    return "\n".join(out) + "</table>"


def paragraph(text: str, note: bool = False) -> str:
    cls = ' class="note"' if note else ""
    return f"<p{cls}>{html.escape(text)}</p>"


def page(title: str, parts: Sequence[str]) -> str:
    """A complete HTML document."""
    return ("<!DOCTYPE html><html><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>"
            f"<h1>{html.escape(title)}</h1>\n" + "\n".join(parts) + "</body></html>")


def heading(text: str) -> str:
    return f"<h2>{html.escape(text)}</h2>"


def svg_lines(series: Mapping[str, Sequence[tuple[float, float]]], x_label: str, y_label: str,
              width: int = 520, height: int = 300) -> str:
    """A line chart as inline SVG: ``series`` name -> [(x, y)], y in 0..1, x on a log axis
    when it spans more than a decade (learning curves)."""
    import math

    colours = ["#1b7837", "#d73027", "#4575b4", "#984ea3"]
    xs = [x for pts in series.values() for x, _ in pts if x > 0]
    if not xs:
        return ""
    lo, hi = min(xs), max(xs)
    log = hi / max(lo, 1e-9) > 10
    tx = (lambda v: math.log10(v)) if log else (lambda v: v)
    x0, x1 = tx(lo), tx(hi) if hi > lo else tx(lo) + 1
    ys = [y for pts in series.values() for _, y in pts if y == y]
    y0, y1 = min(0.0, min(ys, default=0)), 1.0
    m = 45

    def px(x, y):
        return (m + (tx(x) - x0) / (x1 - x0 or 1) * (width - 2 * m),
                height - m - (y - y0) / (y1 - y0) * (height - 2 * m))

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             'font-family="sans-serif" font-size="11">',
             f'<rect x="{m}" y="{m}" width="{width - 2 * m}" height="{height - 2 * m}" '
             'fill="none" stroke="#999"/>']
    for frac in (0.0, 0.25, 0.5, 0.75, 1.0):
        y = y0 + frac * (y1 - y0)
        _, py = px(lo, y)
        parts.append(f'<text x="{m - 5}" y="{py + 4:.1f}" text-anchor="end">{y:.2f}</text>')
    for x in sorted({pt[0] for pts in series.values() for pt in pts}):
        qx, _ = px(x, y0)
        parts.append(f'<text x="{qx:.1f}" y="{height - m + 14}" text-anchor="middle">{x:g}</text>')
    for k, (name, pts) in enumerate(series.items()):
        c = colours[k % len(colours)]
        path = " ".join(f"{a:.1f},{b:.1f}" for a, b in (px(x, y) for x, y in pts if y == y))
        parts.append(f'<polyline fill="none" stroke="{c}" stroke-width="2" points="{path}"/>')
        parts.append(f'<text x="{m + 8}" y="{m + 14 + 14 * k}" fill="{c}">'
                     f'{html.escape(name)}</text>')
    parts.append(f'<text x="{width / 2}" y="{height - 8}" text-anchor="middle">'
                 f'{html.escape(x_label)}{" (log scale)" if log else ""}</text>')
    parts.append(f'<text x="12" y="{height / 2}" transform="rotate(-90 12 {height / 2})" '
                 f'text-anchor="middle">{html.escape(y_label)}</text></svg>')
    return "\n".join(parts)
