"""Leader election over a ``coordination.k8s.io/v1`` Lease: the decisions, without I/O or a clock.

airlock runs as several replicas; one of them — the holder of the Lease — acts.
This module decides, from what a replica has observed of the Lease and from
its own monotonic clock, what it may do next.  The rules are client-go's
(``k8s.io/client-go/tools/leaderelection``):

- The Lease's ``renewTime`` is never compared with anyone's clock.  A replica
  remembers *when it first saw* the current record (holder, times,
  transitions); a record that has not changed for ``leaseDurationSeconds`` on
  the observer's OWN clock is expired, and only then may another replica take
  it over.  So the election tolerates any clock offset between replicas; it
  assumes only that their clocks run at about the same rate.
- Writes are optimistic: an update carries the ``resourceVersion`` it was based
  on, so of two replicas that try to take over at once one gets 409 Conflict.
- The holder renews every ``retry_period``.  It counts itself the leader only
  while its last successful renewal was *sent* less than ``renew_deadline``
  ago (:meth:`Term.acting`).  Because a candidate waits ``lease_duration`` from
  the moment it *saw* that renewal (which is after it was sent), a holder that
  cannot renew — paused, partitioned, overloaded — stops acting at least
  ``lease_duration − renew_deadline`` before anyone else can start.  That
  margin is the allowance for a write already on the wire, and it makes the
  election tolerate clocks that run apart by that ratio (4 s / 3 s: 33 %).

What this module does NOT do: there are no fencing tokens in the Kubernetes
API, so nothing here can stop a write that left the process before its
deadline from arriving after it (a process frozen between the check and the
socket write).  The operator checks the deadline at the last moment before
each write (``airlock.adapters.kube``) to make that window one event-loop step.
"""

from __future__ import annotations

import datetime
import enum
from collections.abc import Iterable
from dataclasses import dataclass, replace

# client-go's JitterFactor: a renewal deadline must leave room for more than one retry.
JITTER_FACTOR = 1.2


@dataclass(frozen=True)
class Timing:
    """The election's three durations, in seconds (``airlock run --lease-duration`` etc.)."""

    lease_duration: float = 4.0
    renew_deadline: float = 3.0
    retry_period: float = 0.5

    def problems(self) -> list[str]:
        """What is wrong with these settings (client-go's rules), in flag names; empty when valid."""
        found: list[str] = []
        if self.lease_duration < 1 or self.lease_duration != int(self.lease_duration):
            found.append(f"--lease-duration must be whole seconds, at least 1 (got {self.lease_duration:g})")
        if self.renew_deadline >= self.lease_duration:
            found.append(
                f"--renew-deadline ({self.renew_deadline:g}s) must be shorter than --lease-duration "
                f"({self.lease_duration:g}s): the gap is what keeps two leaders from acting at once"
            )
        if self.retry_period <= 0:
            found.append(f"--retry-period must be positive (got {self.retry_period:g})")
        elif self.renew_deadline <= JITTER_FACTOR * self.retry_period:
            found.append(
                f"--renew-deadline ({self.renew_deadline:g}s) must be longer than {JITTER_FACTOR:g} × "
                f"--retry-period ({self.retry_period:g}s), to allow more than one renewal attempt"
            )
        return found


@dataclass(frozen=True)
class Record:
    """A Lease's ``spec``, as the election reads and writes it ("" holder: nobody holds it)."""

    holder: str = ""
    lease_duration_seconds: int = 1
    acquire_time: datetime.datetime | None = None
    renew_time: datetime.datetime | None = None
    transitions: int = 0


@dataclass(frozen=True)
class Observed:
    """One replica's view of one Lease: the record and when (its monotonic clock) it last changed."""

    record: Record | None  # None: no such Lease
    resource_version: str | None
    since: float

    def expired(self, now: float) -> bool:
        """Unchanged for the record's lease duration on the observer's own clock (a missing Lease is)."""
        if self.record is None or not self.record.holder:
            return True
        return now - self.since >= self.record.lease_duration_seconds


def observe(previous: Observed | None, record: Record | None, resource_version: str | None, now: float) -> Observed:
    """Fold a fresh read into what was observed: the clock restarts only when the record changed."""
    if previous is not None and previous.record == record:
        return replace(previous, resource_version=resource_version)
    return Observed(record=record, resource_version=resource_version, since=now)


class Step(enum.Enum):
    CREATE = "create"  # no Lease yet: create it, holding it
    ACQUIRE = "acquire"  # nobody holds it, or its holder stopped renewing: take it over
    RENEW = "renew"  # it is ours: renew it
    WAIT = "wait"  # someone else holds it and renews it


def next_step(observed: Observed, identity: str, now: float) -> Step:
    record = observed.record
    if record is None:
        return Step.CREATE
    if record.holder == identity:
        return Step.RENEW
    if observed.expired(now):
        return Step.ACQUIRE
    return Step.WAIT


def renewed(record: Record, identity: str, now: datetime.datetime, timing: Timing) -> Record:
    """The record a holder writes to renew: same acquisition, same transitions, a new renewTime."""
    return Record(
        holder=identity,
        lease_duration_seconds=int(timing.lease_duration),
        acquire_time=record.acquire_time or now,
        renew_time=now,
        transitions=record.transitions,
    )


def acquired(record: Record | None, identity: str, now: datetime.datetime, timing: Timing) -> Record:
    """The record a replica writes to take the Lease (one more transition; none for a new Lease)."""
    return Record(
        holder=identity,
        lease_duration_seconds=int(timing.lease_duration),
        acquire_time=now,
        renew_time=now,
        transitions=record.transitions + 1 if record is not None else 0,
    )


def released(record: Record, now: datetime.datetime) -> Record:
    """The record a holder writes when it stops on purpose: nobody holds it, anyone may take it now."""
    return Record(holder="", lease_duration_seconds=1, acquire_time=now, renew_time=now, transitions=record.transitions)


@dataclass(frozen=True)
class Term:
    """The time a holder's last successful renewal (or acquisition) was sent, on its monotonic clock."""

    renewed_at: float

    def acting(self, now: float, timing: Timing) -> bool:
        """Whether the holder may still act: the fence checked before every write."""
        return now - self.renewed_at < timing.renew_deadline

    def must_step_down(self, now: float, timing: Timing) -> bool:
        return not self.acting(now, timing)


def conflicts(others: Iterable[tuple[str, Observed]], now: float) -> list[str]:
    """Names of the Leases among ``others`` that someone still holds (see ``sharding`` for why)."""
    return sorted(name for name, observed in others if not observed.expired(now))
