"""Errors services raise for callers (views, CLI, the host's own code) to turn into answers."""

from __future__ import annotations


class ValidationError(ValueError):
    """Input was refused; ``errors`` maps each field to what is wrong with it, in plain words."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        self.errors = errors
        fields = ", ".join(sorted(errors))
        super().__init__(f"invalid input: {fields}")
