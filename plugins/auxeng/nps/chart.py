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
    return count_axis([p.result.responses for p in points], min_responses)


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
SCORE_TICKS = (0, 25, 50, 75, 100)


@dataclass(frozen=True)
class SeriesPoint:
    """One week of a weekly chart: ``value`` is None when the week is a gap (too few to show);
    ``low``/``high`` its interval (None: no band); ``count`` the bar below; ``text`` the dot's label."""

    week: date
    value: float | None
    count: int
    text: str = ""
    low: float | None = None
    high: float | None = None


def count_axis(counts: Sequence[int], minimum: int) -> tuple[int, list[int]]:
    """A count axis from 0 to the largest count, at least ``minimum`` (so no data still gives a
    scale), with at most 5 whole-number ticks."""
    top = max([*counts, minimum, 1])
    step = math.ceil(top / 4)
    top = step * math.ceil(top / step)
    return top, list(range(0, top + 1, step))


def trend_svg(
    points: Sequence[WeekPoint],
    *,
    title: str = "NPS, last 13 weeks",
    min_responses: int = MIN_RESPONSES,
    label_id: str = "nps-chart",
) -> str:
    """The NPS trend chart of ``points`` (oldest first) as an inline SVG element, the PNG's axes and
    gaps (:func:`series_svg` on a -100..100 axis with the 95% interval as a band)."""
    series = [
        SeriesPoint(
            week=p.week,
            value=(p.result.score or 0) if shown(p, min_responses) else None,
            count=p.result.responses,
            text=p.result.shown(min_responses),
            low=p.result.low,
            high=p.result.high,
        )
        for p in points
    ]
    shown_weeks = sum(point.value is not None for point in series)
    answers = sum(p.result.responses for p in points)
    return series_svg(
        series,
        title=title,
        desc=(
            f"{len(points)} weeks, {answers} answers; NPS shown for {shown_weeks} of them "
            f"(a week needs {min_responses} answers)."
        ),
        label_id=label_id,
        ticks=NPS_TICKS,
        value_name="NPS",
        count_name="answers",
        count_minimum=min_responses,
        signed=True,
        band_label="95% interval",
    )


def series_svg(
    points: Sequence[SeriesPoint],
    *,
    title: str,
    desc: str,
    label_id: str,
    ticks: Sequence[int],
    value_name: str,
    count_name: str,
    count_minimum: int,
    signed: bool = False,
    band_label: str | None = None,
    gap_label: str | None = "too few",
) -> str:
    """A weekly chart as an inline SVG element: ``value_name`` per week on the fixed axis ``ticks``
    (its interval as a band where the points have one; a gap, labelled ``gap_label`` unless None,
    where a point has no value), and ``count_name`` per week as bars below. Each shown week's dot says its ``text`` on
    hover. ``title`` is its accessible name, ``desc`` its description. Every text is escaped; tick
    labels carry the classes ``{value_name}-tick`` and ``{count_name}-tick`` (lowercase)."""
    width = (_RIGHT - _LEFT) / max(len(points), 1)
    value_class, count_class = f"{value_name.lower()}-tick", f"{count_name.lower()}-tick"

    def x(i: int) -> float:
        return round(_LEFT + (i + 0.5) * width, 1)

    def y(value: float) -> float:
        span = ticks[-1] - ticks[0]
        return round(_NPS_TOP + (ticks[-1] - value) / span * (_NPS_BOTTOM - _NPS_TOP), 1)

    most, count_ticks = count_axis([p.count for p in points], count_minimum)

    def bar_y(count: int) -> float:
        return round(_BARS_BOTTOM - count / most * (_BARS_BOTTOM - _BARS_TOP), 1)

    ident = escape(label_id)
    out = [
        f'<svg id="{ident}" class="chart" role="img" viewBox="0 0 {SVG_WIDTH} {SVG_HEIGHT}" '
        f'width="{SVG_WIDTH}" height="{SVG_HEIGHT}" aria-labelledby="{ident}-title {ident}-desc" '
        'font-family="system-ui, sans-serif" font-size="12">',
        f'<title id="{ident}-title">{escape(title)}</title>',
        f'<desc id="{ident}-desc">{escape(desc)}</desc>',
    ]
    zero = 0 if ticks[0] < 0 < ticks[-1] else None
    for tick in ticks:
        label = f"{tick:+d}" if signed and tick else str(tick)
        colour, stroke = (ZERO_COLOUR, 1) if tick == zero else ("#e2e8f0", 0.8)
        out.append(
            f'<line x1="{_LEFT}" x2="{_RIGHT}" y1="{y(tick)}" y2="{y(tick)}" stroke="{colour}" '
            f'stroke-width="{stroke}"/><text class="{value_class}" x="{_LEFT - 8}" y="{y(tick) + 4}" '
            f'text-anchor="end" fill="{ZERO_COLOUR}">{label}</text>'
        )
    out.append(
        f'<text x="16" y="{(_NPS_TOP + _NPS_BOTTOM) / 2}" fill="{ZERO_COLOUR}" '
        f'transform="rotate(-90 16 {(_NPS_TOP + _NPS_BOTTOM) / 2})" text-anchor="middle">{escape(value_name)}</text>'
    )
    runs: list[list[int]] = []
    for i, point in enumerate(points):
        if point.value is not None and runs and runs[-1][-1] == i - 1:
            runs[-1].append(i)
        elif point.value is not None:
            runs.append([i])
    for run in runs:
        band = [(i, points[i].low, points[i].high) for i in run]
        bounds = [(i, low, high) for i, low, high in band if low is not None and high is not None]
        if len(run) == 1:
            for i, low, high in bounds:
                out.append(
                    f'<rect x="{x(i) - 6}" y="{y(high)}" width="12" height="{round(y(low) - y(high), 1)}" '
                    f'fill="{BAND_COLOUR}"/>'
                )
            continue
        if len(bounds) == len(run):
            upper = [f"{x(i)},{y(high)}" for i, _, high in bounds]
            lower = [f"{x(i)},{y(low)}" for i, low, _ in reversed(bounds)]
            out.append(f'<polygon points="{" ".join(upper + lower)}" fill="{BAND_COLOUR}"/>')
        line = " ".join(f"{x(i)},{y(points[i].value or 0)}" for i in run)
        out.append(f'<polyline points="{line}" fill="none" stroke="{PROMOTER_COLOUR}" stroke-width="2"/>')
    gap_y = y(zero if zero is not None else ticks[0]) - 6
    for i, point in enumerate(points):
        label = f"{point.week:%d %b}"
        if point.value is not None:
            out.append(
                f'<circle cx="{x(i)}" cy="{y(point.value)}" r="4" fill="{PROMOTER_COLOUR}">'
                f"<title>{escape(label)}: {escape(point.text)}</title></circle>"
            )
        elif gap_label is not None:
            out.append(
                f'<text class="too-few" x="{x(i)}" y="{gap_y}" text-anchor="middle" font-size="10" '
                f'fill="{ZERO_COLOUR}">{escape(gap_label)}</text>'
            )
        height = round(_BARS_BOTTOM - bar_y(point.count), 1)
        if height:
            out.append(
                f'<rect x="{round(x(i) - width * 0.3, 1)}" y="{bar_y(point.count)}" '
                f'width="{round(width * 0.6, 1)}" height="{height}" fill="{BAR_COLOUR}">'
                f"<title>{escape(label)}: {point.count} {escape(count_name)}</title></rect>"
            )
        out.append(
            f'<text x="{x(i)}" y="{_BARS_BOTTOM + 18}" text-anchor="middle" font-size="11" '
            f'fill="{ZERO_COLOUR}">{escape(label)}</text>'
        )
    for tick in (count_ticks[0], count_ticks[-1]):
        out.append(
            f'<line x1="{_LEFT}" x2="{_RIGHT}" y1="{bar_y(tick)}" y2="{bar_y(tick)}" stroke="#e2e8f0"/>'
            f'<text class="{count_class}" x="{_LEFT - 8}" y="{bar_y(tick) + 4}" text-anchor="end" '
            f'fill="{ZERO_COLOUR}">{tick}</text>'
        )
    out.append(
        f'<text x="16" y="{(_BARS_TOP + _BARS_BOTTOM) / 2}" fill="{ZERO_COLOUR}" '
        f'transform="rotate(-90 16 {(_BARS_TOP + _BARS_BOTTOM) / 2})" text-anchor="middle">{escape(count_name)}</text>'
    )
    legend_y = _NPS_BOTTOM - 10
    legend_x = _LEFT + 8
    if band_label:
        out.append(
            f'<rect x="{legend_x}" y="{legend_y - 8}" width="14" height="10" fill="{BAND_COLOUR}"/>'
            f'<text x="{legend_x + 20}" y="{legend_y + 1}" font-size="11" fill="{ZERO_COLOUR}">{escape(band_label)}</text>'
        )
        legend_x += 108
    out.append(
        f'<line x1="{legend_x}" x2="{legend_x + 18}" y1="{legend_y - 3}" y2="{legend_y - 3}" '
        f'stroke="{PROMOTER_COLOUR}" stroke-width="2"/>'
        f'<text x="{legend_x + 24}" y="{legend_y + 1}" font-size="11" fill="{ZERO_COLOUR}">{escape(value_name)}</text>'
    )
    out.append("</svg>")
    return "".join(out)
