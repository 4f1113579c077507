"""Picking one system's series out of a shared monitor's answer: the index agrees with the scan."""

from __future__ import annotations

import pytest

from airlock.domain import series

ANSWER = [
    {"namespace": "ml-prod", "app": "chatbot"},
    {"namespace": "ml-prod", "app": "scorer"},
    {"namespace": "ml-dev", "app": "chatbot"},
    {"namespace": "ml-dev", "app": "twin", "pod": "a"},
    {"namespace": "ml-dev", "app": "twin", "pod": "b"},
    {"app": "orphan"},
]


def labels(s: dict[str, str]) -> dict[str, str]:
    return s


@pytest.mark.parametrize(
    "match",
    [
        {"namespace": "ml-prod", "app": "chatbot"},
        {"namespace": "ml-dev", "app": "chatbot"},
        {"namespace": "ml-prod", "app": "missing"},
        {"namespace": "ml-dev", "app": "twin"},
        {"app": "orphan", "namespace": "ml-prod"},
    ],
)
def test_index_picks_what_a_scan_picks(match: dict[str, str]) -> None:
    index = series.Index(match, ANSWER, labels)
    if match["app"] == "twin":
        with pytest.raises(series.AmbiguousMatch, match="select 2 series"):
            series.pick(match, ANSWER, labels)
        with pytest.raises(series.AmbiguousMatch, match="select 2 series"):
            index.pick(match)
        return
    assert index.pick(match) is series.pick(match, ANSWER, labels)


def test_a_series_without_the_label_never_matches() -> None:
    index = series.Index(["namespace", "app"], ANSWER, labels)
    assert index.pick({"app": "orphan", "namespace": ""}) is None


def test_index_refuses_other_keys() -> None:
    index = series.Index(["namespace", "app"], ANSWER, labels)
    with pytest.raises(ValueError, match="keyed by"):
        index.pick({"app": "chatbot"})
