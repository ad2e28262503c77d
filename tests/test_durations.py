"""One duration grammar for every command (bench --duration, monitor drift --since)."""

from __future__ import annotations

import pytest

from modelyard.durations import parse_duration
from modelyard.errors import ModelyardError, UsageError


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("10s", 10.0),
        ("500ms", 0.5),
        ("2m", 120.0),
        ("2.5", 2.5),
        (" 1h ", 3600.0),
        (".5s", 0.5),
        ("2d", 172800.0),
        ("1w", 604800.0),
        ("90s", 90.0),
    ],
)
def test_durations_accept_units_and_plain_seconds(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "10x", "-1s", "0s", "s", "1.5.2s", "ten", "1y"])
def test_bad_durations_name_the_accepted_forms(text: str) -> None:
    with pytest.raises(ModelyardError, match="10s, 500ms, 2m, 1h, 2d"):
        parse_duration(text)


def test_zero_is_allowed_only_when_asked() -> None:
    assert parse_duration("0", allow_zero=True) == 0.0
    with pytest.raises(ModelyardError):
        parse_duration("0")


def test_a_duration_past_a_century_is_refused_with_what_to_write() -> None:
    # --since 1000000000d reached back before year 1 and failed as a traceback.
    with pytest.raises(UsageError, match="longer than 100 years"):
        parse_duration("1000000000d")
