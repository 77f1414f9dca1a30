"""Keeping the event loop's requests ahead of the watcher's background work.

Requests run on the event loop's thread; loading and verifying a new version (skops,
sha256, smoke test, fast-path check: 40-150 ms of CPU, mostly Python) runs on the
watcher's.  Both need the GIL, and two things let the watcher hold it for long:

- The switch interval.  A thread waiting for the GIL gets it only after the holder
  has run ``sys.getswitchinterval()`` (5 ms by default), and a request takes the GIL
  several times (after each wait for the socket), so a request could wait 5 ms
  several times over while a version loads.  At 0.5 ms it waits a tenth of that;
  with no other thread wanting the GIL the interval costs nothing.
- Full garbage collections.  The server's heap (pandas, scikit-learn, pyarrow,
  dagster's modules, the models) holds about 400 000 objects the collector tracks; a
  full collection walks them all in one go, holding the GIL (measured: 0.5-0.7 s
  on this machine under load), and the allocations of a load are what trigger it.
  ``gc.freeze`` moves what is loaded at that point out of the collector's reach, so a
  collection walks only what was allocated since.  Objects that later become garbage
  are still freed by reference counting; only garbage in reference cycles among frozen
  objects would stay (a replaced version's pipeline has none we know of).
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterator
from contextlib import contextmanager

SWITCH_INTERVAL_S = 0.0005


@contextmanager
def requests_first() -> Iterator[None]:
    """For the server's lifetime: the short switch interval, and what is loaded frozen."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    freeze_loaded()
    try:
        yield
    finally:
        sys.setswitchinterval(previous)
        gc.unfreeze()


def freeze_loaded() -> None:
    """Keep everything allocated until now (a version just loaded) out of full
    collections."""
    gc.freeze()
