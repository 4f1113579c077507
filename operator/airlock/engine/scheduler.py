"""The evaluation loop: every monitor on its interval, shared queries sent once.

Due times are aligned to multiples of each interval, so every system that uses
the same shared (``match``) monitor comes due in the same cycle and its vector
query is sent once and matched back by labels: queries per interval do not
grow with the number of systems sharing a policy (SPEC §6).  Identical
per-system queries are de-duplicated too.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import math
import time
from collections import defaultdict
from dataclasses import dataclass

import structlog

from airlock.adapters import metrics as m
from airlock.adapters.prometheus import PrometheusProvider, ProviderError, SeriesValue
from airlock.domain import series
from airlock.domain.evaluation import Sample
from airlock.domain.plan import ResolvedMonitor
from airlock.engine.core import Engine
from airlock.engine.state import SystemEntry

log = structlog.get_logger("airlock.scheduler")

# Upper bound on how long the loop sleeps, so clock jumps and missed wake-ups heal.
MAX_SLEEP = 1.0
# Systems reconciled between two yields to the event loop (see Scheduler.cycle).
BATCH = 256


@dataclass(frozen=True)
class _Query:
    query: str
    baseline: str | None


Answer = list[SeriesValue] | ProviderError


def next_due(now: float, interval: float) -> float:
    """The next multiple of ``interval`` after ``now`` (aligned, so shared monitors batch)."""
    return (math.floor(now / interval) + 1) * interval


class Scheduler:
    def __init__(self, engine: Engine, provider: PrometheusProvider, *, concurrency: int = 32) -> None:
        self.engine = engine
        self.provider = provider
        self._reconcile_limit = asyncio.Semaphore(concurrency)
        self.cycles = 0

    async def run(self) -> None:
        while True:
            started = time.monotonic()
            try:
                sent = await self.cycle()
            except Exception:  # the loop must survive anything a cycle throws
                log.exception("scheduler.cycle_failed")
                sent = 0
            if sent:
                m.EVALUATION_DURATION.observe(time.monotonic() - started)
            await self._sleep()

    async def _sleep(self) -> None:
        now = self.engine.clock().timestamp()
        dues = [d for e in self.engine.systems.values() if e.plan for d in e.due.values()]
        delay = min([MAX_SLEEP, *(max(0.0, d - now) for d in dues)])
        self.engine.changed.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.engine.changed.wait(), timeout=delay)

    async def cycle(self) -> int:
        """Evaluate every due monitor once; return how many queries were sent."""
        now = self.engine.clock()
        now_ts = now.timestamp()
        due: list[tuple[SystemEntry, ResolvedMonitor]] = []
        for entry in list(self.engine.systems.values()):
            if entry.plan is None:
                continue
            for resolved in entry.plan.monitors:
                when = entry.due.get(resolved.name, now_ts)
                if when <= now_ts:
                    if now_ts - when > 1.0 + resolved.monitor.interval.seconds:
                        m.OVERRUNS.inc()
                    due.append((entry, resolved))
                    entry.due[resolved.name] = next_due(now_ts, resolved.monitor.interval.seconds)
        if not due:
            return 0

        queries: set[_Query] = {_Query(r.query, r.baseline_query) for _, r in due}
        texts = {q.query for q in queries} | {q.baseline for q in queries if q.baseline}
        answers = dict(zip(texts, await asyncio.gather(*(self._ask(t) for t in texts)), strict=True))

        samples: dict[tuple[str, str], dict[str, Sample]] = defaultdict(dict)
        entries: dict[tuple[str, str], SystemEntry] = {}
        picker = _Picker(answers)
        for n, (entry, resolved) in enumerate(due, 1):
            entries[entry.key] = entry
            samples[entry.key][resolved.name] = picker.sample(resolved, now)
            if n % BATCH == 0:
                await asyncio.sleep(0)
        self.cycles += 1
        # In batches, yielding between them: 10,000 systems whose cycle changes nothing are
        # folded without an await each, and in one go they would hold the event loop for a
        # second (the Lease renewal, watch events and webhooks wait meanwhile).
        pending = list(samples.items())
        for start in range(0, len(pending), BATCH):
            batch = pending[start : start + BATCH]
            await asyncio.gather(*(self._reconcile(entries[k], s) for k, s in batch))
            await asyncio.sleep(0)
        return len(texts)

    async def _ask(self, query: str) -> Answer:
        m.PROVIDER_QUERIES.inc()
        try:
            return await self.provider.instant(query)
        except ProviderError as exc:
            m.PROVIDER_ERRORS.inc()
            return exc

    async def _reconcile(self, entry: SystemEntry, samples: dict[str, Sample]) -> None:
        async with self._reconcile_limit:
            await self.engine.reconcile(entry, samples)


class _Picker:
    """Each system's series from one cycle's answers, through one label index per (query, match keys)."""

    def __init__(self, answers: dict[str, Answer]) -> None:
        self.answers = answers
        self._indexes: dict[tuple[str, tuple[str, ...]], series.Index[SeriesValue]] = {}

    def pick(self, resolved: ResolvedMonitor, query: str) -> SeriesValue | str | None:
        """This system's series from an answer: a value, None (no data) or an error message."""
        answer = self.answers[query]
        if isinstance(answer, ProviderError):
            return str(answer)
        try:
            if resolved.match is None:
                return series.pick(None, answer, lambda s: s.labels)
            key = (query, tuple(sorted(resolved.match)))
            index = self._indexes.get(key)
            if index is None:
                index = self._indexes[key] = series.Index(resolved.match, answer, lambda s: s.labels)
            return index.pick(resolved.match)
        except series.AmbiguousMatch as exc:
            return str(exc)

    def sample(self, resolved: ResolvedMonitor, now: datetime.datetime) -> Sample:
        current = self.pick(resolved, resolved.query)
        baseline = self.pick(resolved, resolved.baseline_query) if resolved.baseline_query is not None else None
        return series.sample(current, baseline, now, with_baseline=resolved.baseline_query is not None)
