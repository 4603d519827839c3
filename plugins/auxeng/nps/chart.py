"""The NPS trend chart: a PNG rendered with matplotlib (Agg, no display) for the weekly digest,
and the same chart as inline SVG for the dashboard (plain Python: no matplotlib to import, so
the page shows it at once).

Top: NPS per week with its 95% interval as a band (weeks below the privacy threshold are
gaps, never numbers), on a fixed -100..100 axis. Bottom: answers per week, from 0 to the
busiest week, never less than the privacy threshold (:func:`answers_axis`: an empty chart
still has a scale). The PNG's bytes are deterministic for the same data (no timestamp), so a
re-sent digest carries the same image.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from html import escape
from typing import Any

from auxeng.nps.maths import MIN_RESPONSES, NpsResult

PROMOTER_COLOUR, BAND_COLOUR, BAR_COLOUR, ZERO_COLOUR = "#2563eb", "#bfdbfe", "#94a3b8", "#475569"
NPS_TICKS = (-100, -50, 0, 50, 100)


@dataclass(frozen=True)
class WeekPoint:
    """One week of the trend: its Monday and that week's NPS result."""

    week: date
    result: NpsResult


def answers_axis(points: Sequence[WeekPoint], min_responses: int = MIN_RESPONSES) -> tuple[int, list[int]]:
    """The answers axis: (top, ticks) from 0 to the busiest week's answers, at least the privacy
    threshold (so that no data still gives a scale), with at most 5 whole-number ticks."""
    top = max([p.result.responses for p in points] + [min_responses, 1])
    step = math.ceil(top / 4)
    top = step * math.ceil(top / step)
    return top, list(range(0, top + 1, step))


def shown(point: WeekPoint, min_responses: int) -> bool:
    """Whether a week's NPS may be shown (enough answers for the privacy threshold)."""
    return point.result.responses >= min_responses and point.result.score is not None


def trend_chart(
    points: Sequence[WeekPoint],
    *,
    title: str = "NPS, last 13 weeks",
    min_responses: int = MIN_RESPONSES,
    width_px: int = 800,
    height_px: int = 420,
) -> bytes:
    """The PNG bytes of the trend chart of ``points`` (oldest first)."""
    figure = trend_figure(
        points, title=title, min_responses=min_responses, width_px=width_px, height_px=height_px
    )
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def trend_figure(
    points: Sequence[WeekPoint], *, title: str, min_responses: int, width_px: int, height_px: int
) -> Any:
    """The matplotlib ``Figure`` of :func:`trend_chart` (NPS above, answers below)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    from matplotlib.figure import Figure

    dpi = 100
    figure = Figure(figsize=(width_px / dpi, height_px / dpi), dpi=dpi, layout="constrained")
    top, bottom = figure.subplots(2, 1, sharex=True, height_ratios=(3, 1))
    positions = list(range(len(points)))
    visible = [shown(p, min_responses) for p in points]

    def masked(values: list[float]) -> list[float]:
        return [value if ok else float("nan") for value, ok in zip(values, visible, strict=True)]

    scores = masked([p.result.score if p.result.score is not None else 0.0 for p in points])
    low = masked([p.result.low for p in points])
    high = masked([p.result.high for p in points])
    top.fill_between(positions, low, high, color=BAND_COLOUR, linewidth=0, label="95% interval")
    top.plot(positions, scores, color=PROMOTER_COLOUR, marker="o", linewidth=2, label="NPS")
    top.axhline(0, color=ZERO_COLOUR, linewidth=0.8)
    top.set_ylim(NPS_TICKS[0], NPS_TICKS[-1])
    top.set_yticks(NPS_TICKS)
    top.set_ylabel("NPS")
    top.set_title(title, loc="left", fontsize=12)
    top.grid(axis="y", alpha=0.3)
    top.legend(loc="lower left", fontsize=8, frameon=False)
    for x, ok in zip(positions, visible, strict=True):
        if not ok:
            top.annotate("too few", (x, 0), ha="center", va="bottom", fontsize=7, color=ZERO_COLOUR)

    bottom.bar(positions, [p.result.responses for p in points], color=BAR_COLOUR)
    most, ticks = answers_axis(points, min_responses)
    bottom.set_ylim(0, most)
    bottom.set_yticks(ticks)
    bottom.set_ylabel("answers")
    bottom.grid(axis="y", alpha=0.3)
    bottom.set_xticks(positions, [f"{p.week:%d %b}" for p in points], rotation=45, ha="right", fontsize=8)
    return figure


SVG_WIDTH, SVG_HEIGHT = 800, 400
_LEFT, _RIGHT, _NPS_TOP, _NPS_BOTTOM, _BARS_TOP, _BARS_BOTTOM = 64, 784, 16, 270, 300, 376


def trend_svg(
    points: Sequence[WeekPoint],
    *,
    title: str = "NPS, last 13 weeks",
    min_responses: int = MIN_RESPONSES,
    label_id: str = "nps-chart",
) -> str:
    """The trend chart of ``points`` (oldest first) as an inline SVG element, the PNG's axes and
    gaps; each shown week's dot says its figures on hover. ``title`` is its accessible name (the
    page shows its own heading above it). Every text is escaped."""
    width = (_RIGHT - _LEFT) / max(len(points), 1)

    def x(i: int) -> float:
        return round(_LEFT + (i + 0.5) * width, 1)

    def y(score: float) -> float:
        span = NPS_TICKS[-1] - NPS_TICKS[0]
        return round(_NPS_TOP + (NPS_TICKS[-1] - score) / span * (_NPS_BOTTOM - _NPS_TOP), 1)

    most, ticks = answers_axis(points, min_responses)

    def bar_y(answers: int) -> float:
        return round(_BARS_BOTTOM - answers / most * (_BARS_BOTTOM - _BARS_TOP), 1)

    visible = [shown(p, min_responses) for p in points]
    shown_weeks = sum(visible)
    answers = sum(p.result.responses for p in points)
    desc = (
        f"{len(points)} weeks, {answers} answers; NPS shown for {shown_weeks} of them "
        f"(a week needs {min_responses} answers)."
    )
    out = [
        f'<svg id="{escape(label_id)}" class="chart" role="img" viewBox="0 0 {SVG_WIDTH} {SVG_HEIGHT}" '
        f'width="{SVG_WIDTH}" height="{SVG_HEIGHT}" aria-labelledby="{escape(label_id)}-title {escape(label_id)}-desc" '
        'font-family="system-ui, sans-serif" font-size="12">',
        f'<title id="{escape(label_id)}-title">{escape(title)}</title>',
        f'<desc id="{escape(label_id)}-desc">{escape(desc)}</desc>',
    ]
    for tick in NPS_TICKS:
        label = f"{tick:+d}" if tick else "0"
        colour, stroke = (ZERO_COLOUR, 1) if tick == 0 else ("#e2e8f0", 0.8)
        out.append(
            f'<line x1="{_LEFT}" x2="{_RIGHT}" y1="{y(tick)}" y2="{y(tick)}" stroke="{colour}" '
            f'stroke-width="{stroke}"/><text class="nps-tick" x="{_LEFT - 8}" y="{y(tick) + 4}" '
            f'text-anchor="end" fill="{ZERO_COLOUR}">{label}</text>'
        )
    out.append(
        f'<text x="16" y="{(_NPS_TOP + _NPS_BOTTOM) / 2}" fill="{ZERO_COLOUR}" '
        f'transform="rotate(-90 16 {(_NPS_TOP + _NPS_BOTTOM) / 2})" text-anchor="middle">NPS</text>'
    )
    runs: list[list[int]] = []
    for i, ok in enumerate(visible):
        if ok and runs and runs[-1][-1] == i - 1:
            runs[-1].append(i)
        elif ok:
            runs.append([i])
    for run in runs:
        if len(run) == 1:
            i = run[0]
            r = points[i].result
            out.append(
                f'<rect x="{x(i) - 6}" y="{y(r.high)}" width="12" height="{round(y(r.low) - y(r.high), 1)}" '
                f'fill="{BAND_COLOUR}"/>'
            )
            continue
        upper = [f"{x(i)},{y(points[i].result.high)}" for i in run]
        lower = [f"{x(i)},{y(points[i].result.low)}" for i in reversed(run)]
        out.append(f'<polygon points="{" ".join(upper + lower)}" fill="{BAND_COLOUR}"/>')
        line = " ".join(f"{x(i)},{y(points[i].result.score or 0)}" for i in run)
        out.append(f'<polyline points="{line}" fill="none" stroke="{PROMOTER_COLOUR}" stroke-width="2"/>')
    for i, (point, ok) in enumerate(zip(points, visible, strict=True)):
        label = f"{point.week:%d %b}"
        if ok:
            out.append(
                f'<circle cx="{x(i)}" cy="{y(point.result.score or 0)}" r="4" fill="{PROMOTER_COLOUR}">'
                f"<title>{escape(label)}: {escape(point.result.shown(min_responses))}</title></circle>"
            )
        else:
            out.append(
                f'<text class="too-few" x="{x(i)}" y="{y(0) - 6}" text-anchor="middle" font-size="10" '
                f'fill="{ZERO_COLOUR}">too few</text>'
            )
        height = round(_BARS_BOTTOM - bar_y(point.result.responses), 1)
        if height:
            out.append(
                f'<rect x="{round(x(i) - width * 0.3, 1)}" y="{bar_y(point.result.responses)}" '
                f'width="{round(width * 0.6, 1)}" height="{height}" fill="{BAR_COLOUR}">'
                f"<title>{escape(label)}: {point.result.responses} answers</title></rect>"
            )
        out.append(
            f'<text x="{x(i)}" y="{_BARS_BOTTOM + 18}" text-anchor="middle" font-size="11" '
            f'fill="{ZERO_COLOUR}">{escape(label)}</text>'
        )
    for tick in (ticks[0], ticks[-1]):
        out.append(
            f'<line x1="{_LEFT}" x2="{_RIGHT}" y1="{bar_y(tick)}" y2="{bar_y(tick)}" stroke="#e2e8f0"/>'
            f'<text class="answers-tick" x="{_LEFT - 8}" y="{bar_y(tick) + 4}" text-anchor="end" '
            f'fill="{ZERO_COLOUR}">{tick}</text>'
        )
    out.append(
        f'<text x="16" y="{(_BARS_TOP + _BARS_BOTTOM) / 2}" fill="{ZERO_COLOUR}" '
        f'transform="rotate(-90 16 {(_BARS_TOP + _BARS_BOTTOM) / 2})" text-anchor="middle">answers</text>'
    )
    legend_y = _NPS_BOTTOM - 10
    out.append(
        f'<rect x="{_LEFT + 8}" y="{legend_y - 8}" width="14" height="10" fill="{BAND_COLOUR}"/>'
        f'<text x="{_LEFT + 28}" y="{legend_y + 1}" font-size="11" fill="{ZERO_COLOUR}">95% interval</text>'
        f'<line x1="{_LEFT + 116}" x2="{_LEFT + 134}" y1="{legend_y - 3}" y2="{legend_y - 3}" '
        f'stroke="{PROMOTER_COLOUR}" stroke-width="2"/>'
        f'<text x="{_LEFT + 140}" y="{legend_y + 1}" font-size="11" fill="{ZERO_COLOUR}">NPS</text>'
    )
    out.append("</svg>")
    return "".join(out)
