"""The package layout promises of STYLE.md, checked."""

from __future__ import annotations

import importlib
import operator
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_import_operator_is_the_standard_library() -> None:
    # The source folder is called operator/; a package there would shadow the stdlib module.
    assert not (REPO / "operator" / "__init__.py").exists()
    assert operator.__file__ is not None
    assert Path(operator.__file__).parent == Path(importlib.import_module("os").__file__ or "").parent
    assert operator.itemgetter(1)([0, 42]) == 42


def test_import_operator_in_a_fresh_interpreter_from_the_repo_root() -> None:
    result = subprocess.run(
        [sys.executable, "-c", "import operator, airlock; print(operator.__file__); print(airlock.__file__)"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    stdlib_path, airlock_path = result.stdout.split()
    assert "site-packages" not in stdlib_path
    assert stdlib_path.endswith("operator.py")
    assert Path(airlock_path).parent == REPO / "operator" / "airlock"


def test_console_scripts_exist() -> None:
    bindir = Path(sys.executable).parent
    for name in ("airlock", "kubectl-airlock"):
        assert (bindir / name).exists(), f"console script {name} missing: pip install -e '.[dev]'"
    result = subprocess.run([str(bindir / "kubectl-airlock"), "--help"], capture_output=True, text=True, check=True)
    assert "run" in result.stdout
    assert "crds" in result.stdout


def test_cli_default_webhook_host_matches_the_adapter() -> None:
    from airlock.adapters import webhook
    from airlock.cli import run

    assert run.WEBHOOK_HOST == webhook.DEFAULT_HOST


def test_cli_verbs_do_not_import_kopf() -> None:
    # Every `airlock` command pays for what the CLI imports; kopf is for `airlock run` only.
    code = "import sys, airlock.cli.main as m; m.build_parser(); print('kopf' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
