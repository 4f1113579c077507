"""The integration world lives in the package (the demo and benchmarks use it too)."""

from airlock.sandbox.world import (
    PATHS,
    Api,
    OperatorProcess,
    deployment,
    load_crds,
    service,
    wait_for,
)

__all__ = ["PATHS", "Api", "OperatorProcess", "deployment", "load_crds", "service", "wait_for"]
