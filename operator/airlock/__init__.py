"""airlock: a Kubernetes operator that enforces AI incident containment.

The package is layered (see pyproject's import-linter contracts):
``handlers`` (Kopf) → ``adapters`` (Kubernetes, Prometheus, notifications)
→ ``domain`` (pure decisions) → ``api`` (pydantic models, the CRD source).
"""

__version__ = "0.1.0"
