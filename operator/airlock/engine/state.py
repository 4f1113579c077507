"""In-memory state of every AISystem the operator serves.

The cluster is the source of truth: this is a cache rebuilt from watch events
and the objects' own status on start, so an operator restart loses nothing.
"""

from __future__ import annotations

import asyncio
import datetime
from dataclasses import dataclass, field
from typing import Any

from airlock.api.aisystem import AISystemSpec, AISystemStatus
from airlock.domain.errors import SpecError
from airlock.domain.plan import Plan


@dataclass(slots=True)
class SystemEntry:
    namespace: str
    name: str
    body: dict[str, Any]
    spec: AISystemSpec | None = None
    plan: Plan | None = None
    error: SpecError | None = None
    status: AISystemStatus = field(default_factory=AISystemStatus)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # Wall-clock due time (epoch seconds) of each monitor's next evaluation.
    due: dict[str, float] = field(default_factory=dict)
    written: dict[str, Any] | None = None
    written_at: datetime.datetime | None = None
    target_missing: str | None = None
    # Whether the target was checked for a containment this entry's status does not know (see Engine._adopt).
    adoption_checked: bool = False
    # A notice template override that cannot render (set by the followups loop; NoticesReady condition).
    notices_error: str | None = None
    # Its condition reason: TemplateInvalid, or SecretNotAllowed for a channel whose Secret airlock may not read.
    notices_reason: str = "TemplateInvalid"
    # Where in each status refresh period this system's value-only write falls (0..1, from its name).
    refresh_phase: float = 0.0
    # What the last full reconcile's decision rested on besides the monitors (Engine._quiet).
    quiet_basis: tuple[Any, ...] | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)

    @property
    def annotations(self) -> dict[str, str]:
        return dict((self.body.get("metadata") or {}).get("annotations") or {})

    @property
    def generation(self) -> int | None:
        value = (self.body.get("metadata") or {}).get("generation")
        return int(value) if value is not None else None

    def ref(self) -> dict[str, Any]:
        """Enough of the object to post an Event about it."""
        meta = self.body.get("metadata") or {}
        return {
            "apiVersion": "airlock.dev/v1alpha1",
            "kind": "AISystem",
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "uid": meta.get("uid"),
                "resourceVersion": meta.get("resourceVersion"),
            },
        }
