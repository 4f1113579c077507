"""The change log behind resourceVersions and watch streams.

A real API server gets both from etcd: one cluster-wide revision counter stamps every
write, and a watch started at revision N replays exactly the writes after N, or fails with
410 Gone once N has been compacted away. Kopf, client-go informers and ``kubectl get -w``
all depend on this contract (list, then watch from the list's resourceVersion, relist on
410), so the sandbox keeps the same structure: a global counter, an ordered log of
changes stamped with it, optional compaction, and followers that wait on the log.

The log lives on one event loop; it is not thread-safe by design (the cluster thread
funnels cross-thread calls into its loop).
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from airlock.sandbox._k8s_errors import ApiError, expired


@dataclass(frozen=True)
class Change:
    """One persisted write, as a watcher sees it."""

    rv: int
    group: str
    plural: str
    namespace: str | None
    name: str
    type: str  # ADDED, MODIFIED or DELETED
    obj: dict[str, Any]
    # The state before the write; lets selector-filtered watches turn a change that leaves
    # or enters the selection into DELETED or ADDED, as the real server does.
    old: dict[str, Any] | None = None


class EventLog:
    def __init__(self, max_changes: int | None = None) -> None:
        self.max_changes = max_changes
        self._changes: list[Change] = []
        self._rv = 0
        self._compacted_rv = 0
        self._wakeup: asyncio.Event | None = None
        self.closed = False

    @property
    def resource_version(self) -> int:
        """The current global resourceVersion (of the latest write)."""
        return self._rv

    @property
    def compacted_rv(self) -> int:
        return self._compacted_rv

    def next_rv(self) -> int:
        self._rv += 1
        return self._rv

    def append(self, change: Change) -> None:
        self._changes.append(change)
        if self.max_changes is not None and len(self._changes) > self.max_changes:
            self.compact(keep=self.max_changes)
        self.notify()

    def compact(self, keep: int = 0) -> None:
        """Forget all but the ``keep`` latest changes; older watches then get 410 Gone."""
        cut = max(0, len(self._changes) - keep)
        if cut:
            self._compacted_rv = self._changes[cut - 1].rv
            del self._changes[:cut]
        if keep == 0:
            self._compacted_rv = self._rv

    def since(self, rv: int) -> list[Change]:
        if rv < self._compacted_rv:
            raise expired(f"too old resource version: {rv} ({self._compacted_rv})")
        start = bisect.bisect_right(self._changes, rv, key=lambda change: change.rv)
        return self._changes[start:]

    def notify(self) -> None:
        if self._wakeup is not None:
            self._wakeup.set()
            self._wakeup = None

    async def wait(self, max_wait: float | None) -> None:
        """Sleep until the next change (or notification), at most ``max_wait`` seconds."""
        if self.closed:
            return
        if self._wakeup is None:
            self._wakeup = asyncio.Event()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wakeup.wait(), max_wait)

    def close(self) -> None:
        """End all followers (used at shutdown so the HTTP server is not held by open watches)."""
        self.closed = True
        self.notify()


async def follow(
    log: EventLog,
    since: int,
    select: Callable[[Change], tuple[str, dict[str, Any]] | None],
    *,
    stop_after: float | None,
    bookmark: Callable[[int], dict[str, Any]] | None = None,
    bookmark_interval: float = 10.0,
    alive: Callable[[], bool] = lambda: True,
) -> AsyncIterator[dict[str, Any]]:
    """Yield watch events (``{"type", "object"}``) for changes after ``since``.

    ``select`` turns a change into the event this watcher should see, or None to skip it.
    Stops after ``stop_after`` seconds, when the log closes, or when ``alive()`` turns false
    (e.g. the CRD of the watched resource was deleted). An expired ``since`` yields one
    ERROR event with the 410 Status, like the real server.
    """
    loop = asyncio.get_running_loop()
    deadline = None if stop_after is None else loop.time() + stop_after
    next_bookmark = loop.time() + bookmark_interval
    cursor = since
    while not log.closed and alive():
        try:
            changes = log.since(cursor)
        except ApiError as error:
            yield {"type": "ERROR", "object": error.to_status()}
            return
        for change in changes:
            cursor = change.rv
            event = select(change)
            if event is not None:
                yield {"type": event[0], "object": event[1]}
        now = loop.time()
        if deadline is not None and now >= deadline:
            return
        if changes:
            # More may have arrived while the consumer was sending; look again before sleeping.
            continue
        if bookmark is not None and now >= next_bookmark:
            yield {"type": "BOOKMARK", "object": bookmark(cursor)}
            next_bookmark = now + bookmark_interval
            continue
        wake_times = [t for t in (deadline, next_bookmark if bookmark else None) if t is not None]
        await log.wait(max(0.0, min(wake_times) - now) if wake_times else None)
