"""Durations are parsed once, the same way the CRD pattern reads them, and print back exactly."""

from __future__ import annotations

import re

import pydantic
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airlock.api import durations
from airlock.api.durations import Duration, DurationError, format_seconds, parse_seconds


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0s", 0.0),
        ("15s", 15.0),
        ("250ms", 0.25),
        ("2m", 120.0),
        ("1h30m", 5400.0),
        ("7d", 604800.0),
        ("1w", 604800.0),
        ("1d12h", 129600.0),
        ("1m1m", 120.0),
        ("001s", 1.0),
    ],
)
def test_parse(text: str, seconds: float) -> None:
    assert parse_seconds(text) == seconds
    assert Duration(text).seconds == seconds
    assert str(Duration(text)) == text


@pytest.mark.parametrize(
    "text", ["15", "1 m", "-5s", "5x", "", "s", "1.5m", "15s ", " 15s", "15s\n", "1M", "1h-5m", "9" * 40 + "s"]
)
def test_parse_rejects(text: str) -> None:
    with pytest.raises(DurationError, match="invalid duration"):
        parse_seconds(text)


def test_parse_rejects_non_strings() -> None:
    with pytest.raises(DurationError):
        parse_seconds(15)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (0.25, "250ms"),
        (15, "15s"),
        (90, "1m30s"),
        (3600, "1h"),
        (86400 * 7, "7d"),
        (90061.5, "1d1h1m1s500ms"),
    ],
)
def test_format(seconds: float, text: str) -> None:
    assert format_seconds(seconds) == text


def test_format_rejects_negative() -> None:
    with pytest.raises(DurationError, match="negative"):
        format_seconds(-1)


@given(st.integers(min_value=0, max_value=10**10))
def test_format_then_parse_is_exact(millis: int) -> None:
    text = format_seconds(millis / 1000)
    assert round(parse_seconds(text) * 1000) == millis
    assert re.fullmatch(durations.DURATION_PATTERN, text)


@settings(max_examples=50)
@given(st.from_regex(durations.DURATION_PATTERN, fullmatch=True))
def test_the_model_accepts_what_the_crd_pattern_accepts(text: str) -> None:
    # The pattern is the CRD's; a Duration must accept every string it accepts (up to the length bound).
    if len(text) <= durations.DURATION_MAX_LENGTH and "\n" not in text:
        assert Duration(text).seconds >= 0


def test_pydantic_field() -> None:
    adapter = pydantic.TypeAdapter(Duration)
    value = adapter.validate_python("2m")
    assert isinstance(value, Duration)
    assert value.seconds == 120
    assert adapter.dump_python(value, mode="json") == "2m"
    again = adapter.validate_python(value)
    assert isinstance(again, Duration)
    assert again.seconds == 120
    with pytest.raises(pydantic.ValidationError, match="invalid duration"):
        adapter.validate_python("2 m")
    assert adapter.json_schema() == {
        "type": "string",
        "pattern": durations.DURATION_PATTERN,
        "maxLength": durations.DURATION_MAX_LENGTH,
    }
