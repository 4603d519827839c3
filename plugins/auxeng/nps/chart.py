"""The NPS trend chart of the weekly digest: a PNG rendered with matplotlib (Agg, no display).

Top: NPS per week with its 95% interval as a band (weeks below the privacy threshold are
gaps, never numbers). Bottom: responses per week. The bytes are deterministic for the
same data (no timestamp in the PNG), so a re-sent digest carries the same image.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from auxeng.nps.maths import MIN_RESPONSES, NpsResult

PROMOTER_COLOUR, BAND_COLOUR, BAR_COLOUR, ZERO_COLOUR = "#2563eb", "#bfdbfe", "#94a3b8", "#475569"


@dataclass(frozen=True)
class WeekPoint:
    """One week of the trend: its Monday and that week's NPS result."""

    week: date
    result: NpsResult


def trend_chart(
    points: Sequence[WeekPoint],
    *,
    title: str = "NPS, last 13 weeks",
    min_responses: int = MIN_RESPONSES,
    width_px: int = 800,
    height_px: int = 420,
) -> bytes:
    """The PNG bytes of the trend chart of ``points`` (oldest first)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    from matplotlib.figure import Figure

    dpi = 100
    figure = Figure(figsize=(width_px / dpi, height_px / dpi), dpi=dpi, layout="constrained")
    top, bottom = figure.subplots(2, 1, sharex=True, height_ratios=(3, 1))
    positions = list(range(len(points)))
    shown = [p.result.responses >= min_responses and p.result.score is not None for p in points]

    def masked(values: list[float]) -> list[float]:
        return [value if ok else float("nan") for value, ok in zip(values, shown, strict=True)]

    scores = masked([p.result.score if p.result.score is not None else 0.0 for p in points])
    low = masked([p.result.low for p in points])
    high = masked([p.result.high for p in points])
    top.fill_between(positions, low, high, color=BAND_COLOUR, linewidth=0, label="95% interval")
    top.plot(positions, scores, color=PROMOTER_COLOUR, marker="o", linewidth=2, label="NPS")
    top.axhline(0, color=ZERO_COLOUR, linewidth=0.8)
    top.set_ylim(-100, 100)
    top.set_ylabel("NPS")
    top.set_title(title, loc="left", fontsize=12)
    top.grid(axis="y", alpha=0.3)
    top.legend(loc="lower left", fontsize=8, frameon=False)
    for x, ok in zip(positions, shown, strict=True):
        if not ok:
            top.annotate("too few", (x, 0), ha="center", va="bottom", fontsize=7, color=ZERO_COLOUR)

    bottom.bar(positions, [p.result.responses for p in points], color=BAR_COLOUR)
    bottom.set_ylabel("answers")
    bottom.grid(axis="y", alpha=0.3)
    bottom.set_xticks(positions, [f"{p.week:%d %b}" for p in points], rotation=45, ha="right", fontsize=8)

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()
