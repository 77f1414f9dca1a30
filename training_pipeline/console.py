"""What `run` and `retrain` show in the terminal: one line per step, then the summary.

Everything the libraries write while a run executes (alembic's migrations of the
instance, httpx's request lines, dbt's per-node log that dagster-dbt echoes, Optuna's
trials, Python warnings) goes to a log file in the data directory instead: the process's
own stdout and stderr (``sys.stdout``/``sys.stderr`` and file descriptors 1 and 2, so
child processes too) point at that file for the duration, and the terminal is reached
through a copy of the original stdout.  The pipeline's own warnings (a dead run found
and released, say) are shown in the terminal as well.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import dagster as dg

LOG_NAME = "training-pipeline.log"
STEP_EVENTS = {
    dg.DagsterEventType.STEP_SUCCESS: "done",
    dg.DagsterEventType.STEP_FAILURE: "FAILED",
    dg.DagsterEventType.STEP_SKIPPED: "skipped",
}


def log_path_in(data_dir: Path) -> Path:
    return data_dir / "logs" / LOG_NAME


@contextmanager
def chatter_to(log_path: Path) -> Iterator[TextIO]:
    """Send this process's stdout and stderr (and its children's) to ``log_path`` for the
    block; yields a stream that still reaches the terminal."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    terminal = open(os.dup(saved[0]), "w", buffering=1, closefd=True)  # noqa: SIM115
    logging.captureWarnings(True)
    with open(log_path, "a", buffering=1) as log:
        log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(sys.argv)}\n")
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        ours = logging.getLogger("training_pipeline")
        warnings = logging.StreamHandler(terminal)
        warnings.setLevel(logging.WARNING)
        warnings.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        ours.addHandler(warnings)
        try:
            # sys.stdout may not be descriptor 1 (replaced by a caller): redirected too.
            with redirect_stdout(log), redirect_stderr(log):
                yield terminal
        finally:
            ours.removeHandler(warnings)
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
            logging.captureWarnings(False)
            terminal.close()


@contextmanager
def warnings_to(log_path: Path) -> Iterator[None]:
    """Python warnings raised in the block go to ``log_path`` as they are raised, not to
    the terminal: what `run` does with them (``chatter_to``), for the commands that only
    load the project's declarations, where Dagster's notices about its own beta APIs
    were most of what `status` printed."""

    def to_log(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: TextIO | None = None,
        line: str | None = None,
    ) -> None:
        # One line of our own making: warnings.formatwarning is a global that libraries
        # replace (one in the suite spread a warning over four lines).
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "a", encoding="utf-8") as log:
            log.write(f"{stamp} {filename}:{lineno}: {category.__name__}: {message}\n")

    with warnings.catch_warnings():
        warnings.showwarning = to_log
        yield


def step_line(elapsed_s: float, step: str, outcome: str, took_s: float | None) -> str:
    took = f" in {took_s:.1f} s" if took_s is not None else ""
    return f"[{elapsed_s:7.1f} s] {step} {outcome}{took}"


@dataclass
class StepProgress:
    """Prints a line for each step of the run ``run_id`` as it ends (read from the
    instance's event log every ``interval_s``), until stopped."""

    instance: dg.DagsterInstance
    run_id: str
    out: TextIO
    interval_s: float = 0.5
    started: float = field(default_factory=time.monotonic)
    _cursor: str | None = None
    _starts: dict[str, float] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)

    def lines(self) -> list[str]:
        """The lines of the steps that ended since the last call."""
        wanted = {dg.DagsterEventType.STEP_START, *STEP_EVENTS}
        connection = self.instance.get_records_for_run(
            self.run_id, cursor=self._cursor, of_type=wanted
        )
        self._cursor = connection.cursor
        lines = []
        for record in connection.records:
            entry = record.event_log_entry
            event = entry.dagster_event
            if event is None or event.step_key is None:
                continue
            if event.event_type == dg.DagsterEventType.STEP_START:
                self._starts[event.step_key] = entry.timestamp
                continue
            began = self._starts.get(event.step_key)
            took = entry.timestamp - began if began is not None else None
            elapsed = time.monotonic() - self.started
            lines.append(step_line(elapsed, event.step_key, STEP_EVENTS[event.event_type], took))
        return lines

    def _watch(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._print()

    def _print(self) -> None:
        for line in self.lines():
            print(line, file=self.out, flush=True)

    @contextmanager
    def running(self) -> Iterator[StepProgress]:
        thread = threading.Thread(target=self._watch, name="step-progress", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join()
            self._print()  # the steps that ended after the last look
