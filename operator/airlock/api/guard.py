"""The configuration of ``airlock guard`` (SPEC §9): which detector does what.

One shape, two places: the ``--config`` file of a guard process and the optional
``spec.guard`` section of its AISystem.  Both are a map from a detector's name to
its mode.  Both enums are closed (SPEC §9 names are binding): an unknown detector
or mode is refused when the guard starts, naming the field, never ignored.

When both places set a detector, the stricter mode wins (``block`` over ``redact``
over ``observe``): neither the platform's file nor the system owner's spec can
weaken what the other asked for.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from pydantic import Field, ValidationError

from airlock.api.common import Model


class Detector(StrEnum):
    """What the guard looks for (SPEC §9, binding names)."""

    PII = "pii"
    CROSS_CUSTOMER = "cross-customer"
    PROMPT_INJECTION = "prompt-injection"
    CANARY = "canary"
    REFUSAL = "refusal"


class Mode(StrEnum):
    """What the guard does with a finding (SPEC §9, binding): default observe."""

    OBSERVE = "observe"
    REDACT = "redact"
    BLOCK = "block"

    @property
    def rank(self) -> int:
        """0 observe, 1 redact, 2 block: higher is stricter."""
        return _MODE_RANK[self]


_MODE_RANK = {Mode.OBSERVE: 0, Mode.REDACT: 1, Mode.BLOCK: 2}


class GuardSpec(Model):
    """Per-detector modes of the guard in front of this system (``airlock guard``)."""

    detectors: dict[Detector, Mode] = Field(
        default_factory=dict,
        max_length=len(Detector),
        description=(
            "Mode per detector (pii, cross-customer, prompt-injection, canary, refusal): observe (count only; "
            "the default), redact (replace each finding with [REDACTED:<kind>]) or block (answer with an "
            "airlock_blocked error instead of the text). The stricter of this and the guard's --config file wins."
        ),
    )


class GuardConfigError(ValueError):
    """A guard configuration that names an unknown detector, mode or field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def parse(data: Any, *, where: str = "") -> GuardSpec:
    """Validate a configuration mapping; :class:`GuardConfigError` names the first bad field.

    ``where`` prefixes the field (``guard.yaml: detectors.pii``).
    """
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise GuardConfigError(where or "config", f"must be a mapping, got {type(data).__name__}")
    try:
        return GuardSpec.model_validate(dict(data))
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = [str(part) for part in error["loc"] if part != "[key]"]
        field = ".".join(loc) or "config"
        if where:
            field = f"{where}: {field}"
        if len(loc) == 2 and loc[0] == "detectors" and error["loc"][-1] == "[key]":
            message = f"unknown detector {loc[1]!r}; expected one of {', '.join(d.value for d in Detector)}"
        elif len(loc) == 2 and loc[0] == "detectors":
            message = f"unknown mode {error.get('input')!r}; expected one of {', '.join(m.value for m in Mode)}"
        elif error["type"] == "extra_forbidden":
            message = "unknown field; expected detectors"
        else:
            message = str(error["msg"])
        raise GuardConfigError(field, message) from None


def stricter(*specs: GuardSpec | None) -> dict[Detector, Mode]:
    """Every detector's mode: the strictest any of ``specs`` sets, else observe."""
    modes = dict.fromkeys(Detector, Mode.OBSERVE)
    for spec in specs:
        if spec is None:
            continue
        for detector, mode in spec.detectors.items():
            if mode.rank > modes[detector].rank:
                modes[detector] = mode
    return modes
