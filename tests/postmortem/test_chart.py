"""The ASCII chart: a fixed frame whatever the series, the threshold drawn, odd series handled."""

from __future__ import annotations

import datetime
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airlock.domain.postmortem import chart

T0 = datetime.datetime(2026, 11, 26, 13, 30, tzinfo=datetime.UTC)


def points(values: list[float], step: float = 15.0) -> list[tuple[datetime.datetime, float]]:
    return [(T0 + datetime.timedelta(seconds=i * step), v) for i, v in enumerate(values)]


def plot(text: str, height: int) -> list[str]:
    """The plot area of each row, between the frame's bars."""
    return [line[line.index("|") + 1 : -1] for line in text.splitlines()[:height]]


def check_frame(text: str, width: int, height: int) -> None:
    lines = text.splitlines()
    assert len(lines) == height + 2
    assert len({len(line) for line in lines}) == 1, "every line has the same width"
    assert all(len(row) == width for row in plot(text, height))
    assert lines[height].strip() == "+" + "-" * width + "+"
    assert all(line == line.rstrip() for line in lines)
    assert text.isascii()


@given(
    values=st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), max_size=80),
    threshold=st.none() | st.floats(allow_nan=False, allow_infinity=False, min_value=-1e6, max_value=1e6),
    width=st.integers(min_value=20, max_value=100),
    height=st.integers(min_value=3, max_value=20),
)
def test_the_frame_is_fixed_whatever_the_series(
    values: list[float], threshold: float | None, width: int, height: int
) -> None:
    text = chart(points(values), threshold=threshold, width=width, height=height)
    check_frame(text, width, height)
    assert chart(points(values), threshold=threshold, width=width, height=height) == text  # deterministic
    finite = [v for v in values if math.isfinite(v)]
    if finite:
        assert "*" in "".join(plot(text, height))


def test_a_step_over_the_threshold() -> None:
    text = chart(points([0.0] * 30 + [0.8] * 30), threshold=0.5, width=60, height=10)
    check_frame(text, 60, 10)
    rows = plot(text, 10)
    labels = [line.split("|")[0].strip() for line in text.splitlines()[:10]]
    assert labels[0] == "0.8"
    assert labels[-1] == "0"
    # The threshold row: dashed, labelled with the exact threshold.
    (row,) = [i for i, r in enumerate(rows) if r.startswith("- - -")]
    assert labels[row] == "0.5"
    assert 0 < row < 9
    # Samples before the step sit on the bottom row, after it on the top row; left to right in time.
    assert rows[9].startswith("*" * 29)
    assert rows[9].rstrip().endswith("*")
    assert rows[0].lstrip().startswith("*")
    assert rows[0].endswith("*")
    assert rows[0].index("*") > rows[9].rindex("*")
    # The time axis: first and last sample, UTC.
    assert text.splitlines()[-1].split() == ["2026-11-26T13:30:00Z", "2026-11-26T13:44:45Z"]


def test_a_threshold_outside_the_values_still_shows() -> None:
    text = chart(points([0.1, 0.2, 0.15]), threshold=5.0, width=20, height=5)
    rows = plot(text, 5)
    assert rows[0].startswith("- - ")
    assert text.splitlines()[0].split("|")[0].strip() == "5"


def test_empty_series() -> None:
    text = chart([], threshold=None, width=30, height=6)
    check_frame(text, 30, 6)
    assert "no data" in text
    assert "*" not in text
    assert text.splitlines()[-1].strip() == "(no samples)"
    with_threshold = chart([], threshold=0.5, width=30, height=6)
    check_frame(with_threshold, 30, 6)
    assert "- - -" in with_threshold


def test_constant_series_is_drawn_mid_range() -> None:
    text = chart(points([3.0] * 10), width=20, height=5)
    check_frame(text, 20, 5)
    rows = plot(text, 5)
    assert [i for i, r in enumerate(rows) if "*" in r] == [2]
    assert text.splitlines()[2].split("|")[0].strip() == "3"
    zero = chart(points([0.0] * 4), width=20, height=5)
    assert "*" in plot(zero, 5)[2]


def test_a_single_sample_and_nan() -> None:
    text = chart(
        [(T0, float("nan")), (T0, 1.0), (T0 + datetime.timedelta(seconds=1), float("inf"))], width=20, height=3
    )
    check_frame(text, 20, 3)
    assert "".join(plot(text, 3)).count("*") == 1
    assert text.splitlines()[-1].strip() == "2026-11-26T13:30:00Z"


def test_short_times_when_the_axis_is_narrow() -> None:
    text = chart(points([1.0, 2.0], step=3600), width=20, height=3)
    assert text.splitlines()[-1].split() == ["13:30:00", "14:30:00"]


def test_naive_times_are_utc_and_order_does_not_matter() -> None:
    aware = points([1.0, 2.0, 3.0])
    naive = [(t.replace(tzinfo=None), v) for t, v in reversed(aware)]
    assert chart(naive) == chart(aware)


def test_too_small_a_chart_is_refused() -> None:
    with pytest.raises(ValueError, match="width"):
        chart([], width=5)
    with pytest.raises(ValueError, match="height"):
        chart([], height=1)


@given(
    values=st.lists(st.floats(min_value=-1e3, max_value=1e3), min_size=1, max_size=60),
    threshold=st.floats(min_value=-1e3, max_value=1e3),
    height=st.integers(min_value=3, max_value=12),
)
def test_a_sample_is_drawn_on_its_side_of_the_threshold(values: list[float], threshold: float, height: int) -> None:
    # One sample per column, so no sample hides another.
    text = chart(points(values), threshold=threshold, width=60, height=height)
    rows = plot(text, height)
    dashed = [i for i, r in enumerate(rows) if "-" in r]
    if not dashed:
        return  # samples cover every dash: they all sit on the threshold
    (line_row,) = dashed
    columns = sorted({round(i / max(1, len(values) - 1) * 59) for i in range(len(values))})
    for index, value in enumerate(values):
        column = columns[index] if len(columns) == len(values) else None
        if column is None:
            return  # two samples share a column: nothing to check per sample
        (row,) = [r for r in range(height) if rows[r][column] == "*"]
        if value > threshold and line_row > 0:
            assert row < line_row, (value, threshold)
        elif value < threshold and line_row < height - 1:
            assert row > line_row, (value, threshold)


def test_a_range_too_small_for_a_row_height_is_drawn_like_a_constant() -> None:
    # Found by hypothesis: (5e-324 - 0.0) / (height - 1) underflows to a zero row height.
    text = chart(points([5e-324]), threshold=0.0, width=60, height=5)
    assert len(text.splitlines()) == 5 + 2
    assert sum(row.count("*") for row in plot(text, 5)) == 1


def test_just_over_the_threshold_is_drawn_above_it() -> None:
    text = chart(points([0.05] * 28 + [1.2 + 0.1 * i for i in range(22)]), threshold=1.0, width=60, height=10)
    rows = plot(text, 10)
    (line_row,) = [i for i, r in enumerate(rows) if r.startswith("- - -")]
    assert "*" not in rows[line_row]
