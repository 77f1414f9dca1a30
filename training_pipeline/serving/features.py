"""A model's input columns as a request must send them, and the check of a request body.

The columns and their roles come from the registered version's metadata (the
``ProblemSpec`` it was trained with, roles resolved), so the server validates exactly
what that version was fit on.  Numeric features take JSON numbers; categorical ones
strings or booleans; any feature may be null, as the training rows could be (the
fitted pipeline imputes).  Every problem is reported with the field it concerns.

A record may also carry the row's identity, which is no feature: the problem's id
column (a string or an integer) and time column (an ISO date or time), named as in the
warehouse.  They are logged with the prediction so that, once the label arrives, the
served row can be joined to it (``serving/live_labels.py``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

NUMERIC, CATEGORICAL = "numeric", "categorical"


class RequestError(ValueError):
    """A request the server refuses: ``status`` is the HTTP status, ``field`` what it
    concerns (``records[2].tenure_days``), ``""`` for the body as a whole."""

    def __init__(self, status: int, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}" if field else problem)
        self.status, self.field, self.problem = status, field, problem

    def to_dict(self) -> dict[str, str]:
        return {"error": self.problem, "field": self.field}


@dataclass(frozen=True)
class FeatureSpec:
    """The input columns in the order the pipeline was fit on, with their roles."""

    columns: tuple[tuple[str, str], ...]  # (name, NUMERIC or CATEGORICAL)
    id_column: str | None = None  # optional in a record: the entity the row is about
    time_column: str | None = None  # optional in a record: the time its features are as of

    @classmethod
    def from_problem(cls, problem: Mapping[str, Any]) -> FeatureSpec:
        """From a version's ``metadata["problem"]`` (``ProblemSpec.to_dict``).

        Raises:
            ValueError: The metadata has no resolved feature roles.
        """
        numeric, categorical = problem.get("numeric"), problem.get("categorical")
        if numeric is None or categorical is None:
            raise ValueError(
                f"problem {problem.get('name')!r}: the version's metadata lacks resolved "
                "feature roles (numeric, categorical)"
            )
        roles = [(c, NUMERIC) for c in numeric] + [(c, CATEGORICAL) for c in categorical]
        return cls(tuple(roles), problem.get("id_column"), problem.get("time_column"))

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.columns]

    def to_dict(self) -> dict[str, str]:
        return dict(self.columns)

    def features_of(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """A checked record's features alone, without its identity fields."""
        return {name: record[name] for name in self.names}

    def identity(self, record: Mapping[str, Any]) -> tuple[str | None, str | None]:
        """A checked record's entity id (as text) and as-of time (ISO, UTC without an
        offset, so the warehouse compares it with the time column whatever its session's
        time zone), None where not sent.  When the id is the time column it is both."""
        entity = None if self.id_column is None else record.get(self.id_column)
        sent = None if self.time_column is None else record.get(self.time_column)
        return (None if entity is None else str(entity)), None if sent is None else _utc(sent)

    def records(self, body: Any, max_records: int) -> tuple[Sequence[dict[str, Any]], bool]:
        """The checked records of ``body``, and whether the body was a single record (an
        object) rather than a list.

        Raises:
            RequestError: 422 naming the field for a missing, extra or wrongly typed
                one, or a body that is neither an object nor a list of objects; 413 for
                more than ``max_records`` records.
        """
        single = isinstance(body, dict)
        if single:
            records: Sequence[Any] = [body]
        elif isinstance(body, list):
            records = body
        else:
            raise RequestError(422, "", "the body must be a JSON object or a list of objects")
        if not records:
            raise RequestError(422, "", "the list of records is empty")
        if len(records) > max_records:
            raise RequestError(413, "", f"{len(records)} records; at most {max_records}")
        for index, record in enumerate(records):
            self._check(record, "" if single else f"records[{index}].")
        return records, single

    def as_frame(self, records: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
        """Checked records as the frame the pipeline was fit on: training column order,
        numbers as float64, categories as objects, a null as NaN (``None`` in an object
        column is not missing to ``SimpleImputer``).  Built column by column from
        arrays: several times faster than ``DataFrame.from_records``."""
        data = {}
        for name, role in self.columns:
            values = [np.nan if record[name] is None else record[name] for record in records]
            data[name] = np.array(values, dtype=float if role == NUMERIC else object)
        return pd.DataFrame(data, copy=False)

    def _check(self, record: Any, where: str) -> None:
        if not isinstance(record, dict):
            raise RequestError(422, where.rstrip("."), "a record must be a JSON object")
        for name, role in self.columns:
            if name not in record:
                raise RequestError(422, where + name, f"missing; a {role} feature is required")
            if not _fits(record[name], role):
                shown = type(record[name]).__name__
                wanted = "a number" if role == NUMERIC else "a string or boolean"
                raise RequestError(422, where + name, f"got {shown}; expected {wanted} or null")
        extra = sorted(set(record) - set(self.names) - {self.id_column, self.time_column})
        if extra:
            raise RequestError(422, where + extra[0], "not a feature of this model")
        self._check_identity(record, where)

    def _check_identity(self, record: Mapping[str, Any], where: str) -> None:
        if self.time_column is not None and record.get(self.time_column) is not None:
            value = record[self.time_column]
            if not (isinstance(value, str) and _is_iso_time(value)):
                raise RequestError(
                    422, where + self.time_column, "expected an ISO date or time, or null"
                )
        if self.id_column is None or self.id_column == self.time_column:
            return
        value = record.get(self.id_column)
        if value is not None and (isinstance(value, bool) or not isinstance(value, str | int)):
            shown = type(value).__name__
            raise RequestError(
                422, where + self.id_column, f"got {shown}; expected a string, an integer or null"
            )


def _utc(value: str) -> str:
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.isoformat()


def _is_iso_time(value: str) -> bool:
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _fits(value: Any, role: str) -> bool:
    if value is None:
        return True
    if role == NUMERIC:
        # bool is an int in Python but not a number in JSON; NaN/inf are not JSON at all.
        return (
            isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        )
    return isinstance(value, str | bool)
