"""Reading overrides before composing: keys, the last value, a section's keys."""

from __future__ import annotations

from modelyard.config.overrides import overridden_keys, override_key, override_value


def test_the_key_drops_hydras_prefixes() -> None:
    assert override_key("+data.files.x=da") == "data.files.x"
    assert override_key("~train.lr") == "train.lr"
    assert override_key("task=digits") == "task"


def test_the_last_value_wins_and_null_means_unset() -> None:
    given = ["tracking.uri=http://a:5000", "+tracking.uri=http://b:5000"]
    assert override_value(given, "tracking.uri") == "http://b:5000"
    assert override_value([*given, "tracking.uri=null"], "tracking.uri") is None
    assert override_value(["data.path=x"], "tracking.uri") is None
    assert override_value(["a.b=x=y"], "a.b") == "x=y"


def test_a_sections_keys() -> None:
    given = ["data.path=/d", "+data.limit=5", "train.lr=0.1", "database=x"]
    assert overridden_keys(given, "data") == {"path", "limit"}
