"""The one declaration of what the model sees: used by training, validation and scoring.

The features themselves are computed in the warehouse by the dbt model
``features.customer_snapshots`` (one row per customer per weekly snapshot date); this
module names its columns, says which are numeric and which categorical, and which
column is the label, the id and the time.  A test checks the dbt model's columns
against this spec, so the two cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FeatureSpec:
    id_column: str
    time_column: str
    label: str
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    # Days after a snapshot the label looks at; a snapshot is labelled only once that
    # whole window lies inside the data.
    label_window_days: int

    @property
    def features(self) -> tuple[str, ...]:
        return self.numeric + self.categorical

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.id_column, self.time_column, *self.features, self.label)


CHURN = FeatureSpec(
    id_column="customer_id",
    time_column="snapshot_date",
    label="churned",
    numeric=(
        "recency_days",  # days since the last order before the snapshot
        "orders_30d",
        "orders_90d",
        "spend_30d",
        "spend_90d",
        "avg_order_value",  # over every order before the snapshot
        "tenure_days",  # days since signup
        "tickets_90d",  # tickets opened in the 90 days before the snapshot
        "low_satisfaction_tickets_90d",  # of those, rated 1 or 2 by the snapshot
        "mean_satisfaction_90d",  # mean rating known at the snapshot; null if none
        "open_tickets",  # tickets open at the snapshot
        "age",
    ),
    categorical=("country_code", "segment"),
    label_window_days=30,
)
