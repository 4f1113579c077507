"""Fixtures for integration tests: one world per module, one namespace per test.

A module chooses the admission its world runs with by overriding ``world_admission``
(default: none), e.g. ``AdmissionMode.WEBHOOK`` for the operator's real webhook.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from airlock.sandbox import world as sandbox_world
from airlock.sandbox.world import AdmissionMode, World

_counter = itertools.count(1)


@contextlib.contextmanager
def running_world(tmp: Path, admission: AdmissionMode = AdmissionMode.NONE) -> Iterator[World]:
    """The package's world, with the operator's log tail printed on exit (pytest shows it on failure)."""
    try:
        with sandbox_world.running_world(tmp, admission=admission) as world:
            yield world
    finally:
        log = tmp / "operator.log"
        if log.exists():
            print("---- operator log (tail) ----")
            print("\n".join(log.read_text(errors="replace").splitlines()[-60:]))


@pytest.fixture(scope="module")
def world_admission() -> AdmissionMode:
    """The admission of the module's world; a module overrides this fixture to choose another."""
    return AdmissionMode.NONE


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, world_admission: AdmissionMode) -> Iterator[World]:
    with running_world(tmp_path_factory.mktemp("world"), world_admission) as world:
        yield world


@dataclass
class Tenant:
    """A namespace and model app of one test: tests in a module never see each other's objects."""

    namespace: str
    app: str


@pytest.fixture
def tenant(world: World) -> Tenant:
    n = next(_counter)
    tenant = Tenant(namespace=f"t{n}-ml", app=f"chatbot{n}")
    world.api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": tenant.namespace}})
    world.model.add_app(tenant.namespace, tenant.app)
    return tenant
