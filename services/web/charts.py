"""Bar charts drawn on the server: the geometry of an SVG the template writes out (no script, no
image request). Every chart is shown beside a table of the same figures, for screen readers and
for whoever wants the numbers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

WIDTH = 640
LABEL_WIDTH = 230
ROW_HEIGHT = 26
BAR_HEIGHT = 18
# Two series side by side (e.g. submitted / decided): colours with a 4.5:1 contrast on white.
COLOURS = ("#1d3f8c", "#a3461d")


@dataclass(frozen=True)
class Bar:
    x: int
    y: int
    width: int
    height: int
    value: int
    colour: str
    value_x: int


@dataclass(frozen=True)
class Row:
    label: str
    label_y: int
    bars: list[Bar]


@dataclass(frozen=True)
class BarChart:
    """Horizontal bars, one row per label, one bar per series in each row."""

    chart_id: str
    title: str
    description: str
    series: list[str]
    rows: list[Row]
    height: int
    width: int = WIDTH
    legend: list[tuple[str, str]] = field(default_factory=list)


def bar_chart(chart_id: str, title: str, description: str, series: Sequence[str],
              rows: Sequence[tuple[str, Sequence[int]]]) -> BarChart:
    """``rows``: (label, one value per series). Bars scale to the largest value of the chart."""
    top = 24 if len(series) > 1 else 4
    biggest = max((v for _, values in rows for v in values), default=0) or 1
    room = WIDTH - LABEL_WIDTH - 60
    per_series = BAR_HEIGHT // len(series) if len(series) > 1 else BAR_HEIGHT
    row_height = max(ROW_HEIGHT, per_series * len(series) + 8)
    drawn: list[Row] = []
    for index, (label, values) in enumerate(rows):
        y = top + index * row_height
        bars = []
        for s, value in enumerate(values):
            width = round(room * value / biggest)
            bars.append(Bar(x=LABEL_WIDTH, y=y + s * per_series, width=width, height=per_series - 1, value=value,
                            colour=COLOURS[s % len(COLOURS)], value_x=LABEL_WIDTH + width + 6))
        drawn.append(Row(label=label, label_y=y + per_series * len(series) // 2 + 5, bars=bars))
    legend = [(name, COLOURS[i % len(COLOURS)]) for i, name in enumerate(series)] if len(series) > 1 else []
    return BarChart(chart_id=chart_id, title=title, description=description, series=list(series), rows=drawn,
                    height=top + max(1, len(rows)) * row_height + 4, legend=legend)
