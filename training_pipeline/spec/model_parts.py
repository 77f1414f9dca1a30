"""The sections of a model's declaration (``gate:``, ``tuning:``, ...), each validated on
its own; ``ModelSpec`` (spec/model_spec.py) checks the rules that span sections."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, model_validator

from training_pipeline.spec.errors import FieldError

DURATION_PATTERN = r"^(\d+)([smhdw])$"
SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def duration_seconds(text: str) -> int:
    """``30m`` -> 1800; the text must match ``DURATION_PATTERN``."""
    count, unit = re.fullmatch(DURATION_PATTERN, text).groups()
    return int(count) * SECONDS[unit]


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Columns(_Part):
    numeric: tuple[str, ...] | None = None  # None: inferred from the warehouse types
    categorical: tuple[str, ...] | None = None
    exclude: tuple[str, ...] = ()


class MetricChoice(_Part):
    primary: str | None = None  # None: the task's usual metric
    report: tuple[str, ...] | None = None  # None: every metric of the task


class Tuning(_Part):
    trials: int = 50
    seconds: float = 120.0
    threads: int | None = None  # None: every core this process may use
    seed: int = 0
    folds: int = 3
    valid_periods: int = 2
    min_rung_rows: int = 2000
    halving_factor: int = 3

    @model_validator(mode="after")
    def _bounds(self) -> Tuning:
        for field, value, least in (
            ("trials", self.trials, 1),
            ("folds", self.folds, 2),
            ("valid_periods", self.valid_periods, 1),
            ("min_rung_rows", self.min_rung_rows, 1),
            ("halving_factor", self.halving_factor, 2),
        ):
            if value < least:
                raise FieldError(field, f"{value} is too small", f"an integer >= {least}")
        if not self.seconds > 0:
            raise FieldError("seconds", f"{self.seconds} is not positive", "a number > 0")
        if self.threads is not None and self.threads < 1:
            raise FieldError("threads", f"{self.threads} is too small", "null or >= 1")
        return self


class Holdout(_Part):
    last_periods: int | None = None  # None: 2 when there is a time column
    fraction: float | None = None  # required when there is no time column
    stratify: bool = True


class Retraining(_Part):
    policy: Literal["on_drift", "on_new_data", "cron"] = "on_drift"
    cron: str = "0 2 * * *"  # checked by the component, with Dagster's cron parser
    nightly: bool = True
    # After a drift-triggered retraining, drift retrains again only once new data has
    # arrived and this long has passed (automation/drift_episodes.py).
    drift_cooldown: str = "6h"

    @model_validator(mode="after")
    def _cooldown(self) -> Retraining:
        if not re.fullmatch(DURATION_PATTERN, self.drift_cooldown):
            raise FieldError(
                "drift_cooldown",
                f"{self.drift_cooldown!r} is not a duration",
                "e.g. 0s, 30m, 6h, 1d",
            )
        return self

    @property
    def drift_cooldown_s(self) -> int:
        return duration_seconds(self.drift_cooldown)


class Freshness(_Part):
    """How old the production model's training data may get before its check fails."""

    max_training_data_age: str | None = "60d"  # None: no promise

    @model_validator(mode="after")
    def _age(self) -> Freshness:
        age = self.max_training_data_age
        if age is not None and not re.fullmatch(DURATION_PATTERN, age):
            raise FieldError(
                "max_training_data_age", f"{age!r} is not a duration", "e.g. 36h, 30d, 8w or null"
            )
        return self

    @property
    def max_age_s(self) -> int | None:
        age = self.max_training_data_age
        return None if age is None else duration_seconds(age)


class Drift(_Part):
    reference_periods: int = 4
    current_periods: int = 1
    min_rows: int = 30
    exclude: tuple[str, ...] = ()
    numeric_method: str = "wasserstein"
    categorical_method: str = "jensenshannon"
    column_threshold: float = 0.1
    warn_share: float = 0.0
    error_share: float = 0.5
    # The prediction-drift check's current window: the batch scores table, or what the
    # online server returned to clients over the last live_hours (its ingested log).
    predictions_window: Literal["scores", "live"] = "scores"
    live_hours: int = 24

    @model_validator(mode="after")
    def _shares(self) -> Drift:
        for name in ("reference_periods", "current_periods", "min_rows", "live_hours"):
            if getattr(self, name) < 1:
                raise FieldError(name, f"{getattr(self, name)}", "an integer >= 1")
        if not 0 <= self.warn_share < self.error_share <= 1:
            raise FieldError(
                "error_share",
                f"warn_share {self.warn_share} and error_share {self.error_share} are out of order",
                "0 <= warn_share < error_share <= 1",
            )
        return self


class Scores(_Part):
    table: str | None = None  # None: predictions.<name>
    score_column: str = "score"  # the probability (binary) or predicted value
    prediction_column: str = "prediction"  # binary only: score >= the chosen threshold


class Deployment(_Part):
    canary_rows: int = 200

    @model_validator(mode="after")
    def _rows(self) -> Deployment:
        if self.canary_rows < 1:
            raise FieldError("canary_rows", f"{self.canary_rows} is too small", "an integer >= 1")
        return self


class Serve(_Part):
    """The online server (``training-pipeline serve``) and this model's candidates."""

    # Serve the newest candidate that passed the gate in shadow: it gets a copy of every
    # request, its predictions are logged beside production's but never returned.
    shadow: bool = False
    # A promotion waits until the candidate has shadowed live traffic this long
    # (null: no wait).  Needs shadow: true.
    min_shadow_period: str | None = None

    @model_validator(mode="after")
    def _period(self) -> Serve:
        period = self.min_shadow_period
        if period is not None and not re.fullmatch(DURATION_PATTERN, period):
            raise FieldError("min_shadow_period", f"{period!r} is not a duration", "e.g. 6h, 2d")
        if period is not None and not self.shadow:
            raise FieldError(
                "min_shadow_period", "is set but shadow is false", "shadow: true, or no period"
            )
        return self

    @property
    def min_shadow_s(self) -> int | None:
        period = self.min_shadow_period
        return None if period is None else duration_seconds(period)
