"""The server's settings against its background work's hold on the GIL."""

from __future__ import annotations

import gc
import sys

from training_pipeline.serving.latency import SWITCH_INTERVAL_S, requests_first


def test_while_serving_the_switch_interval_is_short_and_what_was_loaded_is_frozen():
    before = sys.getswitchinterval()

    with requests_first():
        during = sys.getswitchinterval()
        frozen = gc.get_freeze_count()

    assert during == SWITCH_INTERVAL_S
    assert frozen > 0  # the modules imported so far, at least
    assert sys.getswitchinterval() == before
    assert gc.get_freeze_count() == 0
