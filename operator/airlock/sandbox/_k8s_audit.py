"""The sandbox API server's request records, bounded: what a real server's audit log would say.

Each request the sandbox answers is recorded once with who made it (after
impersonation), what it asked (verb, path) and the status it got, stamped with
the serving process's ``time.monotonic()`` — the same clock a test in that
process uses to mark "the operator was paused here".  Tests prove from these
records, not from the operator's logs, which replica wrote what and when.

Only the most recent ``maxlen`` records are kept (and kmock's own request log
is trimmed to the same length, see :class:`Recent`): a soak run or a benchmark
with millions of requests costs memory proportional to the bound, and no
request pays for the length of the run.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True)
class AuditRecord:
    seq: int  # 0, 1, 2, … in arrival order, over the whole run (trimmed records leave a gap at the start)
    received: float  # time.monotonic() when the request arrived
    user: str
    method: str
    path: str
    code: int

    @property
    def write(self) -> bool:
        return self.method in WRITE_METHODS


class AuditLog:
    def __init__(self, maxlen: int | None) -> None:
        self._records: collections.deque[AuditRecord] = collections.deque(maxlen=maxlen)
        self.count = 0

    def next_seq(self) -> int:
        seq = self.count
        self.count += 1
        return seq

    def record(self, seq: int, received: float, user: str, method: str, path: str, code: int) -> None:
        self._records.append(AuditRecord(seq, received, user, method, path, code))

    def records(self, *, user: str | None = None, since: float | None = None) -> list[AuditRecord]:
        """Kept records in arrival order, optionally of one user and received at or after ``since``."""
        return sorted(
            (r for r in self._records if (user is None or r.user == user) and (since is None or r.received >= since)),
            key=lambda r: r.seq,
        )


def now() -> float:
    return time.monotonic()


class Recent(list[T]):
    """A list that keeps only its last ``maxlen`` items.

    kmock keeps every request in a plain list and its views iterate it; this keeps
    the type kmock expects while bounding what a long run accumulates.  Dropping
    the oldest item moves ``maxlen`` pointers (microseconds at 10,000).
    """

    def __init__(self, maxlen: int | None, items: Iterable[T] = ()) -> None:
        super().__init__(items)
        self.maxlen = maxlen

    def append(self, item: T) -> None:
        super().append(item)
        if self.maxlen is not None and len(self) > self.maxlen:
            del self[: len(self) - self.maxlen]
