"""The model families we tune: preprocessing + estimator, and each family's search space.

Preprocessing lives inside the pipeline so the exact same imputation and encoding run
at training and at scoring time, including for nulls and categories never seen in
training.  Every estimator gets a fixed ``random_state`` so a tuning run can be
repeated exactly.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import optuna
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from training_pipeline.ml.metrics import BINARY
from training_pipeline.ml.problem import ProblemSpec
from training_pipeline.ml.tasks import TASKS

RANDOM_STATE = 0
# Every family some task can use.
FAMILIES = tuple(dict.fromkeys(f for task in TASKS.values() for f in task.families))
# Trial parameter names are prefixed per family: Optuna keeps one distribution per name.
# From this many training rows on, the search space grows (see ``suggest_params``).
LARGE_ROWS = 50_000
_PREFIX = {
    "hist_gradient_boosting": "hgb",
    "logistic_regression": "lr",
    "ridge": "ridge",
    "random_forest": "rf",
}
_LINEAR = ("logistic_regression", "ridge")


def as_float(frame: pd.DataFrame) -> pd.DataFrame:
    """Numeric columns as float64 with NaN, so nullable (pd.NA) dtypes impute like NaN."""
    return pd.DataFrame(frame).astype("float64")


def as_object_with_nan(frame: pd.DataFrame) -> pd.DataFrame:
    """Categorical columns as object with NaN for every kind of null.

    ``SimpleImputer`` misses ``None`` in object columns and fails on ``pd.NA`` in string
    columns; the warehouse may hand us either.
    """
    frame = pd.DataFrame(frame).astype(object)
    return frame.where(frame.notna(), np.nan)


def check_family(family: str, task: str | None = None) -> None:
    """Raise a ValueError naming the allowed families when ``family`` is not one of them
    (of ``task``'s, when given)."""
    allowed = FAMILIES if task is None else TASKS[task].families
    if family not in allowed:
        scope = "" if task is None else f"{task} "
        raise ValueError(f"unknown {scope}model family {family!r}; expected one of {allowed}")


def build_preprocessor(family: str, spec: ProblemSpec) -> ColumnTransformer:
    """Impute and encode the spec's features; scale only for the linear model.

    Args:
        family: One of ``FAMILIES``.
        spec: The problem (its feature roles).

    Returns:
        An unfitted, dense-output ``ColumnTransformer``.
    """
    check_family(family)
    numeric_steps: list[tuple[str, Any]] = [
        ("as_float", FunctionTransformer(as_float, feature_names_out="one-to-one")),
        ("impute", SimpleImputer(strategy="median", add_indicator=True)),
    ]
    if family in _LINEAR:
        numeric_steps.append(("scale", StandardScaler()))
    categorical = Pipeline(
        [
            ("as_object", FunctionTransformer(as_object_with_nan, feature_names_out="one-to-one")),
            ("impute", SimpleImputer(strategy="constant", fill_value="missing")),
            ("one_hot", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
        ]
    )
    return ColumnTransformer(
        [
            ("numeric", Pipeline(numeric_steps), list(spec.numeric)),
            ("categorical", categorical, list(spec.categorical)),
        ],
        remainder="drop",
        sparse_threshold=0.0,
    )


def build_estimator(
    family: str, params: dict[str, Any], n_threads: int = 1, task: str = BINARY
) -> Any:
    """The classifier or regressor for ``family`` with ``params`` and a fixed seed.

    ``n_threads`` becomes the random forest's ``n_jobs``; gradient boosting and the
    linear models use OpenMP/BLAS threads, which the caller caps with ``threadpool_limits``.
    """
    check_family(family, task)
    classify = TASKS[task].is_classification
    if family == "hist_gradient_boosting":
        defaults = {"early_stopping": False, "random_state": RANDOM_STATE}
        hgb = HistGradientBoostingClassifier if classify else HistGradientBoostingRegressor
        return hgb(**(defaults | params))
    if family == "logistic_regression":
        return LogisticRegression(max_iter=2000, random_state=RANDOM_STATE, **params)
    if family == "ridge":
        return Ridge(random_state=RANDOM_STATE, **params)
    # Each tree sees half the rows: about twice as fast, and little worse on the demo data.
    forest = RandomForestClassifier if classify else RandomForestRegressor
    return forest(max_samples=0.5, n_jobs=n_threads, random_state=RANDOM_STATE, **params)


def build_pipeline(
    family: str, params: dict[str, Any], spec: ProblemSpec, n_threads: int = 1
) -> Pipeline:
    """Preprocessing plus estimator, ready to ``fit`` on ``frame[list(spec.features)]``.

    Args:
        family: One of ``FAMILIES``.
        params: Estimator keyword arguments, as returned by ``suggest_params``.
        spec: The problem: its feature roles and task.
        n_threads: Worker count for estimators that take ``n_jobs``.

    Returns:
        An unfitted ``Pipeline`` with steps ``preprocess`` and ``model``.

    Raises:
        ValueError: A family unknown, or not of the spec's task.
    """
    return Pipeline(
        [
            ("preprocess", build_preprocessor(family, spec)),
            ("model", build_estimator(family, params, n_threads, spec.task)),
        ]
    )


def suggest_params(trial: optuna.Trial, family: str, n_rows: int) -> dict[str, Any]:
    """Sample estimator keyword arguments for ``family`` from a space sized to the data.

    Up to ~20k rows the ranges keep the slowest trial (3 folds, one thread) under about
    10 seconds.  From ``LARGE_ROWS`` rows on, gradient boosting may grow more trees but
    stops once 10 rounds bring no gain on a seeded 10% of its rows (a fixed forest size
    would either underfit there or spend minutes on rounds that add nothing), and its
    leaves may hold more rows, since a leaf of 200 rows is noise-sized at 300k.

    Args:
        trial: The Optuna trial to sample from.
        family: One of ``FAMILIES``.
        n_rows: Training rows the search is for.

    Returns:
        Keyword arguments for the family's estimator, keys sorted.
    """
    check_family(family)
    p = _PREFIX[family]
    if family == "hist_gradient_boosting":
        large = n_rows >= LARGE_ROWS
        params = {
            "learning_rate": trial.suggest_float(f"{p}_learning_rate", 0.02, 0.3, log=True),
            "max_iter": trial.suggest_int(f"{p}_max_iter", 50, 500 if large else 300, step=50),
            "max_leaf_nodes": trial.suggest_int(f"{p}_max_leaf_nodes", 8, 64, log=True),
            "min_samples_leaf": trial.suggest_int(
                f"{p}_min_samples_leaf", 10, max(200, n_rows // 500), log=True
            ),
            "l2_regularization": trial.suggest_float(f"{p}_l2_regularization", 1e-3, 10, log=True),
        }
        if large:
            params |= {"early_stopping": True, "n_iter_no_change": 10, "validation_fraction": 0.1}
    elif family == "logistic_regression":
        params = {"C": trial.suggest_float(f"{p}_C", 1e-3, 10.0, log=True)}
    elif family == "ridge":
        params = {"alpha": trial.suggest_float(f"{p}_alpha", 1e-3, 100.0, log=True)}
    else:
        params = {
            "n_estimators": trial.suggest_int(f"{p}_n_estimators", 50, 150, step=50),
            "max_depth": trial.suggest_int(f"{p}_max_depth", 4, 12),
            "min_samples_leaf": trial.suggest_int(f"{p}_min_samples_leaf", 5, 100, log=True),
            "max_features": trial.suggest_float(f"{p}_max_features", 0.1, 0.5),
        }
    return dict(sorted(params.items()))
