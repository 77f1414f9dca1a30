"""Run a function in several threads released together, for tests of concurrent writers."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any


def at_once(target: Callable[[Any], None], arguments: Sequence[Any]) -> list[BaseException]:
    """Call ``target(argument)`` for each argument, each in its own thread, all started
    behind one barrier; the errors they raised (none: an empty list)."""
    start = threading.Barrier(len(arguments))
    failures: list[BaseException] = []

    def run(argument: Any) -> None:
        start.wait()
        try:
            target(argument)
        except BaseException as error:  # returned to the test, which asserts on it
            failures.append(error)

    threads = [threading.Thread(target=run, args=(argument,)) for argument in arguments]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return failures
