"""From a provider's answer to one system's sample: label matching and baseline arithmetic.

A shared monitor's vector query answers for every system that uses it; each
system takes the one series whose labels match its ``match``.  The live
scheduler (one instant query per interval) and the backtest (range queries
replayed step by step) both go through here, so they pick the same series and
build the same :class:`~airlock.domain.evaluation.Sample`.
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Generic, Protocol, TypeVar

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
    return _one(found, match)


def _one(found: Sequence[_T], match: Mapping[str, str] | None) -> _T | None:
    if not found:
        return None
    if len(found) > 1:
        what = "match labels" if match is not None else "the query"
        raise AmbiguousMatch(
            f"{what} select {len(found)} series; aggregate the query to one series per system (e.g. sum by (...))"
        )
    return found[0]


class Index(Generic[_T]):
    """An answer indexed by the values of the label keys the systems match on.

    A shared monitor's answer holds one series per system; picking each system's
    series with :func:`pick` costs a scan of the whole answer, so N systems cost
    N × N.  Built once per answer and key set, this makes each pick a lookup
    (same results as :func:`pick`, including :class:`AmbiguousMatch`).
    """

    def __init__(self, keys: Iterable[str], series: Sequence[_T], labels: Callable[[_T], Mapping[str, str]]) -> None:
        self.keys = tuple(sorted(keys))
        self._by: dict[tuple[str | None, ...], list[_T]] = defaultdict(list)
        for s in series:
            found = labels(s)
            self._by[tuple(found.get(k) for k in self.keys)].append(s)

    def pick(self, match: Mapping[str, str]) -> _T | None:
        if tuple(sorted(match)) != self.keys:
            raise ValueError(f"this index is keyed by {self.keys}, not {tuple(sorted(match))}")
        return _one(self._by.get(tuple(match[k] for k in self.keys), []), match)


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
