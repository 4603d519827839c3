"""The trend chart: the digest's PNG (a real PNG of the requested size, deterministic, gaps for small
weeks) and the dashboard's SVG, both on sensible axes with no data or one point."""

from __future__ import annotations

import io
import re
from datetime import date, timedelta

import pytest

from auxeng.nps.chart import NPS_TICKS, WeekPoint, answers_axis, trend_chart, trend_figure, trend_svg
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


def test_the_answers_axis_runs_from_0_to_the_busiest_week_never_below_the_privacy_threshold():
    assert answers_axis([]) == (3, [0, 1, 2, 3])
    assert answers_axis(weeks([(0, 0, 0)] * 13)) == (3, [0, 1, 2, 3])
    assert answers_axis(weeks([(1, 0, 0)]), min_responses=5) == (6, [0, 2, 4, 6])
    assert answers_axis(weeks([(10, 4, 3), (2, 0, 0)])) == (20, [0, 5, 10, 15, 20])


@pytest.mark.parametrize(
    "counts", [[(0, 0, 0)] * 13, [(4, 1, 1)], []], ids=["no answers", "one week", "no weeks"]
)
def test_with_no_data_or_one_point_the_png_has_sensible_axes(counts):
    figure = trend_figure(weeks(counts), title="t", min_responses=3, width_px=800, height_px=420)
    top, bottom = figure.axes
    assert top.get_ylim() == (-100, 100) and list(top.get_yticks()) == list(NPS_TICKS)
    most, ticks = answers_axis(weeks(counts))
    assert bottom.get_ylim() == (0, most) and list(bottom.get_yticks()) == ticks
    assert trend_chart(weeks(counts)).startswith(PNG_SIGNATURE)


def test_the_svg_has_the_png_s_axes_gaps_and_escaped_text():
    svg = trend_svg(weeks([(5, 3, 2), (1, 0, 0), (12, 4, 1)]), title="<Platform> & co", min_responses=3)
    assert svg.startswith('<svg id="nps-chart" class="chart" role="img"') and svg.endswith("</svg>")
    assert '<title id="nps-chart-title">&lt;Platform&gt; &amp; co</title>' in svg
    assert re.findall(r'class="nps-tick"[^>]*>([^<]+)<', svg) == ["-100", "-50", "0", "+50", "+100"]
    assert re.findall(r'class="answers-tick"[^>]*>([^<]+)<', svg) == ["0", "20"]
    assert svg.count(">too few<") == 1 and svg.count("<circle") == 2  # the small week is a gap
    assert "31 Aug: +30 (95% CI" in svg  # a dot says its week's figures
