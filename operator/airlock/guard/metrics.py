"""The guard's Prometheus metrics (SPEC §9 names are binding), in a registry of their own.

Every series carries the guarded system's ``namespace`` and ``system`` labels, so the
shipped policies match them to an AISystem with ``match: {namespace, system: "{{ name }}"}``.

Every label combination the guard can produce is created at 0 when it starts: a
counter that first appears with the value 1 shows no ``rate()``/``increase()`` in
Prometheus, and the first cross-customer leak is exactly the one that must be seen.

Besides the four binding families, what the drift monitors need: the length of every
answer (characters and tokens), its finish reason, and the guard's own view of its
system (route, phase, API-server contact) so a guard that lost track is never silent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from enum import StrEnum

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest

from airlock.domain.guard import Route


class Outcome(StrEnum):
    """How the guard answered one guarded request (label ``outcome``)."""

    OK = "ok"  # the model's answer, unchanged
    REDACTED = "redacted"  # the model's answer with findings replaced
    BLOCKED = "blocked"  # airlock_blocked instead of the request or the answer
    FALLBACK = "fallback"  # answered by --fallback-upstream (system contained)
    UNAVAILABLE = "unavailable"  # 503: contained (or state unknown) and no fallback
    INVALID = "invalid"  # refused by the guard: malformed, not UTF-8, too large (4xx)
    UPSTREAM_REJECTED = "upstream_rejected"  # the upstream answered 4xx
    UPSTREAM_ERROR = "upstream_error"  # upstream 5xx, unreachable (502) or a stream cut mid-way
    UPSTREAM_TIMEOUT = "upstream_timeout"  # 504
    CLIENT_CLOSED = "client_closed"  # the client went away mid-answer


class FinishReason(StrEnum):
    """Closed set for the ``finish_reason`` label; anything else is ``other``."""

    STOP = "stop"
    LENGTH = "length"
    TOOL_CALLS = "tool_calls"
    CONTENT_FILTER = "content_filter"
    FUNCTION_CALL = "function_call"
    OTHER = "other"
    NONE = "none"  # the stream ended without one (cut, or the client left)


LATENCY_BUCKETS = (0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
CHARACTER_BUCKETS = (16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768)
TOKEN_BUCKETS = (4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192)
PHASES = ("Healthy", "Degraded", "Contained", "ShutDown", "Unknown", "Invalid", "NotSeen")


class GuardMetrics:
    """The metric families of one guard process (one AISystem)."""

    def __init__(
        self,
        namespace: str,
        system: str,
        *,
        kinds: Mapping[str, Mapping[str, Iterable[str]]],
    ) -> None:
        """``kinds``: direction -> detector -> the kinds it reports (pre-created at 0)."""
        self.registry = CollectorRegistry(auto_describe=False)
        base = ["namespace", "system"]
        at = (namespace, system)
        registry = self.registry
        requests = Counter(
            "airlock_guard_requests",
            "Guarded requests by how they were answered.",
            [*base, "outcome"],
            registry=registry,
        )
        self.requests = {outcome: requests.labels(*at, outcome.value) for outcome in Outcome}
        self._detections = Counter(
            "airlock_guard_detections",
            "Findings by detector and kind, in requests or responses.",
            [*base, "detector", "kind", "direction"],
            registry=registry,
        )
        self._at = at
        self._detection_children: dict[tuple[str, str, str], Counter] = {}
        for direction, detectors in kinds.items():
            for detector, detector_kinds in detectors.items():
                for kind in detector_kinds:
                    self.detection(detector, kind, direction)
        tokens = Counter(
            "airlock_guard_tokens", "Tokens by type, from the answers' usage.", [*base, "type"], registry=registry
        )
        self.prompt_tokens = tokens.labels(*at, "prompt")
        self.completion_tokens = tokens.labels(*at, "completion")
        self.added_latency = Histogram(
            "airlock_guard_added_latency_seconds",
            "Time the guard itself spent on a request (parsing, detectors, rewriting), upstream and client waits excluded.",
            base,
            buckets=LATENCY_BUCKETS,
            registry=registry,
        ).labels(*at)
        self.answer_characters = Histogram(
            "airlock_guard_answer_length_characters",
            "Characters of each answer (all choices), as the model wrote it.",
            base,
            buckets=CHARACTER_BUCKETS,
            registry=registry,
        ).labels(*at)
        self.answer_tokens = Histogram(
            "airlock_guard_answer_length_tokens",
            "Completion tokens of each answer, from its usage.",
            base,
            buckets=TOKEN_BUCKETS,
            registry=registry,
        ).labels(*at)
        answers = Counter(
            "airlock_guard_answers", "Answered choices by finish reason.", [*base, "finish_reason"], registry=registry
        )
        self.answers = {reason: answers.labels(*at, reason.value) for reason in FinishReason}
        route = Gauge(
            "airlock_guard_route",
            "Where guarded requests go now (1 for the active route).",
            [*base, "route"],
            registry=registry,
        )
        self._route = {r: route.labels(*at, r.value) for r in Route}
        phase = Gauge(
            "airlock_guard_system_phase",
            "The AISystem's phase as the guard last saw it (NotSeen: never, or the system does not exist).",
            [*base, "phase"],
            registry=registry,
        )
        self._phase = {p: phase.labels(*at, p) for p in PHASES}
        self.watch_up = Gauge(
            "airlock_guard_watch_up", "1 while the guard's watch on its AISystem is connected.", base, registry=registry
        ).labels(*at)
        self._age = Gauge(
            "airlock_guard_state_age_seconds",
            "Seconds since the guard last heard from the API server about its AISystem (-1: never).",
            base,
            registry=registry,
        ).labels(*at)
        self._age.set(-1)
        self.set_route(Route.REFUSE)
        self.set_phase(None)

    def detection(self, detector: str, kind: str, direction: str) -> Counter:
        key = (detector, kind, direction)
        child = self._detection_children.get(key)
        if child is None:
            child = self._detections.labels(*self._at, detector, kind, direction)
            self._detection_children[key] = child
        return child

    def finish(self, reason: str | None) -> None:
        try:
            label = FinishReason(reason) if reason else FinishReason.NONE
        except ValueError:
            label = FinishReason.OTHER
        self.answers[label].inc()

    def set_route(self, chosen: Route) -> None:
        for r, child in self._route.items():
            child.set(1 if r is chosen else 0)

    def set_phase(self, phase: str | None) -> None:
        name = phase if phase in PHASES else ("Unknown" if phase else "NotSeen")
        for p, child in self._phase.items():
            child.set(1 if p == name else 0)

    def track_age(self, seconds: Callable[[], float]) -> None:
        """Read the state's age at every scrape (-1 while never seen)."""
        self._age.set_function(seconds)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
