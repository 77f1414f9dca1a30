"""A problem with one field of a declaration, raised by the pure specs and the components.

The loader (``components/errors.py``) adds the file and instance; a spec only knows the
field, what is wrong with it and what would be allowed.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldProblem:
    field: str  # dotted path inside `attributes`, "attributes" for the whole declaration
    problem: str
    allowed: str | None = None

    def __str__(self) -> str:
        allowed = f"; allowed: {self.allowed}" if self.allowed else ""
        return f"field {self.field}: {self.problem}{allowed}"


class FieldError(ValueError):
    """Raised by a component about one of its fields; the loader adds where it is declared."""

    def __init__(self, field: str, problem: str, allowed: str | None = None) -> None:
        self.problem = FieldProblem(field, problem, allowed)
        super().__init__(str(self.problem))
