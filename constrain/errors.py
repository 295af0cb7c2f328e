"""Errors raised for bad constraints. Each names the place: regex position, grammar line and column,
or schema JSON pointer, so users can fix their input without reading our code."""

from __future__ import annotations


class ConstraintError(ValueError):
    """A constraint that cannot be compiled (bad syntax, unsupported construct, empty language, limit hit)."""


class RegexError(ConstraintError):
    """A regular expression we cannot compile; ``position`` is the 0-based offset in the pattern, if known."""

    def __init__(self, message: str, pattern: str = "", position: int | None = None) -> None:
        where = f" at position {position}" if position is not None else ""
        shown = f" in {pattern!r}" if pattern else ""
        super().__init__(f"{message}{where}{shown}")
        self.pattern = pattern
        self.position = position


class GrammarError(ConstraintError):
    """A grammar we cannot compile; ``line``/``column`` are 1-based when known."""

    def __init__(self, message: str, line: int | None = None, column: int | None = None) -> None:
        where = f" (line {line}, column {column})" if line is not None else ""
        super().__init__(f"{message}{where}")
        self.line = line
        self.column = column


class SchemaError(ConstraintError):
    """A JSON Schema we cannot enforce; ``pointer`` is the JSON pointer of the offending keyword."""

    def __init__(self, message: str, pointer: str = "") -> None:
        super().__init__(f"{message} at {pointer or '#'}")
        self.pointer = pointer


class LimitError(ConstraintError):
    """A compile-time or run-time resource limit (states, memory) was reached."""
