"""A problem with one field of a declaration, raised by pure validation code.

It lives here, free of Dagster, so that the pure specs can raise it from their
validators; the component loader adds the file and the instance it was declared in.
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
    """Raised about one field; whoever loads the declaration adds where it is declared."""

    def __init__(self, field: str, problem: str, allowed: str | None = None) -> None:
        self.problem = FieldProblem(field, problem, allowed)
        super().__init__(str(self.problem))
