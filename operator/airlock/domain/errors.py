"""Domain errors: each one names the field a human has to fix."""

from __future__ import annotations


class SpecError(ValueError):
    """The spec (possibly merged with its policy) cannot be executed as written."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
