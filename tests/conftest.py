"""Shared pytest configuration: fixtures live in ``tests/fixtures/`` as plugins."""

from __future__ import annotations

import pytest

from tests.fixtures import realcluster

pytest_plugins = [
    "tests.fixtures.cluster",
    "tests.fixtures.prometheus",
]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip the sandbox-only tests, with their reason, when the suite runs on a real cluster.

    ``make unit`` runs ``pytest -n 2 --dist loadfile``: every module stays on one worker, so a
    module-scoped fixture (a sandbox world, a scenario played once) is built once.  Not
    ``loadgroup`` with ``xdist_group`` marks: with pytest 9.2 and pytest-xdist 3.8 the group
    is never applied (xdist rewrites ``item._nodeid``, which ``item.nodeid`` no longer reads),
    so every test became its own unit and module fixtures were built on both workers.
    ``tests/package/test_parallel_layout.py`` checks the grouping holds.
    """
    realcluster.skip_sandbox_only(items)
