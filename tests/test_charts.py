"""The trend chart builder: coordinates, edge cases, escaping. Pure: no store, no page."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from defusedxml import ElementTree

from daemon.web.charts import Point, plot, thin, trend_svg
from daemon.web.minicharts import pillar_bars, sparkline

SVG = "{http://www.w3.org/2000/svg}"
T0 = datetime(2026, 11, 1, 8, 0, tzinfo=timezone.utc)
# The default chart is 320 x 140; the plot area is x 38..310, y 10 (100 %)..118 (0 %).
W, H = 320, 140


def day(n: float) -> datetime:
    return T0 + timedelta(days=n)


def circles(svg: str) -> list[ElementTree.Element]:
    return list(ElementTree.fromstring(svg).iter(f"{SVG}circle"))


def lines(svg: str) -> list[list[tuple[float, float]]]:
    return [
        [tuple(float(v) for v in pair.split(",")) for pair in line.get("points").split()]
        for line in ElementTree.fromstring(svg).iter(f"{SVG}polyline")
    ]


def test_coordinates_of_known_points():
    series = [Point(day(0), 0.0), Point(day(1), 50.0), Point(day(4), 100.0)]
    assert plot(series, width=W, height=H) == [(38.0, 118.0), (106.0, 64.0), (310.0, 10.0)]
    svg = trend_svg(series, title="t")
    assert [(float(c.get("cx")), float(c.get("cy"))) for c in circles(svg)] == [(38, 118), (106, 64), (310, 10)]
    assert lines(svg) == [[(38, 118), (106, 64), (310, 10)]]


def test_values_outside_0_100_are_clamped_to_the_axis():
    assert plot([Point(day(0), -5.0), Point(day(1), 120.0)], width=W, height=H) == [(38.0, 118.0), (310.0, 10.0)]


def test_empty_series_draws_axes_and_says_so():
    svg = trend_svg([], title="Nothing")
    root = ElementTree.fromstring(svg)
    assert circles(svg) == [] and lines(svg) == []
    assert "no data yet" in [t.text for t in root.iter(f"{SVG}text")]
    assert root.findtext(f"{SVG}title") == "Nothing"
    assert root.findtext(f"{SVG}desc") == "No scored snapshot yet."


def test_one_point_sits_in_the_middle_without_a_line():
    svg = trend_svg([Point(day(0), 25.0)], title="one")
    assert [(float(c.get("cx")), float(c.get("cy"))) for c in circles(svg)] == [(174, 91)]
    assert lines(svg) == []
    labels = [t.text for t in ElementTree.fromstring(svg).iter(f"{SVG}text")]
    assert "2026-11-01 08:00" in labels


def test_none_scores_are_skipped_and_break_the_line():
    series = [Point(day(0), 10.0), Point(day(1), 20.0), Point(day(2), None), Point(day(3), 30.0), Point(day(4), 40.0)]
    svg = trend_svg(series, title="gap")
    assert len(circles(svg)) == 4
    assert lines(svg) == [[(38, 107.2), (106, 96.4)], [(242, 85.6), (310, 74.8)]]
    assert plot(series, width=W, height=H)[2] is None


def test_all_none_is_an_empty_chart():
    svg = trend_svg([Point(day(0), None), Point(day(1), None)], title="x")
    assert circles(svg) == []
    assert "no data yet" in svg


def test_a_repeat_holds_the_line_flat_until_it_was_last_seen():
    series = [Point(day(0), 50.0, until=day(2)), Point(day(4), 100.0)]
    assert lines(trend_svg(series, title="x")) == [[(38, 64), (174, 64), (310, 10)]]
    assert len(circles(trend_svg(series, title="x"))) == 2  # a point per snapshot, not per sighting


def test_the_time_axis_spans_the_last_sighting():
    assert plot([Point(day(0), 0.0, until=day(4))], width=W, height=H) == [(38.0, 118.0)]


def test_points_are_drawn_in_time_order_whatever_order_they_come_in():
    svg = trend_svg([Point(day(2), 100.0), Point(day(0), 0.0)], title="x")
    assert lines(svg) == [[(38, 118), (310, 10)]]


def test_a_partial_snapshot_is_hollow_and_says_so():
    svg = trend_svg([Point(day(0), 40.0), Point(day(1), 60.0, partial=True)], title="x", decimals=1)
    solid, hollow = circles(svg)
    assert solid.get("class") == "point" and hollow.get("class") == "point partial"
    assert hollow.get("fill") == "#ffffff" and solid.get("fill") != "#ffffff"
    assert hollow.findtext(f"{SVG}title") == "2026-11-02 08:00Z: 60.0% (partial)"
    assert "1 partial" in ElementTree.fromstring(svg).findtext(f"{SVG}desc")


def test_tooltips_round_half_up():
    svg = trend_svg([Point(day(0), 74.5)], title="x")
    assert circles(svg)[0].findtext(f"{SVG}title") == "2026-11-01 08:00Z: 75%"


def test_title_is_escaped_and_labels_the_chart():
    svg = trend_svg([Point(day(0), 1.0)], title='<script>"a" & b</script>\x01')
    root = ElementTree.fromstring(svg)  # still well-formed XML
    assert root.get("role") == "img"
    assert root.get("aria-label") == '<script>"a" & b</script>'
    assert root.findtext(f"{SVG}title") == '<script>"a" & b</script>'
    assert "<script>" not in svg


def test_axis_is_labelled_0_to_100_percent_and_dates():
    svg = trend_svg([Point(day(0), 1.0), Point(day(3), 2.0)], title="x")
    labels = [t.text for t in ElementTree.fromstring(svg).iter(f"{SVG}text")]
    assert labels == ["0%", "50%", "100%", "2026-11-01", "2026-11-04"]


def test_within_one_day_the_axis_shows_times():
    svg = trend_svg([Point(T0, 1.0), Point(T0 + timedelta(hours=6), 2.0)], title="x")
    labels = [t.text for t in ElementTree.fromstring(svg).iter(f"{SVG}text")]
    assert labels[-2:] == ["2026-11-01 08:00", "14:00"]


def test_size_is_a_parameter():
    svg = trend_svg([Point(day(0), 0.0), Point(day(1), 100.0)], title="x", width=600, height=200)
    root = ElementTree.fromstring(svg)
    assert root.get("viewBox") == "0 0 600 200"
    assert [(float(c.get("cx")), float(c.get("cy"))) for c in circles(svg)] == [(38, 178), (590, 10)]


# --- the sample axis and thinning --------------------------------------------------------


def test_the_sample_axis_spaces_points_evenly_whatever_their_times():
    series = [Point(day(0), 0.0), Point(day(30), 50.0), Point(day(30.01), 100.0), Point(day(30.02), 50.0, until=day(40))]
    assert plot(series, width=W, height=H, axis="sample") == [(38.0, 118.0), (128.67, 64.0), (219.33, 10.0), (310.0, 64.0)]
    # No flat stretch up to a later sighting: the axis has no time to run it to.
    assert lines(trend_svg(series, title="x", axis="sample")) == [[(38, 118), (128.67, 64), (219.33, 10), (310, 64)]]
    # On the time axis the last three crowd at the right.
    xs = [xy[0] for xy in plot(series, width=W, height=H)]
    assert xs[2] - xs[1] < 0.1


def test_the_sample_axis_labels_the_first_and_last_snapshot():
    svg = trend_svg([Point(day(0), 1.0), Point(day(3), 2.0, until=day(9))], title="x", axis="sample")
    labels = [t.text for t in ElementTree.fromstring(svg).iter(f"{SVG}text")]
    assert labels[-2:] == ["2026-11-01", "2026-11-04"]


def test_thinning_keeps_the_latest_and_at_most_the_limit():
    moments = [day(n / 96) for n in range(96 * 10)]  # ten days every 15 minutes
    for axis in ("time", "sample"):
        kept = thin(moments, 100, axis=axis)  # type: ignore[arg-type]
        assert len(kept) <= 100 and kept[-1] == len(moments) - 1 and kept == sorted(set(kept))
    assert thin(moments, 2000) == list(range(len(moments)))
    # The sample axis keeps evenly spaced indices; the time axis one point per stretch of time.
    sample = thin(moments, 11, axis="sample")
    assert sample == [round(i * 95.9) for i in range(11)]
    dense = [day(0), *(day(5 + n / 1000) for n in range(500)), day(10)]  # a burst in the middle
    assert len(thin(dense, 10, axis="time")) == 3  # the first stretch, the burst's, the last


def test_many_points_get_smaller_dots():
    svg = trend_svg([Point(day(n), 50.0) for n in range(61)], title="x")
    assert {c.get("r") for c in circles(svg)} == {"2.5"}
    assert {c.get("r") for c in circles(trend_svg([Point(day(0), 1.0)], title="x"))} == {"4"}


# --- the index's sparkline and pillar bars -------------------------------------------------


def test_sparkline_breaks_at_a_missing_figure_and_escapes_its_title():
    svg = sparkline([0.0, 100.0, None, 50.0, 50.0], title="<b>x</b>", width=100, height=20)
    root = ElementTree.fromstring(svg)
    assert lines(svg) == [[(3, 17), (26.5, 3)], [(73.5, 10), (97, 10)]]
    assert root.findtext(f"{SVG}title") == "<b>x</b>: 0% → 50% over the 5 latest snapshots" and "<b>" not in svg


def test_pillar_bars_fill_their_share_and_say_their_figure():
    root = ElementTree.fromstring(pillar_bars([("A & B", 25.0), ("C", None)], height=20))
    tips = [g.findtext(f"{SVG}title") for g in root.iter(f"{SVG}g")]
    assert tips == ["A & B: 25%", "C: –"]
    rects = list(root.iter(f"{SVG}rect"))
    assert [r.get("height") for r in rects] == ["20", "5", "20", "0"] and rects[2].get("fill") != rects[0].get("fill")
