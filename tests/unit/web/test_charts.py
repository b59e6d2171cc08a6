"""Chart geometry: bars scaled to the busiest day, a line across the whole width."""

from __future__ import annotations

from cohorthub.web.charts import PAD, H, W, flow_chart, line_chart


def test_flow_bars_scale_to_the_busiest_day() -> None:
    chart = flow_chart([(0.0, 10, 0), (86400.0, 5, 20), (172800.0, 0, 0)])
    assert chart.peak == 20
    full = chart.mid - PAD / 2
    assert [(b.up, b.down) for b in chart.bars] == [
        (round(full / 2, 1), 0.0),
        (round(full / 4, 1), full),
        (0.0, 0.0),
    ]
    assert chart.bars[0].x == PAD and chart.bars[-1].x + chart.bars[-1].width <= W - PAD


def test_an_empty_flow_has_a_peak_of_one_and_no_bars() -> None:
    assert flow_chart([]).bars == [] and flow_chart([]).peak == 1


def test_a_size_line_spans_the_chart() -> None:
    chart = line_chart([(100.0, 0), (200.0, 50), (300.0, 100)])
    assert chart is not None
    first, *_, last = chart.points.split()
    assert first == f"{PAD:.1f},{H - PAD:.1f}"
    assert last == f"{W - PAD:.1f},{PAD:.1f}"
    assert line_chart([]) is None
