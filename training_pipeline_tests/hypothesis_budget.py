"""How many examples a property test tries: every one in `make test`, a third in the
inner loop.

`make test-fast` passes ``--hypothesis-profile inner-loop``; `make test` (what CI runs)
loads hypothesis's default profile, so every property still meets its full count of
examples before a change is merged, and the inner loop pays a third of it.  conftest.py
imports this module, so the profile exists before hypothesis's pytest plugin loads it.
"""

from __future__ import annotations

from hypothesis import settings

INNER_LOOP = "inner-loop"
# A third of hypothesis's default 100: every property runs, each on fewer examples.
settings.register_profile(INNER_LOOP, max_examples=34)


def examples(full: int) -> int:
    """``full`` under the default profile, scaled like ``max_examples`` under another.

    Read when a test module is imported (collection), after the profile was loaded.
    """
    return max(10, full * settings.default.max_examples // 100)
