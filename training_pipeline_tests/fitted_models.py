"""Tiny fitted churn pipelines for the registry, deployment and CLI tests.

Real scikit-learn pipelines (imputation, one-hot encoding, scaling, then one of the three
model families) fitted on a few hundred synthetic rows, so every test exercises the
types a production artifact contains.  Fitting is cached; tests that break a model get
their own copy.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler
from synthetic_churn import churn_snapshots

from training_pipeline.ml.registry import ModelRegistry, ModelVersion
from training_pipeline_tests.churn_model import CHURN

FAMILIES = ("logistic_regression", "hist_gradient_boosting", "random_forest")
ESTIMATORS = {
    "logistic_regression": lambda: LogisticRegression(max_iter=500),
    "hist_gradient_boosting": lambda: HistGradientBoostingClassifier(max_iter=15, random_state=0),
    "random_forest": lambda: RandomForestClassifier(n_estimators=8, random_state=0),
}


@functools.cache
def training_rows() -> pd.DataFrame:
    frame = churn_snapshots(n_customers=80, n_snapshots=4, seed=0)
    categorical = list(CHURN.categorical)
    frame[categorical] = frame[categorical].astype(object).where(frame[categorical].notna(), np.nan)
    return frame


def canary_rows(n: int = 25) -> pd.DataFrame:
    """Unlabelled feature rows the models never saw, as a deployment would score them."""
    frame = churn_snapshots(n_customers=n, n_snapshots=1, seed=7)
    return frame[list(CHURN.features)]


def preprocessor() -> ColumnTransformer:
    numeric = make_pipeline(SimpleImputer(strategy="median"), StandardScaler())
    categorical = make_pipeline(
        SimpleImputer(strategy="constant", fill_value="missing"),
        OneHotEncoder(handle_unknown="ignore"),
    )
    return ColumnTransformer(
        [
            ("numeric", numeric, list(CHURN.numeric)),
            ("categorical", categorical, list(CHURN.categorical)),
        ]
    )


@functools.cache
def _fitted(family: str) -> Pipeline:
    frame = training_rows()
    pipeline = Pipeline([("preprocess", preprocessor()), ("model", ESTIMATORS[family]())])
    return pipeline.fit(frame[list(CHURN.features)], frame[CHURN.label])


def fitted(family: str = "logistic_regression") -> Pipeline:
    """A fitted pipeline of ``family`` (a fresh copy: callers may change it)."""
    return copy.deepcopy(_fitted(family))


def broken(kind: str) -> Pipeline:
    """A fitted logistic regression whose weights were lost: ``"nan"`` or ``"constant"``.

    ``"nan"`` predicts NaN for every row; ``"constant"`` the same probability for all.
    Both are made of allowlisted types, so they register, promote and load fine.
    """
    pipeline = fitted("logistic_regression")
    model = pipeline.named_steps["model"]
    model.coef_[:] = np.nan if kind == "nan" else 0.0
    return pipeline


def passthrough(frame: Any) -> Any:
    """A function from outside the allowlist, for pipelines that must be refused."""
    return frame


def with_untrusted_step() -> Pipeline:
    pipeline = fitted("logistic_regression")
    pipeline.steps.insert(0, ("untrusted", FunctionTransformer(passthrough)))
    return pipeline


def register(
    registry: ModelRegistry, model: Pipeline, family: str = "logistic_regression", **overrides: Any
) -> ModelVersion:
    """Register ``model`` with plausible metadata; ``overrides`` replace any of it."""
    arguments: dict[str, Any] = {
        "family": family,
        "params": {"C": 1.0},
        "metrics": {"roc_auc": 0.8123, "pr_auc": 0.4567},
        "problem": CHURN,
        "data_fingerprint": "sha256:feedface",
        "trained_on": ["orders_2025-01-06.csv", "orders_2025-01-07.csv"],
    }
    return registry.register(model, **(arguments | overrides))


def flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
