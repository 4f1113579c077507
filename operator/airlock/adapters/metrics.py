"""The operator's own Prometheus metrics (SPEC §5), served on ``--metrics-port``.

Names use the spec's words: containment, incident, severity, failure_mode,
monitor, state.  One registry per process so tests can read it back.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

REGISTRY = CollectorRegistry(auto_describe=True)

CONTAINMENTS_ACTIVE = Gauge(
    "airlock_containments_active",
    "AISystems currently contained (1 per system).",
    ["namespace", "system"],
    registry=REGISTRY,
)
CONTAINMENTS = Counter(
    "airlock_containments_total", "Containments applied.", ["severity", "failure_mode", "trigger"], registry=REGISTRY
)
RELEASES = Counter("airlock_releases_total", "Release requests by outcome.", ["outcome"], registry=REGISTRY)
INCIDENTS = Counter(
    "airlock_incidents_total", "Incidents opened.", ["severity", "failure_mode", "drill"], registry=REGISTRY
)
TIME_TO_CONTAIN = Histogram(
    "airlock_time_to_contain_seconds",
    "From the first breach sample to the API server accepting the containment.",
    buckets=(0.25, 0.5, 1, 2, 5, 10, 15, 20, 30, 60, 120, 300),
    registry=REGISTRY,
)
EVALUATIONS = Counter("airlock_evaluations_total", "Monitor evaluations by state.", ["state"], registry=REGISTRY)
PROVIDER_ERRORS = Counter("airlock_provider_errors_total", "Failed Prometheus queries.", registry=REGISTRY)
PROVIDER_QUERIES = Counter("airlock_provider_queries_total", "Prometheus queries sent.", registry=REGISTRY)
EVALUATION_DURATION = Histogram(
    "airlock_evaluation_cycle_seconds",
    "Duration of one evaluation cycle (queries + decisions + writes).",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 15, 30),
    registry=REGISTRY,
)
OVERRUNS = Counter(
    "airlock_evaluation_overruns_total", "Evaluation cycles that started after their due time + 1 s.", registry=REGISTRY
)
SYSTEMS = Gauge("airlock_systems", "AISystems served, by phase.", ["phase"], registry=REGISTRY)
REPORT_DEADLINE = Gauge(
    "airlock_report_deadline_seconds",
    "Seconds left until a regulatory report is due (negative: overdue).",
    ["namespace", "incident", "regime"],
    registry=REGISTRY,
)

NOTIFICATIONS = Counter(
    "airlock_notifications_total",
    "Notice delivery attempts by channel type, audience and result (sent, failed, gave-up).",
    ["channel_type", "audience", "result"],
    registry=REGISTRY,
)

LEADER = Gauge(
    "airlock_leader",
    "1 while this replica holds its Lease and may act, else 0 (standby); one series per Lease.",
    ["lease"],
    registry=REGISTRY,
)
LEADER_TRANSITIONS = Counter(
    "airlock_leader_transitions_total",
    "Times this replica became the leader of its Lease (summed over replicas: the Lease's transitions).",
    ["lease"],
    registry=REGISTRY,
)


def serve(port: int, host: str = "0.0.0.0") -> None:
    """Serve /metrics from a background thread."""
    start_http_server(port, addr=host, registry=REGISTRY)
