"""Reading ``key=value`` overrides before (or without) composing a config.

Some choices must be made from the raw overrides: which registry to fetch a bundle
from before its task's config can be composed, which data keys a user set explicitly
over a bundle's recorded ones, which keys a resumed run is asked to change.
"""

from __future__ import annotations

from collections.abc import Sequence


def override_key(override: str) -> str:
    """The dotted key a ``key=value`` override sets, without Hydra's ``+``/``~`` prefixes."""
    return override.split("=", 1)[0].lstrip("+~")


def override_value(overrides: Sequence[str], key: str) -> str | None:
    """The value the last override of ``key`` gives it (None when unset, empty or null)."""
    found: str | None = None
    for override in overrides:
        name, _, value = override.partition("=")
        if name.lstrip("+~") == key:
            found = None if value in ("", "null") else value
    return found


def overridden_keys(overrides: Sequence[str], section: str) -> set[str]:
    """The keys of ``section`` (``data``, ``train``, ...) that ``overrides`` set."""
    keys = (override_key(o) for o in overrides)
    return {k.split(".", 1)[1] for k in keys if k.startswith(section + ".")}
