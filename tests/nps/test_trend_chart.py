"""The digest's trend chart: a real PNG of the requested size, deterministic, gaps for small weeks."""

from __future__ import annotations

import io
from datetime import date, timedelta

from auxeng.nps.chart import WeekPoint, trend_chart
from auxeng.nps.maths import nps

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def weeks(counts):
    monday = date(2026, 8, 31)
    return [WeekPoint(monday + timedelta(weeks=i), nps(*c)) for i, c in enumerate(counts)]


def test_the_chart_is_a_png_of_the_requested_size_and_the_same_bytes_every_time():
    from PIL import Image

    points = weeks([(5, 3, 2), (6, 2, 2), (2, 0, 0), (0, 0, 0), (12, 4, 1)] + [(4, 4, 4)] * 8)
    first = trend_chart(points, width_px=800, height_px=420)

    assert first.startswith(PNG_SIGNATURE)
    assert Image.open(io.BytesIO(first)).size == (800, 420)
    assert trend_chart(points, width_px=800, height_px=420) == first


def test_small_weeks_are_gaps_not_numbers():
    from PIL import Image

    with_small = trend_chart(weeks([(5, 3, 2), (1, 0, 0), (5, 3, 2)]))
    without = trend_chart(weeks([(5, 3, 2), (9, 0, 0), (5, 3, 2)]))

    assert with_small != without
    assert Image.open(io.BytesIO(with_small)).size == (800, 420)
