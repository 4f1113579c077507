"""``make unit`` runs the suite on two xdist workers: every module must stay on one of them.

Module-scoped fixtures (a sandbox world with an operator, a backtest scenario played for
25 s) are built once per worker that runs any of the module's tests, so a module split
over both workers pays twice — and its tests no longer share what the fixture recorded.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

MODULE = """
import json, os, pathlib
import pytest

@pytest.fixture(scope="module")
def built():
    out = pathlib.Path(os.environ["LAYOUT_OUT"])
    with out.open("a") as f:
        f.write(json.dumps({"module": __name__, "worker": os.environ.get("PYTEST_XDIST_WORKER")}) + "\\n")

@pytest.mark.parametrize("n", range(6))
def test_one(built, n):
    pass
"""


def _unit_args() -> list[str]:
    match = re.search(r"^unit:\n\t\$\(PYTHON\) -m pytest (.+)$", (ROOT / "Makefile").read_text(), re.M)
    assert match, "Makefile: no `unit` target running pytest"
    return [a for a in match.group(1).split() if a not in ("-q",)]


def test_make_unit_keeps_every_module_on_one_worker(tmp_path: Path) -> None:
    args = _unit_args()
    assert "-n" in args, args
    for name in ("test_alpha", "test_beta", "test_gamma"):
        (tmp_path / f"{name}.py").write_text(MODULE)
    out = tmp_path / "built.jsonl"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", *args, "-p", "no:randomly", "--rootdir", str(tmp_path), str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "LAYOUT_OUT": str(out)},
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    built = [json.loads(line) for line in out.read_text().splitlines()]
    per_module: dict[str, list[str]] = {}
    for record in built:
        per_module.setdefault(record["module"], []).append(record["worker"])
    assert sorted(per_module) == ["test_alpha", "test_beta", "test_gamma"]
    # Each module's fixture was built exactly once: all its tests ran on one worker.
    assert all(len(workers) == 1 for workers in per_module.values()), per_module
    assert {w for ws in per_module.values() for w in ws} <= {"gw0", "gw1"}
