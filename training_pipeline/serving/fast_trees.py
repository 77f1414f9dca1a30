"""Gradient boosting's trees walked for a few rows at once, all trees in step.

``HistGradientBoosting*.predict_proba`` on one row spends about a millisecond of CPU,
nearly all of it in one Python-level call per tree (``TreePredictor.predict``) and
input validation.  Here every tree's nodes sit in one array and each step moves all
(row, tree) positions one level down with a handful of numpy operations, so one row
costs a few dozen numpy calls whatever the number of trees.  The split rule is
scikit-learn's: a missing value goes where the split sent missing values at fit time,
otherwise left when ``value <= threshold``.  Categorical splits are not replayed
(``NoTreeWalk``); ``loaded.py`` compares the result with the pipeline's own anyway.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor


class NoTreeWalk(ValueError):
    """The model is not one these trees can replay (the reason says why)."""


def tree_walk(model: Any) -> Callable[[np.ndarray], np.ndarray]:
    """``model``'s positive-class probability (classifier) or value (regressor), one
    float per row of an already preprocessed float array.

    Raises:
        NoTreeWalk: Not a single-output gradient boosting model with numeric splits.
    """
    if not isinstance(model, HistGradientBoostingClassifier | HistGradientBoostingRegressor):
        raise NoTreeWalk(f"{type(model).__name__} is not gradient boosting")
    if model.n_trees_per_iteration_ != 1:
        raise NoTreeWalk(f"{model.n_trees_per_iteration_} trees per iteration (multiclass)")
    trees = [predictors[0].nodes for predictors in model._predictors]
    nodes = np.concatenate(trees)
    if nodes["is_categorical"].any():
        raise NoTreeWalk("the trees have categorical splits")
    # Node numbers are per tree; shift them to positions in the concatenated array.
    starts = np.cumsum([0] + [len(tree) for tree in trees[:-1]])
    offsets = np.repeat(starts, [len(tree) for tree in trees])
    left = nodes["left"].astype(np.int64) + offsets
    right = nodes["right"].astype(np.int64) + offsets
    is_leaf = nodes["is_leaf"].astype(bool)
    left[is_leaf] = right[is_leaf] = np.flatnonzero(is_leaf)  # a leaf stays where it is
    feature = np.where(is_leaf, 0, nodes["feature_idx"])
    threshold = nodes["num_threshold"]
    missing_left = nodes["missing_go_to_left"].astype(bool)
    value = nodes["value"]
    depth = int(nodes["depth"].max())
    roots = np.asarray(starts, dtype=np.int64)
    baseline = float(np.ravel(model._baseline_prediction)[0])
    inverse = model._loss.link.inverse  # logistic for the classifier; identity or exp

    def predict(x: np.ndarray) -> np.ndarray:
        rows = np.arange(x.shape[0])[:, None]
        at = np.broadcast_to(roots, (x.shape[0], len(roots)))
        for _ in range(depth):
            seen = x[rows, feature[at]]
            go_left = np.where(np.isnan(seen), missing_left[at], seen <= threshold[at])
            at = np.where(go_left, left[at], right[at])
        return np.asarray(inverse(baseline + value[at].sum(axis=1)), dtype=np.float64)

    return predict
