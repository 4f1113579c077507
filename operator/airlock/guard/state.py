"""What the guard knows about its AISystem, kept current by one watch on the API server.

The kill switch must act within a second of the operator writing ``Contained``, so the
state is PUSHED: a watch on the one AISystem (``fieldSelector=metadata.name=…``, from
the list's ``resourceVersion``), reconnected at once when it ends, with a short
back-off (50 ms doubling to 2 s) while the API server is unreachable.  Nothing here
polls.

The route for the next request is computed when the state changes, not per request
(a request reads one attribute).  With ``stale_after`` set, the age is checked per
request too.

Least privilege: ``list`` and ``watch`` with a ``metadata.name`` field selector, which
RBAC authorizes against ``resourceNames`` — the guard's ServiceAccount may read its
own AISystem and nothing else.  It NEVER writes to the API server.

A dead connection that closes nothing (a peer gone without FIN) is noticed by the read
timeout (``WATCH_SECONDS`` + 15 s); until then the guard believes its view is live.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import structlog

from airlock.adapters import kube
from airlock.api import guard as guard_api
from airlock.domain import guard as decide
from airlock.domain.guard import Route, SystemView, Unknown
from airlock.guard.metrics import GuardMetrics

log = structlog.get_logger("airlock.guard")

# The API server ends each watch after this long; the guard lists and watches again, which
# also proves the connection is alive.
WATCH_SECONDS = 60
# Back-off while the API server cannot be reached: quick at first (a blip), then every 2 s.
BACKOFF_FIRST, BACKOFF_MAX = 0.05, 2.0


class SystemState:
    """The guard's view of its AISystem and the route it implies."""

    def __init__(
        self,
        *,
        namespace: str,
        name: str,
        has_fallback: bool,
        metrics: GuardMetrics,
        file_config: guard_api.GuardSpec | None = None,
        unknown: Unknown = Unknown.REFUSE,
        stale_after: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.namespace = namespace
        self.name = name
        self.has_fallback = has_fallback
        self.unknown = unknown
        self.stale_after = stale_after
        self.metrics = metrics
        self.clock = clock
        self.view: SystemView | None = None
        self.watch_up = False
        self.last_contact: float | None = None
        self.file_config = file_config
        self.spec_config: guard_api.GuardSpec | None = None
        self.modes = guard_api.stricter(file_config)
        # Bumped whenever the route changes: a stream started on the model checks it per event.
        self.generation = 0
        self._route = Route.REFUSE
        self._recompute()
        metrics.track_age(self.age)

    # -- reads (per request) -------------------------------------------------------------

    def route(self) -> Route:
        if self.stale_after is not None:
            self._recompute()
        return self._route

    def age(self) -> float:
        """0 while the watch is connected; else seconds since the last word from the API server (-1: never)."""
        if self.watch_up:
            return 0.0
        if self.last_contact is None:
            return -1.0
        return self.clock() - self.last_contact

    @property
    def known(self) -> bool:
        return self.view is not None

    def reason(self) -> str:
        stale = self.view is not None and self.stale_after is not None and self.age() > self.stale_after
        return decide.reason(self.view, self._route, stale=stale)

    # -- writes (from the watch) ------------------------------------------------------------

    def seen(self, obj: dict[str, Any] | None) -> None:
        """The AISystem as the API server has it now (None: it does not exist)."""
        self.touch()
        self.view = None if obj is None else SystemView.of(obj)
        self.metrics.set_phase(self.view.phase if self.view is not None else None)
        self._spec(obj)
        self._recompute()

    def touch(self) -> None:
        self.last_contact = self.clock()

    def connected(self, up: bool) -> None:
        if up or self.watch_up:
            self.touch()  # connected now, or it was until this moment
        if up != self.watch_up:
            self.watch_up = up
            self.metrics.watch_up.set(1 if up else 0)
            if not up:
                log.warning("guard.watch_lost", namespace=self.namespace, system=self.name, route=self._route.value)
        if self.stale_after is not None:
            self._recompute()

    def _spec(self, obj: dict[str, Any] | None) -> None:
        section = ((obj or {}).get("spec") or {}).get("guard")
        try:
            spec = None if section is None else guard_api.parse(section, where="AISystem spec.guard")
        except guard_api.GuardConfigError as exc:
            # The CRD schema refuses this at apply time; an older CRD may not. Keep what was in force.
            log.error("guard.spec_invalid", namespace=self.namespace, system=self.name, error=str(exc))
            return
        if spec != self.spec_config:
            self.spec_config = spec
            self.modes = guard_api.stricter(self.file_config, spec)
            log.info(
                "guard.modes",
                namespace=self.namespace,
                system=self.name,
                modes={d.value: m.value for d, m in self.modes.items()},
            )

    def _recompute(self) -> None:
        age = self.age()
        chosen = decide.route(
            self.view,
            has_fallback=self.has_fallback,
            unknown=self.unknown,
            age=max(age, 0.0),
            stale_after=self.stale_after,
        )
        if chosen is not self._route:
            self._route = chosen
            self.generation += 1
            self.metrics.set_route(chosen)
            (log.info if chosen is Route.UPSTREAM else log.warning)(
                "guard.route",
                namespace=self.namespace,
                system=self.name,
                route=chosen.value,
                phase=self.view.phase if self.view else None,
                reason=self.reason(),
            )


async def watch(state: SystemState, client: kube.KubeClient) -> None:
    """Keep ``state`` current until cancelled: list, watch from the list's version, repeat."""
    selector = f"metadata.name={state.name}"
    path = kube.AISYSTEMS.path(state.namespace)
    backoff = BACKOFF_FIRST
    while True:
        try:
            listing = await client.request("GET", path, params={"fieldSelector": selector})
            items = listing.get("items") or []
            state.seen(items[0] if items else None)
            state.connected(True)
            backoff = BACKOFF_FIRST
            version = (listing.get("metadata") or {}).get("resourceVersion")
            async for event in client.watch(
                kube.AISYSTEMS,
                state.namespace,
                version,
                field_selector=selector,
                timeout_seconds=WATCH_SECONDS,
                read_timeout=WATCH_SECONDS + 15,
            ):
                kind, obj = event.get("type"), event.get("object") or {}
                if kind in ("ADDED", "MODIFIED"):
                    state.seen(obj)
                elif kind == "DELETED":
                    state.seen(None)
                elif kind == "BOOKMARK":
                    state.touch()
                elif kind == "ERROR":
                    # 410 Gone (compacted) and the like: list again.
                    log.info("guard.watch_error", status=obj.get("code"), message=obj.get("message"))
                    break
            # The server ended the watch (timeoutSeconds): list and watch again at once.
        except asyncio.CancelledError:
            state.connected(False)
            raise
        except (kube.ApiError, aiohttp.ClientError, TimeoutError, ValueError, OSError) as exc:
            state.connected(False)
            log.warning("guard.watch_failed", error=str(exc)[:300], retry_in=backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, BACKOFF_MAX)
