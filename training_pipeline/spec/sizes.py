"""Sizes and durations as people write them in a declaration: ``512MiB``, ``5s``, ``2m``."""

from __future__ import annotations

import re

_BYTES = re.compile(r"(\d+(?:\.\d+)?)\s*([KMGT]i?B|B)?", re.IGNORECASE)
_UNIT_BYTES = {"B": 1} | {
    unit: base**power
    for power, letter in enumerate("KMGT", start=1)
    for unit, base in ((f"{letter}B", 1000), (f"{letter}IB", 1024))
}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h)?", re.IGNORECASE)
_UNIT_SECONDS = {"MS": 0.001, "S": 1.0, "M": 60.0, "H": 3600.0}


def byte_size(value: int | float | str) -> int:
    """A whole number of bytes from ``1048576``, ``"1MiB"`` or ``"1.5 GB"``."""
    if isinstance(value, bool):
        raise ValueError("expected a size such as 512MiB, not a boolean")
    if isinstance(value, int | float):
        number, unit = float(value), "B"
    else:
        match = _BYTES.fullmatch(value.strip())
        if match is None:
            raise ValueError(f"{value!r} is not a size (e.g. 1048576, 512KiB, 1MiB, 2GB)")
        number, unit = float(match.group(1)), (match.group(2) or "B")
    size = int(number * _UNIT_BYTES[unit.upper()])
    if size < 1:
        raise ValueError(f"{value!r} is not a positive size")
    return size


def seconds(value: int | float | str) -> float:
    """Seconds from ``5``, ``"5s"``, ``"250ms"``, ``"2m"`` or ``"1h"``."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 5s, not a boolean")
    if isinstance(value, int | float):
        result = float(value)
    else:
        match = _DURATION.fullmatch(value.strip())
        if match is None:
            raise ValueError(f"{value!r} is not a duration (e.g. 5, 5s, 250ms, 2m, 1h)")
        result = float(match.group(1)) * _UNIT_SECONDS[(match.group(2) or "s").upper()]
    if result < 0:
        raise ValueError(f"{value!r} is a negative duration")
    return result
