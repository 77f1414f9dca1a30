"""A version's fitted pipeline replayed on numpy rows: the per-request fast path.

``Pipeline.predict_proba`` on one record costs 5-6 ms of CPU, nearly all of it
overhead around a few dozen floating-point operations: the DataFrame a request must be
turned into, the ``ColumnTransformer``'s column selection and ``hstack``, and every
step's input validation.  ``compile_fast_path`` reads the fitted parameters (medians,
missing indicators, scaling, one-hot categories, linear coefficients) out of the
pipeline once, when a version is loaded, and ``FastPath.output`` applies them to the
request's records as numpy arrays.  Only steps it knows are compiled; anything else
raises ``NoFastPath`` naming the step.  Whether the result agrees with the pipeline is
not assumed: ``loaded.py`` checks it on the version's training rows before serving it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import expit
from sklearn import config_context
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from training_pipeline.ml.pipelines import as_float, as_object_with_nan
from training_pipeline.serving.fast_trees import NoTreeWalk, tree_walk

Step = Callable[[np.ndarray], np.ndarray]


class NoFastPath(ValueError):
    """The pipeline holds something the fast path cannot replay (the reason says what)."""


@dataclass(frozen=True)
class Block:
    """One of the column transformer's transformers: its input columns and its steps."""

    columns: tuple[str, ...]
    numeric: bool  # the request's values as float64 (None -> NaN), else as objects
    steps: tuple[Step, ...]

    def transform(self, records: Sequence[Mapping[str, Any]]) -> np.ndarray:
        if self.numeric:  # None becomes NaN
            rows = [[record[name] for name in self.columns] for record in records]
            x = np.array(rows, dtype=np.float64)
        else:  # a null category is NaN, as in the server's frame (features.as_frame)
            rows = [[_nan_if_none(record[name]) for name in self.columns] for record in records]
            x = np.array(rows, dtype=object)
        for step in self.steps:
            x = step(x)
        return x


@dataclass(frozen=True)
class FastPath:
    """The preprocessing blocks, in output order, and the estimator's last step."""

    blocks: tuple[Block, ...]
    estimate: Step  # transformed rows -> one float per row
    how: str  # how the estimator's step is done, for the path's description

    def transform(self, records: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """The rows the estimator sees (the column transformer's output)."""
        return np.hstack([block.transform(records) for block in self.blocks])

    def output(self, records: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """What ``task.output(pipeline, frame)`` says about ``records``: one float each."""
        return self.estimate(self.transform(records))


def _nan_if_none(value: Any) -> Any:
    return np.nan if value is None else value


def compile_fast_path(pipeline: Any, is_classification: bool, numeric: Collection[str]) -> FastPath:
    """The fast path of a fitted ``preprocess`` + ``model`` pipeline (``ml/pipelines.py``)
    whose ``numeric`` input columns arrive as float64, the others as objects.

    Raises:
        NoFastPath: Naming the part of the pipeline it cannot replay.
    """
    if not isinstance(pipeline, Pipeline) or len(pipeline.steps) != 2:
        raise NoFastPath(f"not a two-step preprocess + model pipeline: {pipeline!r:.200}")
    preprocess, model = pipeline.steps[0][1], pipeline.steps[1][1]
    if not isinstance(preprocess, ColumnTransformer) or preprocess.sparse_output_:
        raise NoFastPath(f"preprocessing is not a dense ColumnTransformer: {preprocess!r:.200}")
    blocks = []
    for name, transformer, columns in preprocess.transformers_:
        if transformer == "drop" or len(columns) == 0:
            continue
        if not all(isinstance(column, str) for column in columns):
            raise NoFastPath(f"transformer {name!r} selects columns by position, not by name")
        roles = {column in numeric for column in columns}
        if len(roles) != 1:
            raise NoFastPath(f"transformer {name!r} mixes numeric and categorical columns")
        blocks.append(_block(name, transformer, tuple(columns), roles.pop()))
    if not blocks:
        raise NoFastPath("the column transformer selects no columns")
    return FastPath(tuple(blocks), *_estimator(model, is_classification))


def _block(name: str, transformer: Any, columns: tuple[str, ...], numeric: bool) -> Block:
    steps = transformer.steps if isinstance(transformer, Pipeline) else [(name, transformer)]
    first = steps[0][1]
    # The request's values already have the dtypes these functions give (Block.transform).
    if isinstance(first, FunctionTransformer) and first.func is (
        as_float if numeric else as_object_with_nan
    ):
        steps = steps[1:]
    compiled = [_step(f"{name}.{step}", fitted) for step, fitted in steps]
    return Block(columns, numeric, tuple(compiled))


def _step(where: str, fitted: Any) -> Step:
    if isinstance(fitted, SimpleImputer):
        return _imputer(where, fitted)
    if isinstance(fitted, StandardScaler):
        mean = fitted.mean_ if fitted.with_mean else None
        scale = fitted.scale_ if fitted.with_std else None
        return lambda x: _scaled(x, mean, scale)
    if isinstance(fitted, OneHotEncoder):
        return _one_hot(where, fitted)
    raise NoFastPath(f"step {where} ({type(fitted).__name__}) has no fast path")


def _imputer(where: str, imputer: SimpleImputer) -> Step:
    missing = imputer.missing_values
    if not (isinstance(missing, float) and np.isnan(missing)):
        raise NoFastPath(f"step {where}: missing values are {missing!r}, not NaN")
    statistics = imputer.statistics_
    if imputer.strategy == "constant" or imputer.keep_empty_features:
        kept = np.arange(len(statistics))
    else:  # scikit-learn drops the columns that were all missing at fit time
        kept = np.flatnonzero(~np.isnan(statistics.astype(np.float64)))
    fill = statistics[kept]
    indicated = None if imputer.indicator_ is None else imputer.indicator_.features_

    def impute(x: np.ndarray) -> np.ndarray:
        is_missing = x != x  # NaN, for floats and objects alike
        filled = np.where(is_missing[:, kept], fill, x[:, kept])
        if indicated is None:
            return filled
        return np.hstack([filled, is_missing[:, indicated]])

    return impute


def _scaled(x: np.ndarray, mean: np.ndarray | None, scale: np.ndarray | None) -> np.ndarray:
    x = x.astype(np.float64)
    if mean is not None:
        x = x - mean
    if scale is not None:
        x = x / scale
    return x


def _one_hot(where: str, encoder: OneHotEncoder) -> Step:
    if encoder.handle_unknown != "ignore" or encoder.drop_idx_ is not None:
        raise NoFastPath(f"step {where}: only handle_unknown='ignore' without drop is replayed")
    if encoder._infrequent_enabled:
        raise NoFastPath(f"step {where}: infrequent categories are not replayed")
    offsets = np.cumsum([0] + [len(c) for c in encoder.categories_])
    # Category -> output column; a dict, like scikit-learn's own lookup (same hashing).
    positions = [
        {category: int(offsets[i]) + j for j, category in enumerate(categories)}
        for i, categories in enumerate(encoder.categories_)
    ]
    width = int(offsets[-1])

    def encode(x: np.ndarray) -> np.ndarray:
        out = np.zeros((x.shape[0], width))
        for row, values in enumerate(x):
            for column, value in enumerate(values):
                position = positions[column].get(value)
                if position is not None:  # an unseen category is all zeros
                    out[row, position] = 1.0
        return out

    return encode


def _estimator(model: Any, is_classification: bool) -> tuple[Step, str]:
    if isinstance(model, LogisticRegression) and is_classification:
        if len(model.classes_) != 2:
            raise NoFastPath(f"logistic regression with {len(model.classes_)} classes")
        coef, intercept = model.coef_[0], float(model.intercept_[0])
        return (lambda x: expit(x @ coef + intercept)), "linear model as a dot product"
    if isinstance(model, Ridge) and not is_classification:
        coef, intercept = np.ravel(model.coef_), float(np.ravel(model.intercept_)[0])
        return (lambda x: x @ coef + intercept), "linear model as a dot product"
    if not hasattr(model, "n_features_in_") or hasattr(model, "feature_names_in_"):
        raise NoFastPath(f"{type(model).__name__} was not fit on a numpy array")
    try:
        return tree_walk(model), "gradient boosting's trees walked in numpy"
    except NoTreeWalk as error:
        how = f"{type(model).__name__}'s own predict on numpy rows ({error})"
    method = model.predict_proba if is_classification else model.predict

    def own(x: np.ndarray) -> np.ndarray:
        # The estimator's own prediction code, without re-validating rows built above.
        with config_context(assume_finite=True, skip_parameter_validation=True):
            out = method(x)
        return np.asarray(out[:, 1] if is_classification else out, dtype=np.float64)

    return own, how
