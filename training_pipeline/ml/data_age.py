"""How old a production model's training data is: the promise ``freshness`` declares.

Age is measured on the data's own clock: from the newest time value the model was
trained on to the newest one the features hold now.  A model trained up to March 1st
whose features reach April 20th is 50 days behind, whatever today's date (replayed or
synthetic data keeps its meaning); new data that never becomes a new model makes the
age grow until the check fails.  Without a time column there is no data clock, and age
is the wall-clock time since the model's training set was registered.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime


@dataclass(frozen=True)
class DataAge:
    trained_through: str  # the newest training time value (or registration time)
    newest: str  # the newest time value available now (or now)
    age_s: float
    limit_s: float | None  # None: no promise

    @property
    def kept(self) -> bool:
        return self.limit_s is None or self.age_s <= self.limit_s

    @property
    def age_days(self) -> float:
        return self.age_s / 86400


def _instant(text: str) -> datetime:
    import pandas as pd  # its parser reads every form the warehouse writes; loaded late

    moment = pd.Timestamp(text).to_pydatetime()
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def data_age(trained_through: str, newest: str, limit_s: float | None) -> DataAge:
    """The age of data trained through ``trained_through`` when ``newest`` is available.

    Raises:
        ValueError: a value that is not a date or time, named.
    """
    try:
        age = (_instant(newest) - _instant(trained_through)).total_seconds()
    except ValueError as error:
        raise ValueError(
            f"cannot compare training data through {trained_through!r} with the newest "
            f"data {newest!r}: {error}"
        ) from None
    return DataAge(trained_through, newest, max(age, 0.0), limit_s)
