"""Time-aware splits: a holdout of the latest snapshots, and purged expanding-window folds.

A row's label looks ``label_window_days`` past its snapshot, so a training row is only
usable for a period starting at day *d* if its label was already known at *d*
(``snapshot + label_window_days <= d``).  Every split here applies that rule, which is
what production looks like: when we score on day *d*, the freshest labels we can
train on are a label window old.  Anything looser leaks the future into the score.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from training_pipeline.ml.feature_spec import FeatureSpec

Fold = tuple[np.ndarray, np.ndarray]


def check_frame(frame: pd.DataFrame, spec: FeatureSpec) -> None:
    """Fail early, naming the problem, instead of deep inside scikit-learn.

    Args:
        frame: Labelled rows that should carry every column of ``spec``.
        spec: The feature spec.

    Raises:
        ValueError: A column is missing, the frame is empty, a label or snapshot date
            is null, or the label has fewer than two classes.
    """
    missing = [column for column in spec.columns if column not in frame.columns]
    if missing:
        raise ValueError(f"frame is missing spec column(s): {', '.join(missing)}")
    if frame.empty:
        raise ValueError("frame has no rows")
    for column in (spec.label, spec.time_column):
        if frame[column].isna().any():
            raise ValueError(f"column {column!r} has nulls; only labelled snapshots belong here")
    classes = sorted(frame[spec.label].unique().tolist())
    if len(classes) < 2:
        raise ValueError(f"label {spec.label!r} has a single class {classes}; need both 0 and 1")


def snapshot_dates(frame: pd.DataFrame, spec: FeatureSpec) -> pd.Series:
    """The frame's time column as datetimes, whatever type the warehouse returned.

    Args:
        frame: Rows with ``spec.time_column``.
        spec: The feature spec.

    Returns:
        A datetime64 series aligned with ``frame``.
    """
    return pd.to_datetime(frame[spec.time_column])


def _usable_before(dates: pd.Series, start: pd.Timestamp, spec: FeatureSpec) -> np.ndarray:
    """Rows before ``start`` whose label was already known at ``start``."""
    window = pd.Timedelta(days=spec.label_window_days)
    return ((dates < start) & (dates + window <= start)).to_numpy()


def holdout_split(
    frame: pd.DataFrame, spec: FeatureSpec, holdout_snapshots: int = 2
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Set the latest snapshots aside so the final score comes from data tuning never saw.

    Training rows whose label window reaches into the holdout are dropped (purged).

    Args:
        frame: Labelled rows with every ``spec`` column.
        spec: The feature spec.
        holdout_snapshots: How many of the most recent snapshot dates to hold out.

    Returns:
        ``(train, holdout)``; every train snapshot ends its label window by the first
        holdout snapshot.

    Raises:
        ValueError: Bad frame, or too few snapshots to leave any training rows.
    """
    check_frame(frame, spec)
    if holdout_snapshots < 1:
        raise ValueError(f"holdout_snapshots must be at least 1, got {holdout_snapshots}")
    dates = snapshot_dates(frame, spec)
    unique = np.sort(dates.unique())
    if len(unique) <= holdout_snapshots:
        raise ValueError(
            f"too few snapshots for a holdout: {len(unique)} snapshot date(s), "
            f"holdout_snapshots={holdout_snapshots}"
        )
    start = pd.Timestamp(unique[-holdout_snapshots])
    train_mask = _usable_before(dates, start, spec)
    if not train_mask.any():
        raise ValueError(
            f"too few snapshots: after holding out {holdout_snapshots} and purging the "
            f"{spec.label_window_days}-day label window, no training snapshots are left"
        )
    return frame.loc[train_mask], frame.loc[(dates >= start).to_numpy()]


def time_folds(
    frame: pd.DataFrame,
    spec: FeatureSpec,
    n_folds: int = 3,
    valid_snapshots: int = 2,
    min_train_snapshots: int = 2,
) -> list[Fold]:
    """Expanding-window CV: each fold validates on later snapshots than it trains on.

    The last ``n_folds * valid_snapshots`` snapshot dates form consecutive validation
    blocks, oldest first, so the cheapest fold runs first and a pruner can stop a poor
    trial before the expensive ones.  Each fold trains on every earlier snapshot whose
    label window ends by the start of its validation block.

    Args:
        frame: Labelled training rows (the holdout already removed).
        spec: The feature spec.
        n_folds: Number of folds.
        valid_snapshots: Snapshot dates per validation block.
        min_train_snapshots: Fewest training snapshot dates a fold may have.

    Returns:
        ``[(train_idx, valid_idx), ...]`` as positional indices into ``frame``.

    Raises:
        ValueError: Bad arguments or frame, or too few snapshots for the requested folds.
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
                f"too few snapshots for {n_folds} folds of {valid_snapshots}: "
                f"{len(unique)} snapshot date(s) leave fold {fold + 1} with {n_train} "
                f"training snapshot(s) after purging the {spec.label_window_days}-day label "
                f"window (need {min_train_snapshots}); use fewer or smaller folds or more history"
            )
        valid_mask = dates.isin(block).to_numpy()
        folds.append((np.flatnonzero(train_mask), np.flatnonzero(valid_mask)))
    return folds
