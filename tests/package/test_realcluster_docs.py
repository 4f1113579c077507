"""The real-cluster mode of the integration suite: the README lists exactly the tests skipped there, and they are skipped."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.fixtures import realcluster


def test_the_readme_lists_exactly_the_sandbox_only_tests() -> None:
    marked = realcluster.marked_tests()
    assert marked, "no test is marked sandbox_only: the README's list would be empty"
    assert all(m.reason.strip() for m in marked)
    readme = realcluster.README.read_text(encoding="utf-8")
    expected = realcluster.readme_block(marked)
    assert expected in readme, "the README's sandbox-only list is stale: python -m tests.fixtures.realcluster --write"


def test_the_markers_are_found_on_functions_and_modules(tmp_path: Path) -> None:
    tests = tmp_path / "tests" / "x"
    tests.mkdir(parents=True)
    (tests / "test_a.py").write_text(
        "import pytest\n"
        "pytestmark = [pytest.mark.integration, pytest.mark.sandbox_only('whole module')]\n"
        "@pytest.mark.parametrize('n', [1])\n"
        "@pytest.mark.sandbox_only(reason='needs history')\n"
        "def test_one(n): pass\n"
        "def test_two(): pass\n"
    )
    assert realcluster.marked_tests(tmp_path) == [
        realcluster.Marked("tests/x/test_a.py", "whole module"),
        realcluster.Marked("tests/x/test_a.py::test_one", "needs history"),
    ]


def _run(directory: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", str(directory)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
        cwd=directory,
    )


def test_marked_tests_are_skipped_with_their_reason_only_on_a_real_cluster(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    (tmp_path / "conftest.py").write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(root)!r})\n"
        "from tests.fixtures import realcluster\n"
        "def pytest_configure(config):\n"
        "    config.addinivalue_line('markers', 'sandbox_only(reason): sandbox only')\n"
        "def pytest_collection_modifyitems(config, items):\n"
        "    realcluster.skip_sandbox_only(items)\n"
    )
    (tmp_path / "test_probe.py").write_text(
        "import pytest\n"
        "@pytest.mark.sandbox_only('counts writes in the object history')\n"
        "def test_marked(): pass\n"
        "def test_plain(): pass\n"
    )
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\n")
    base = {"PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1"}
    on_sandbox = _run(tmp_path, base)
    assert "2 passed" in on_sandbox.stdout, on_sandbox.stdout
    on_cluster = _run(tmp_path, {**base, realcluster.ENV: str(kubeconfig)})
    assert "1 passed, 1 skipped" in on_cluster.stdout, on_cluster.stdout
    assert "sandbox only (AIRLOCK_TEST_KUBECONFIG is set): counts writes in the object history" in on_cluster.stdout
