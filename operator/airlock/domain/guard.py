"""Where ``airlock guard`` sends a request, decided from what it knows of its AISystem.

The guard is the request-level kill switch (SPEC §9): while its AISystem is
``Contained`` or ``ShutDown`` it answers from the fallback upstream (or refuses with
``503``) at once, without waiting for the Service selector or the scale-down.

What it does when it does NOT know the state is a choice, made here once:

* **never seen** (just started, the API server unreachable, or the AISystem missing):
  ``unknown=refuse`` (the default) treats the system as contained — fallback or 503 —
  because a guard that cannot tell whether its model is shut down must not be the one
  thing still serving it. ``unknown=serve`` sends traffic to the model instead.
* **seen, then the API server went away**: the last known state holds (a model that
  was contained stays contained), for ``stale_after`` seconds if set, then the state
  counts as never seen. By default (``stale_after=None``) it holds for as long as the
  outage lasts: the operator cannot contain anything during an API outage either,
  the in-line detectors keep redacting and blocking, and the staleness is exported
  (``airlock_guard_state_age_seconds``) so it is never silent.

Pure: no clock is read here; the caller passes the state's age.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

CONTAINED_PHASES = frozenset({"Contained", "ShutDown"})


class Route(StrEnum):
    """Where a guarded request goes."""

    UPSTREAM = "upstream"
    FALLBACK = "fallback"
    REFUSE = "refuse"


class Unknown(StrEnum):
    """What a guard does while it does not know its system's state."""

    REFUSE = "refuse"
    SERVE = "serve"


@dataclass(frozen=True)
class SystemView:
    """The part of an AISystem the guard acts on."""

    phase: str | None
    containment_active: bool = False
    resource_version: str | None = None

    @property
    def contained(self) -> bool:
        return self.phase in CONTAINED_PHASES or self.containment_active

    @classmethod
    def of(cls, obj: dict[str, Any]) -> SystemView:
        status = obj.get("status") or {}
        containment = status.get("containment") or {}
        phase = status.get("phase")
        return cls(
            phase=phase if isinstance(phase, str) else None,
            containment_active=containment.get("active") is True if isinstance(containment, dict) else False,
            resource_version=(obj.get("metadata") or {}).get("resourceVersion"),
        )


def route(
    view: SystemView | None,
    *,
    has_fallback: bool,
    unknown: Unknown = Unknown.REFUSE,
    age: float = 0.0,
    stale_after: float | None = None,
) -> Route:
    """The route for the next request.

    ``view`` is None when the state was never seen (or the AISystem does not exist);
    ``age`` is the seconds since the guard last heard from the API server.
    """
    if view is not None and stale_after is not None and age > stale_after:
        view = None
    if view is None:
        if unknown is Unknown.SERVE:
            return Route.UPSTREAM
        return Route.FALLBACK if has_fallback else Route.REFUSE
    if view.contained:
        return Route.FALLBACK if has_fallback else Route.REFUSE
    return Route.UPSTREAM


def reason(view: SystemView | None, chosen: Route, *, stale: bool = False) -> str:
    """Why ``chosen`` applies, for logs, errors and ``/readyz``."""
    if chosen is Route.UPSTREAM:
        return "serving the model" if view is not None else "state unknown; --unknown-state serve"
    if view is None or stale:
        return "the AISystem's state is unknown (not seen yet, missing, or stale)"
    return f"the AISystem is {view.phase or 'contained'}"
