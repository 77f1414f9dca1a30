"""When the pipeline retrains, and how often its sensors look: typed, from the environment.

`TRAINING_PIPELINE_RETRAIN_POLICY`:
- ``on_drift`` (default): a drift check at ERROR on the newest features triggers
  retraining; new data alone refreshes features and scores but keeps the model.
- ``on_new_data``: every refresh of the features retrains.
- ``cron``: retrain on `TRAINING_PIPELINE_RETRAIN_CRON` only.
Whatever the policy, the nightly schedule (`TRAINING_PIPELINE_NIGHTLY_RETRAIN`, ``on`` by
default, at `TRAINING_PIPELINE_RETRAIN_CRON`, default 02:00 UTC) retrains too, and every
retraining goes through the gate.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from training_pipeline.environment import PREFIX, read

Mode = Literal["on_drift", "on_new_data", "cron"]
MODES: tuple[Mode, ...] = ("on_drift", "on_new_data", "cron")


@dataclass(frozen=True)
class RetrainingPolicy:
    mode: Mode = "on_drift"
    cron: str = "0 2 * * *"
    nightly: bool = True
    sensor_interval_s: int = 30
    drift_share_error: float = 0.5

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(
                f"TRAINING_PIPELINE_RETRAIN_POLICY={self.mode!r}: expected one of {MODES}"
            )
        # Imported here: settings.py imports this module, and whatever reads the settings
        # alone (dbt-parse, the test runner) need not import all of Dagster for it.
        from dagster._utils.schedules import is_valid_cron_string

        if not is_valid_cron_string(self.cron):
            raise ValueError(f"TRAINING_PIPELINE_RETRAIN_CRON={self.cron!r} is not a cron string")
        if self.sensor_interval_s < 1:
            raise ValueError(
                f"TRAINING_PIPELINE_SENSOR_INTERVAL_S={self.sensor_interval_s}: must be ≥ 1"
            )
        if not 0 < self.drift_share_error <= 1:
            raise ValueError(
                f"TRAINING_PIPELINE_DRIFT_SHARE_ERROR={self.drift_share_error}: must be in (0, 1]"
            )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> RetrainingPolicy:
        return cls(
            mode=read(PREFIX + "RETRAIN_POLICY", env),
            cron=read(PREFIX + "RETRAIN_CRON", env),
            nightly=read(PREFIX + "NIGHTLY_RETRAIN", env) == "on",
            sensor_interval_s=read(PREFIX + "SENSOR_INTERVAL_S", env),
            drift_share_error=read(PREFIX + "DRIFT_SHARE_ERROR", env),
        )
