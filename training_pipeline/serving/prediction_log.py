"""Every served prediction, appended to files in the data directory, batched and bounded.

A request only puts its entries on an in-memory queue (no disk I/O on the request
path).  A writer thread collects what arrives within ``flush_s`` of a batch's first
entry and writes it, ``batch_size`` entries at most, as new JSON-lines files per model, atomically
(``artifacts.atomic_write_bytes``): a file is complete or absent, so the ingestion can
load any file it finds and delete it afterwards.  The queue holds at most
``max_queued`` entries; when the disk cannot keep up, further entries are dropped and
counted (``on_dropped``) rather than slowing requests or growing memory without limit.

Layout: ``<directory>/<model>/<UTC time>-<pid>-<sequence>.jsonl``, one line per record
with ``request_id, record`` (its index in the request), ``model, version, role``
("production" or "shadow"), ``at, features, score, prediction`` and the row's identity
as the client sent it, null when it did not: ``entity`` (the id column's value, as
text) and ``as_of`` (the time column's value), which join the row to its label later.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from training_pipeline.ml.artifacts import atomic_write_bytes

SUFFIX = ".jsonl"
log = logging.getLogger(__name__)


def entry(
    request_id: str,
    record: int,
    model: str,
    version: str,
    role: str,
    at: str,
    features: Mapping[str, Any],
    output: Mapping[str, Any],
    entity: str | None = None,
    as_of: str | None = None,
) -> dict[str, Any]:
    """One log line's content."""
    return {
        "request_id": request_id,
        "record": record,
        "model": model,
        "version": version,
        "role": role,
        "at": at,
        "features": dict(features),
        "score": output["score"],
        "prediction": output["prediction"],
        "entity": entity,
        "as_of": as_of,
    }


def write_batch(directory: Path, entries: Iterable[Mapping[str, Any]], sequence: int) -> list[Path]:
    """Write ``entries`` as one new file per model; the paths written."""
    by_model: dict[str, list[str]] = defaultdict(list)
    for item in entries:
        by_model[item["model"]].append(json.dumps(item, separators=(",", ":")))
    stamp = f"{datetime.now(UTC):%Y%m%dT%H%M%S%f}-{os.getpid()}-{sequence:08d}"
    written = []
    for model, lines in by_model.items():
        folder = directory / model
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{stamp}{SUFFIX}"
        atomic_write_bytes(path, ("\n".join(lines) + "\n").encode())
        written.append(path)
    return written


class PredictionLog:
    """The queue and its writer thread; ``close`` writes what is queued and stops."""

    def __init__(
        self,
        directory: Path,
        *,
        batch_size: int = 1000,
        flush_s: float = 1.0,
        max_queued: int = 100_000,
        on_dropped: Callable[[int], None] = lambda count: None,
    ) -> None:
        self.directory = directory
        self._batch_size, self._flush_s = batch_size, flush_s
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue(max_queued)
        self._on_dropped = on_dropped
        self._sequence = 0
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._write, name="prediction-log", daemon=True)
        self._thread.start()

    def append(self, entries: Iterable[dict[str, Any]]) -> None:
        """Queue ``entries`` without blocking; the ones that do not fit are dropped."""
        dropped = 0
        for item in entries:
            try:
                self._queue.put_nowait(item)
            except queue.Full:
                dropped += 1
        if dropped:
            self._on_dropped(dropped)

    def close(self) -> None:
        self._closing.set()
        self._queue.put(None)  # blocks only while the queue is full: everything gets written
        self._thread.join()

    def _write(self) -> None:
        """From a batch's first entry, let entries gather for ``flush_s`` (or until
        ``close``), then write them, ``batch_size`` to a file; repeat until ``close``'s
        sentinel arrives.  Waiting on the queue for each entry instead would wake this
        thread once per request, and each wake-up takes the GIL from the event loop
        (in process, under cProfile: a fifth of a request's time went to that hand-over)."""
        finished = False
        while not finished:
            first = self._queue.get()
            if first is None:
                return
            self._closing.wait(self._flush_s)
            batch = [first]
            while True:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    finished = True
                    break
                batch.append(item)
                if len(batch) == self._batch_size:
                    self._flush(batch)
                    batch = []
            if batch:
                self._flush(batch)

    def _flush(self, batch: list[dict[str, Any]]) -> None:
        self._sequence += 1
        try:
            write_batch(self.directory, batch, self._sequence)
        except OSError as error:  # a full disk: the batch is lost, counted and logged
            log.error("prediction log: %d entries not written: %s", len(batch), error)
            self._on_dropped(len(batch))
