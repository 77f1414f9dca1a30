"""The churn demo's problem, the one model the graph trains until models come from YAML.

The features are computed in the warehouse by the dbt model
``features.customer_snapshots`` (one row per customer per weekly snapshot date); a test
checks that model's columns against this spec, so the two cannot drift apart.

Drift: ``tenure_days`` is not monitored.  Tenure grows by one day per day for every
customer who stays, so on the default demo world its distance to the training reference
rises by about 0.0013 a day and crosses the threshold after ~40 normal days without a
new training set, while every other feature stays under 0.075 over 60 normal days.
Against the last four snapshots a normal day drifts 0 of 13 columns, a ``--drift`` day
9 of 13 (see ``training_pipeline/demo/drift_day.py``).
"""

from datetime import timedelta

from training_pipeline.ml.problem import DriftSettings, GatePolicy, ProblemSpec, ScoreColumns

CHURN = ProblemSpec(
    name="churn",
    description=(
        "Scores active customers (an order in the 90 days before the snapshot) with the "
        "probability that they place no order in the 30 days after the snapshot, so "
        "retention work can be aimed at the likeliest churners."
    ),
    label_description=(
        "true when the customer placed no order in the 30 days after the snapshot; a "
        "customer who is merely slow to reorder looks like a churner, so the label is a "
        "proxy, not a cancellation."
    ),
    relation="features.customer_snapshots",
    id_column="customer_id",
    time_column="snapshot_date",
    label="churned",
    task="binary",
    label_horizon=timedelta(days=30),
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
    primary_metric="roc_auc",
    report_metrics=("roc_auc", "pr_auc", "log_loss", "brier", "f1"),
    families=("hist_gradient_boosting", "logistic_regression", "random_forest"),
    # The floor and tolerance are overridden per deployment by the gate's run config.
    gate=GatePolicy(metric="roc_auc", floor=0.75, tolerance=0.01),
    drift=DriftSettings(reference_periods=4, exclude=("tenure_days",), error_share=0.5),
    # The scores table keeps the column names it had before problems were generic.
    scores=ScoreColumns(score="churn_probability", prediction="predicted_churn"),
)
