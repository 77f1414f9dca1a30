"""A small synthetic regression problem with a time column, and its ``ProblemSpec``.

Sales per store and week rise with footfall and promotions and depend on the region,
so a working model beats predicting the mean by far.  Nothing in it is about churn:
it proves the ML core is generic.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from training_pipeline.ml.problem import GatePolicy, Holdout, ProblemSpec

REGIONS = ("north", "south", "east", "west")

SALES = ProblemSpec(
    name="store_sales",
    description="Predicts next week's sales of each store, to plan stock.",
    label_description="the store's sales in the week after the snapshot, in euros.",
    relation="features.store_weeks",
    id_column="store_id",
    time_column="week",
    label="sales",
    task="regression",
    holdout=Holdout(last_periods=2),
    gate=GatePolicy("rmse", ceiling=40.0, tolerance=1.0),
)


def store_weeks(n_stores: int = 150, n_weeks: int = 16, seed: int = 0) -> pd.DataFrame:
    """One row per store per week; roles are left to inference (numbers, strings, a date).

    ``opened`` is a date column: inference must exclude it rather than use it.
    """
    rng = np.random.default_rng(seed)
    n = n_stores * n_weeks
    store = np.tile(np.arange(n_stores), n_weeks)
    weeks = pd.date_range("2025-01-06", periods=n_weeks, freq="7D")
    size = rng.lognormal(0, 0.3, n_stores)[store]
    footfall = rng.poisson(200 * size).astype(float)
    promo = rng.integers(0, 3, n).astype(float)
    region = rng.choice(REGIONS, n_stores)[store].astype(object)
    region_effect = pd.Series(region).map({"north": 0, "south": 40, "east": -20, "west": 10})
    sales = 2.0 * footfall + 60 * promo + region_effect.to_numpy() + rng.normal(0, 25, n)
    frame = pd.DataFrame(
        {
            "store_id": store,
            "week": np.repeat(weeks.values, n_stores),
            "footfall": footfall,
            "promotions": promo,
            "temperature": np.where(rng.random(n) < 0.05, np.nan, rng.normal(12, 6, n)),
            "region": region,
            "opened": pd.Timestamp("2020-01-01") + pd.to_timedelta(store, unit="D"),
            "sales": sales.round(2),
        }
    )
    return frame
