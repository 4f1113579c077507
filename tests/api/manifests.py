"""Loading the manifest corpora: the invalid ones under ``tests/api/corpus/invalid`` and the shipped ones.

An invalid manifest starts with comment lines that say what must happen:

``# expect: <substring>``  (one or more) — part of the error that names the field;
``# only: model — why``    — the CRD schema cannot catch it (the test proves it does not);
``# only: operator — why`` — only the merge with a ContainmentPolicy can: the file holds
                             the policy and the AISystem as two documents.
"""

from __future__ import annotations

import dataclasses
import pathlib
from typing import Any

import yaml

from airlock.api.aisystem import AISystem
from airlock.api.common import Model
from airlock.api.incident import AIIncident
from airlock.api.policy import ContainmentPolicy

ROOT = pathlib.Path(__file__).resolve().parents[2]
INVALID_DIR = pathlib.Path(__file__).resolve().parent / "corpus" / "invalid"
SHIPPED_DIRS = (ROOT / "policies", ROOT / "examples")

MODELS: dict[str, type[Model]] = {
    "AISystem": AISystem,
    "ContainmentPolicy": ContainmentPolicy,
    "AIIncident": AIIncident,
}


@dataclasses.dataclass(frozen=True)
class Invalid:
    path: pathlib.Path
    expect: tuple[str, ...]
    only: str | None  # None (model and schema), "model" or "operator"
    documents: tuple[dict[str, Any], ...]

    @property
    def id(self) -> str:
        return self.path.name


def load_invalid(path: pathlib.Path) -> Invalid:
    text = path.read_text(encoding="utf-8")
    expect: list[str] = []
    only: str | None = None
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        directive, _, value = line[1:].strip().partition(":")
        if directive == "expect":
            expect.append(value.strip())
        elif directive == "only":
            only = value.strip().split()[0]
    if not expect:
        raise ValueError(f"{path.name}: no '# expect:' line")
    if only not in (None, "model", "operator"):
        raise ValueError(f"{path.name}: unknown '# only: {only}'")
    documents = tuple(doc for doc in yaml.safe_load_all(text) if doc is not None)
    return Invalid(path=path, expect=tuple(expect), only=only, documents=documents)


def invalid_cases() -> list[Invalid]:
    return [load_invalid(path) for path in sorted(INVALID_DIR.glob("*.yaml"))]


def is_ours(document: Any) -> bool:
    """A custom resource of one of our kinds (policies/ also ships admission policies and the like)."""
    return (
        isinstance(document, dict)
        and str(document.get("apiVersion", "")).startswith("airlock.dev/")
        and document.get("kind") in MODELS
    )


def shipped_documents() -> list[tuple[str, dict[str, Any]]]:
    """Every airlock custom resource under policies/ and examples/, with a readable id."""
    found: list[tuple[str, dict[str, Any]]] = []
    for directory in SHIPPED_DIRS:
        for path in sorted([*directory.rglob("*.yaml"), *directory.rglob("*.yml")]):
            documents = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
            for index, document in enumerate(documents):
                if is_ours(document):
                    suffix = f"#{index}" if len(documents) > 1 else ""
                    found.append((f"{path.relative_to(ROOT)}{suffix}", document))
    return found
