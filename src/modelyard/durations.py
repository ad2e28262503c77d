"""Durations on the command line (``bench --duration 10s``, ``monitor drift --since
2d``): one grammar for every command."""

from __future__ import annotations

import re

from modelyard.errors import UsageError

_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|h|d|w)?\s*$")
_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


MAX_DURATION_S = 100 * 365 * 86_400.0
"""The longest duration taken: --since 1000000000d reached back before year 1, which
no date can hold."""


def parse_duration(text: str, *, allow_zero: bool = False) -> float:
    """``"500ms"``, ``"10s"``, ``"15m"``, ``"1h"``, ``"2d"``, ``"1w"`` or plain seconds
    (``"2.5"``) -> seconds. Zero only with ``allow_zero``."""
    match = _DURATION.match(text)
    seconds = float(match[1]) * _SECONDS.get(match[2] or "s", 1.0) if match else -1.0
    if seconds < 0 or (seconds == 0 and not allow_zero):
        raise UsageError(
            f"'{text}' is not a positive duration; write e.g. 10s, 500ms, 2m, 1h, 2d "
            "or 2.5 (seconds)"
        )
    if seconds > MAX_DURATION_S:
        raise UsageError(f"'{text}' is longer than 100 years; write e.g. 30d or 52w")
    return seconds
