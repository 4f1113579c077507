"""Shared pytest configuration: fixtures live in ``tests/fixtures/`` as plugins."""

from __future__ import annotations

import pytest

from tests.fixtures import realcluster

pytest_plugins = [
    "tests.fixtures.cluster",
    "tests.fixtures.prometheus",
]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Groups for ``pytest -n 2 --dist loadgroup`` (``make unit``).

    Every module stays on one worker (module-scoped fixtures such as a sandbox world are
    built once), and the integration modules share one worker: they run one after the
    other, as timing-sensitive tests of a real operator should, while the other worker
    takes everything else.
    """
    realcluster.skip_sandbox_only(items)
    for item in items:
        path = item.path.as_posix()
        group = "integration" if "/tests/integration/" in path else item.nodeid.split("::", 1)[0]
        item.add_marker(pytest.mark.xdist_group(group))
