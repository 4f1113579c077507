"""Shared pytest configuration: fixtures live in ``tests/fixtures/`` as plugins."""

pytest_plugins = [
    "tests.fixtures.cluster",
    "tests.fixtures.prometheus",
]
