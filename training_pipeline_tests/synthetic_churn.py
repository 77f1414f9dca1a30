"""Small synthetic churn snapshots shaped like ``CHURN``, with a planted signal.

Churn risk rises with recency and support tickets, so a working model scores well
above chance and a model trained on shuffled labels does not.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from training_pipeline_tests.churn_model import CHURN

COUNTRIES = ("US", "DE", "GB", "FR")
SEGMENTS = ("consumer", "smb", "enterprise")


def churn_snapshots(n_customers: int = 300, n_snapshots: int = 20, seed: int = 0) -> pd.DataFrame:
    """One row per customer per weekly snapshot, with exactly ``CHURN.columns``.

    Args:
        n_customers: Customers per snapshot.
        n_snapshots: Weekly snapshot dates, starting 2025-01-06.
        seed: Random seed.

    Returns:
        Labelled rows; some numeric and categorical values are null.
    """
    rng = np.random.default_rng(seed)
    n = n_customers * n_snapshots
    customer = np.tile(np.arange(n_customers), n_snapshots)
    dates = pd.date_range("2025-01-06", periods=n_snapshots, freq="7D")
    risk = rng.normal(0, 1, n_customers)[customer]
    recency = rng.exponential(10 * np.exp(0.6 * risk))
    tickets = rng.poisson(np.exp(0.6 * risk))
    low = rng.binomial(tickets, 0.3)
    orders_90d = rng.poisson(np.exp(1.5 - 0.4 * risk))
    spend_90d = orders_90d * rng.lognormal(3.5, 0.4, n)
    logit = -2.2 + 0.05 * recency + 0.5 * tickets + 0.4 * low - 0.15 * orders_90d
    frame = pd.DataFrame(
        {
            "customer_id": customer,
            "snapshot_date": np.repeat(dates.values, n_customers),
            "recency_days": recency.round(),
            "orders_30d": rng.binomial(orders_90d, 1 / 3).astype(float),
            "orders_90d": orders_90d.astype(float),
            "spend_30d": (spend_90d / 3).round(2),
            "spend_90d": spend_90d.round(2),
            "avg_order_value": rng.lognormal(3.5, 0.3, n).round(2),
            "tenure_days": rng.integers(30, 900, n).astype(float),
            "tickets_90d": tickets.astype(float),
            "low_satisfaction_tickets_90d": low.astype(float),
            "mean_satisfaction_90d": np.where(tickets > 0, rng.uniform(1, 5, n).round(1), np.nan),
            "open_tickets": rng.binomial(tickets, 0.2).astype(float),
            "age": np.where(rng.random(n) < 0.1, np.nan, rng.integers(18, 80, n)),
            "country_code": rng.choice(COUNTRIES, n).astype(object),
            "segment": rng.choice(SEGMENTS, n).astype(object),
            "churned": (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int),
        }
    )
    frame.loc[rng.random(n) < 0.05, "country_code"] = None
    return frame[list(CHURN.columns)]
