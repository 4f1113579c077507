"""``airlock run --leader-elect``: the loop that holds, or waits for, this replica's Lease.

Every replica watches and caches the same objects (Kopf's handlers feed the
engine whether or not it leads) and serves admission webhooks.  Only the
leader *acts*: the scheduler and the follow-ups loop run while it leads, and
every write — target, status, incident, Event, notice — asks
:meth:`Elector.refusal` first (``airlock.adapters.kube``'s fence).  A standby
that takes over resynchronises the engine from its warm caches and evaluates
every monitor on its first cycle, so a failover costs the lease duration and
one evaluation, not a restart.

This is deliberately not Kopf peering: peering only lets operators of
*different* priorities see each other (a developer's laptop pausing the
in-cluster operator); between replicas of the same priority it warns and
lets both keep acting (its docstring: "There are NO per-object locks between
the operators").  A Lease with client-go's rules gives one leader, a bounded
hand-over, and a deadline to fence on.

The decisions (expiry on the observer's clock, when to step down) are
:mod:`airlock.domain.leadership`; this module does the I/O and the timing.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

from airlock.adapters import kube
from airlock.adapters import metrics as m
from airlock.adapters.leases import LeaseLock
from airlock.domain import leadership
from airlock.domain import sharding as domain_sharding
from airlock.domain.leadership import Observed, Step, Term, Timing

log = structlog.get_logger("airlock.leadership")

Clock = Callable[[], float]


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


@dataclass
class Elector:
    """This replica's side of one Lease, and the fence that every write asks."""

    lock: LeaseLock
    identity: str
    timing: Timing
    # Called with no await in between the start of the term and the first write it allows.
    on_started: Callable[[], None]
    on_stopped: Callable[[], Awaitable[None]]
    shard_count: int = 1
    clock: Clock = time.monotonic
    wall: Callable[[], datetime.datetime] = utcnow
    jitter: Callable[[], float] = random.random
    _observed: Observed | None = field(default=None, init=False)
    _term: Term | None = field(default=None, init=False)
    _others: dict[str, Observed] = field(default_factory=dict, init=False)
    _leading: bool = field(default=False, init=False)
    conflicts: list[str] = field(default_factory=list, init=False)
    last_tick: float | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if problems := self.timing.problems():
            raise ValueError("; ".join(problems))
        m.LEADER.labels(self.lock.name).set(0)

    # ------------------------------------------------------------------ fence

    def refusal(self) -> str | None:
        """Why this replica may not write now (None: it holds the Lease, renewed within the deadline)."""
        term = self._term
        if term is None or not self._leading:
            return f"{self.identity} is a standby for Lease {self.lock.describe()} (held by {self.holder or 'nobody'})"
        now = self.clock()
        if not term.acting(now, self.timing):
            return (
                f"{self.identity} last renewed Lease {self.lock.describe()} {now - term.renewed_at:.1f}s ago "
                f"(renew deadline {self.timing.renew_deadline:g}s): it has stopped acting"
            )
        return None

    def leading(self) -> bool:
        return self.refusal() is None

    @property
    def holder(self) -> str:
        record = self._observed.record if self._observed is not None else None
        return record.holder if record is not None else ""

    def report(self) -> dict[str, Any]:
        """What readiness shows: role, Lease, holder (both roles are ready; only the leader acts)."""
        record = self._observed.record if self._observed is not None else None
        return {
            "role": "leader" if self.leading() else "standby",
            "identity": self.identity,
            "lease": self.lock.describe(),
            "holder": self.holder,
            "transitions": record.transitions if record is not None else 0,
            "shardConflicts": list(self.conflicts),
        }

    # ------------------------------------------------------------------- loop

    async def run(self) -> None:
        """Hold or wait for the Lease until cancelled; then stop acting and release it."""
        try:
            while True:
                await self.tick()
                await asyncio.sleep(self._pause())
        finally:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._shutdown())

    def _pause(self) -> float:
        # The leader renews every retry period; candidates poll a little irregularly so that
        # replicas started together do not keep colliding (client-go jitters the same way).
        period = self.timing.retry_period
        return period if self._leading else period * (1.0 + 0.2 * self.jitter())

    async def tick(self) -> None:
        """One attempt to acquire or renew, then start or stop acting accordingly."""
        self.last_tick = self.clock()
        budget = self.timing.renew_deadline
        if self._term is not None:
            # Never wait for an answer past the deadline: after it the answer no longer matters.
            budget = max(0.05, self._term.renewed_at + self.timing.renew_deadline - self.clock())
        try:
            async with asyncio.timeout(budget):
                await self._try_acquire_or_renew()
        except (kube.ApiError, TimeoutError) as exc:
            log.warning("leader.lease_unavailable", lease=self.lock.describe(), error=str(exc) or "timed out")
        acting = self._term is not None and self._term.acting(self.clock(), self.timing)
        if acting and not self._leading:
            await self._start_leading()
        elif not acting and self._leading:
            await self._stop_leading("lease not renewed within the renew deadline")

    async def _try_acquire_or_renew(self) -> None:
        identity, timing = self.identity, self.timing
        observed = self._observed
        # 1. Fast path (client-go's): we hold it and nothing else was seen since; update optimistically.
        if (
            observed is not None
            and observed.record is not None
            and observed.record.holder == identity
            and not observed.expired(self.clock())
        ):
            record = leadership.renewed(observed.record, identity, self.wall(), timing)
            with contextlib.suppress(kube.Conflict):
                await self._write(record, observed.resource_version, create=False)
                return
        # 2. Slow path: read it, and decide on what was read.
        read = await self.lock.get()
        now = self.clock()
        self._observed = observed = leadership.observe(self._observed, read.record, read.resource_version, now)
        step = leadership.next_step(observed, identity, now)
        if step is Step.WAIT:
            self._lost()
            return
        if step is Step.RENEW:
            assert observed.record is not None
            await self._write(leadership.renewed(observed.record, identity, self.wall(), timing), read.resource_version)
            return
        # CREATE or ACQUIRE: not while a Lease of another shard count is held (see airlock.domain.sharding).
        if await self._shard_conflicts():
            self._lost()
            return
        record = leadership.acquired(observed.record, identity, self.wall(), timing)
        try:
            await self._write(record, read.resource_version, create=step is Step.CREATE)
        except kube.Conflict:
            self._lost()  # another replica was faster
            return
        # Checked again once we hold it: of two replicas of different shard counts that acquired
        # at the same moment, the later one sees the earlier one here and lets go before acting.
        if await self._shard_conflicts():
            await self._release()
            return
        log.info("leader.acquired", lease=self.lock.describe(), identity=identity, transitions=record.transitions)

    async def _write(self, record: leadership.Record, resource_version: str | None, *, create: bool = False) -> None:
        sent = self.clock()  # before sending: the server accepts it later, so the deadline errs early
        if create:
            version = await self.lock.create(record)
        else:
            version = await self.lock.update(record, resource_version)
        self._observed = Observed(record=record, resource_version=version, since=self.clock())
        self._term = Term(renewed_at=sent)

    def _lost(self) -> None:
        self._term = None

    async def _shard_conflicts(self) -> list[str]:
        now = self.clock()
        seen: dict[str, Observed] = {}
        for name, read in await self.lock.others(domain_sharding.COUNT_LABEL):
            if read.labels.get(domain_sharding.COUNT_LABEL) == str(self.shard_count):
                continue  # a sibling shard of the same layout: disjoint namespaces
            seen[name] = leadership.observe(self._others.get(name), read.record, read.resource_version, now)
        self._others = seen
        found = leadership.conflicts(seen.items(), now)
        if found != self.conflicts:
            if found:
                log.warning(
                    "leader.shard_count_conflict",
                    lease=self.lock.describe(),
                    shard_count=self.shard_count,
                    held=found,
                    detail="a Lease of another shard count is held: this replica waits until it is released or expires",
                )
            self.conflicts = found
        return found

    # ------------------------------------------------------------ transitions

    async def _start_leading(self) -> None:
        # No await from here to the end of on_started(): nothing runs between the first
        # moment the fence allows writes and the engine's resynchronisation.
        self._leading = True
        m.LEADER.labels(self.lock.name).set(1)
        m.LEADER_TRANSITIONS.labels(self.lock.name).inc()
        log.warning("leader.started", lease=self.lock.describe(), identity=self.identity)
        self.on_started()

    async def _stop_leading(self, why: str) -> None:
        self._leading = False
        m.LEADER.labels(self.lock.name).set(0)
        log.warning("leader.stopped", lease=self.lock.describe(), identity=self.identity, reason=why)
        await self.on_stopped()

    async def _release(self) -> None:
        """Hand the Lease over at once (nobody holds it) — only after every duty has stopped."""
        observed = self._observed
        self._term = None
        if observed is None or observed.record is None or observed.record.holder != self.identity:
            return
        record = leadership.released(observed.record, self.wall())
        with contextlib.suppress(kube.ApiError):
            version = await self.lock.update(record, observed.resource_version)
            self._observed = Observed(record=record, resource_version=version, since=self.clock())
            log.info("leader.released", lease=self.lock.describe(), identity=self.identity)

    async def _shutdown(self) -> None:
        if self._leading:
            await self._stop_leading("shutting down")
        async with asyncio.timeout(self.timing.renew_deadline):
            await self._release()


class Duties:
    """The loops only the leader runs (scheduler, follow-ups), started and stopped with leadership."""

    def __init__(self, start: Callable[[], list[Awaitable[None]]], resync: Callable[[], None]) -> None:
        self._start = start
        self._resync = resync
        self._tasks: list[asyncio.Task[None]] = []

    def started(self) -> None:
        """Resynchronise from the caches, then start the loops (they run at the next await)."""
        for task in self._tasks:  # stopped() always ran before; nothing may survive a term
            task.cancel()
        self._resync()
        self._tasks = [asyncio.ensure_future(work) for work in self._start()]

    async def stopped(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
