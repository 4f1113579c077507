"""From a provider's answer to one system's sample: label matching and baseline arithmetic.

A shared monitor's vector query answers for every system that uses it; each
system takes the one series whose labels match its ``match``.  The live
scheduler (one instant query per interval) and the backtest (range queries
replayed step by step) both go through here, so they pick the same series and
build the same :class:`~airlock.domain.evaluation.Sample`.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol, TypeVar

from airlock.domain.evaluation import Sample


class Value(Protocol):
    """One series' value at one time, as any provider answer carries it."""

    @property
    def value(self) -> float: ...

    @property
    def at(self) -> datetime.datetime: ...


class AmbiguousMatch(Exception):
    """More than one series selected: the monitor's query must aggregate to one series per system."""


_T = TypeVar("_T")

# What one monitor got from one answer: a value, no data (None), or why it could not be read.
Picked = Value | str | None


def pick(match: Mapping[str, str] | None, series: Sequence[_T], labels: Callable[[_T], Mapping[str, str]]) -> _T | None:
    """The one series of ``series`` that ``match`` selects (all of them without ``match``).

    Returns None when nothing matches; raises :class:`AmbiguousMatch` when several do.
    """
    if match is not None:
        found = [s for s in series if all(labels(s).get(k) == v for k, v in match.items())]
    else:
        found = list(series)
    if not found:
        return None
    if len(found) > 1:
        what = "match labels" if match is not None else "the query"
        raise AmbiguousMatch(
            f"{what} select {len(found)} series; aggregate the query to one series per system (e.g. sum by (...))"
        )
    return found[0]


def sample(current: Picked, baseline: Picked, now: datetime.datetime, *, with_baseline: bool) -> Sample:
    """The sample a monitor evaluates; a ``str`` in either place is an error."""
    if isinstance(current, str):
        return Sample(at=now, error=current)
    if not with_baseline:
        return Sample(at=now) if current is None else Sample(at=current.at, value=current.value)
    if isinstance(baseline, str):
        return Sample(at=now, error=baseline)
    at = current.at if current is not None else now
    return Sample.from_baseline(
        at, current.value if current is not None else None, baseline.value if baseline is not None else None
    )
