"""One OpenMP/BLAS thread for each thread that predicts."""

from __future__ import annotations


def one_thread_per_prediction() -> None:
    """Limit OpenMP and BLAS to one thread for the calling thread's predictions.

    For a few rows, gradient boosting's OpenMP workers cost far more in wake-ups and
    spinning than they save (measured: 207 ms instead of 6.5 ms of CPU per single-record
    prediction on a loaded 2-core machine).  OpenMP's limit holds per calling thread and
    only for runtimes already loaded, hence importing the ensembles (which load
    scikit-learn's OpenMP runtime) first, and calling it on each thread that predicts:
    the event loop's (requests, shadows) and the watcher's (smoke tests).
    """
    import sklearn.ensemble  # noqa: F401
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
