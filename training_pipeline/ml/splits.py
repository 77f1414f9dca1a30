"""Splits that never leak the future: a holdout and the CV folds tuning scores on.

With a time column, the holdout is the latest time values and the folds are purged
expanding windows.  A row's label looks ``label_horizon`` past its time, so a training
row is only usable for a period starting at *d* if its label was already known at *d*
(``time + label_horizon <= d``).  Every split here applies that rule, which is what
production looks like: when we score on day *d*, the freshest labels we can train on
are a horizon old.  Anything looser leaks the future into the score.

Without a time column, rows are exchangeable: the holdout is a seeded fraction and the
folds are K-fold, both stratified by the label for classification.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.model_selection import KFold, StratifiedKFold, train_test_split

from training_pipeline.ml.problem import ProblemSpec

Fold = tuple[np.ndarray, np.ndarray]
SPLIT_SEED = 0


def check_frame(frame: pd.DataFrame, spec: ProblemSpec) -> None:
    """Fail early, naming the problem, instead of deep inside scikit-learn.

    Raises:
        ValueError: A column is missing, the frame is empty, a label or time value is
            null, or the label does not fit the task or does not vary.
    """
    missing = [column for column in spec.columns if column not in frame.columns]
    if missing:
        raise ValueError(f"frame is missing spec column(s): {', '.join(missing)}")
    if frame.empty:
        raise ValueError("frame has no rows")
    for column in (spec.label, *spec.keys[1:]):
        if frame[column].isna().any():
            raise ValueError(f"column {column!r} has nulls; only labelled rows belong here")
    task = spec.task_adapter
    task.check_variation(task.labels(frame[spec.label], spec.label), spec.label)


def labels_of(frame: pd.DataFrame, spec: ProblemSpec) -> np.ndarray:
    """The label column as the task's model targets."""
    return spec.task_adapter.labels(frame[spec.label], spec.label)


def snapshot_dates(frame: pd.DataFrame, spec: ProblemSpec) -> pd.Series:
    """The frame's time column as datetimes, whatever type the warehouse returned."""
    if spec.time_column is None:
        raise ValueError(f"problem {spec.name!r} has no time_column")
    return pd.to_datetime(frame[spec.time_column])


def _usable_before(dates: pd.Series, start: pd.Timestamp, spec: ProblemSpec) -> np.ndarray:
    """Rows before ``start`` whose label was already known at ``start``."""
    horizon = pd.Timedelta(spec.label_horizon)
    return ((dates < start) & (dates + horizon <= start)).to_numpy()


def _horizon(spec: ProblemSpec) -> str:
    return f"{spec.horizon_text} label horizon"


def holdout_split(
    frame: pd.DataFrame, spec: ProblemSpec, holdout_periods: int | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Set rows aside so the final score comes from data tuning never saw.

    With a time column: the latest ``holdout_periods`` (default
    ``spec.holdout.last_periods``) time values; training rows whose label horizon
    reaches into the holdout are dropped (purged).  Without one: a seeded
    ``spec.holdout.fraction`` of the rows, stratified by class when asked.

    Returns:
        ``(train, holdout)``.

    Raises:
        ValueError: Bad frame, or too few time values to leave any training rows.
    """
    check_frame(frame, spec)
    if spec.time_column is None:
        return _fraction_split(frame, spec)
    periods = spec.holdout.last_periods if holdout_periods is None else holdout_periods
    if periods is None or periods < 1:
        raise ValueError(f"holdout periods must be at least 1, got {periods}")
    dates = snapshot_dates(frame, spec)
    unique = np.sort(dates.unique())
    if len(unique) <= periods:
        raise ValueError(
            f"too few time values for a holdout: {len(unique)} value(s) of "
            f"{spec.time_column!r}, holdout periods {periods}"
        )
    start = pd.Timestamp(unique[-periods])
    train_mask = _usable_before(dates, start, spec)
    if not train_mask.any():
        raise ValueError(
            f"too few time values: after holding out {periods} and purging the "
            f"{_horizon(spec)}, no training rows are left"
        )
    return frame.loc[train_mask], frame.loc[(dates >= start).to_numpy()]


def _fraction_split(frame: pd.DataFrame, spec: ProblemSpec) -> tuple[pd.DataFrame, pd.DataFrame]:
    task = spec.task_adapter
    stratify = labels_of(frame, spec) if task.is_classification and spec.holdout.stratify else None
    train_idx, holdout_idx = train_test_split(
        np.arange(len(frame)),
        test_size=spec.holdout.fraction,
        random_state=SPLIT_SEED,
        stratify=stratify,
    )
    return frame.iloc[np.sort(train_idx)], frame.iloc[np.sort(holdout_idx)]


def cv_folds(
    frame: pd.DataFrame, spec: ProblemSpec, n_folds: int = 3, valid_periods: int = 2, seed: int = 0
) -> list[Fold]:
    """The folds tuning scores on: purged time folds, or (no time column) seeded K-fold,
    stratified for classification."""
    if spec.time_column is not None:
        return time_folds(frame, spec, n_folds, valid_periods)
    check_frame(frame, spec)
    if n_folds < 2:
        raise ValueError(f"n_folds must be at least 2 without a time column, got {n_folds}")
    y = labels_of(frame, spec)
    splitter = StratifiedKFold if spec.task_adapter.is_classification else KFold
    folds = splitter(n_splits=n_folds, shuffle=True, random_state=seed).split(np.zeros(len(y)), y)
    return [(np.asarray(t), np.asarray(v)) for t, v in folds]


def time_folds(
    frame: pd.DataFrame,
    spec: ProblemSpec,
    n_folds: int = 3,
    valid_snapshots: int = 2,
    min_train_snapshots: int = 2,
) -> list[Fold]:
    """Expanding-window CV: each fold validates on later time values than it trains on.

    The last ``n_folds * valid_snapshots`` time values form consecutive validation
    blocks, oldest first, so the cheapest fold runs first and a pruner can stop a poor
    trial before the expensive ones.  Each fold trains on every earlier time value whose
    label horizon ends by the start of its validation block.

    Returns:
        ``[(train_idx, valid_idx), ...]`` as positional indices into ``frame``.

    Raises:
        ValueError: Bad arguments or frame, or too few time values for the folds.
    """
    if n_folds < 1 or valid_snapshots < 1 or min_train_snapshots < 1:
        raise ValueError(
            "n_folds, valid_snapshots and min_train_snapshots must each be at least 1, got "
            f"{n_folds}, {valid_snapshots}, {min_train_snapshots}"
        )
    check_frame(frame, spec)
    dates = snapshot_dates(frame, spec)
    unique = np.sort(dates.unique())
    first_valid = max(len(unique) - n_folds * valid_snapshots, 0)
    folds: list[Fold] = []
    for fold in range(n_folds):
        block = unique[first_valid + fold * valid_snapshots :][:valid_snapshots]
        train_mask = _usable_before(dates, pd.Timestamp(block[0]), spec) if len(block) else None
        n_train = 0 if train_mask is None else dates[train_mask].nunique()
        if n_train < min_train_snapshots:
            raise ValueError(
                f"too few time values for {n_folds} folds of {valid_snapshots}: "
                f"{len(unique)} value(s) of {spec.time_column!r} leave fold {fold + 1} with "
                f"{n_train} training value(s) after purging the {_horizon(spec)} (need "
                f"{min_train_snapshots}); use fewer or smaller folds or more history"
            )
        valid_mask = dates.isin(block).to_numpy()
        folds.append((np.flatnonzero(train_mask), np.flatnonzero(valid_mask)))
    return folds
