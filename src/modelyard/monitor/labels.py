"""The label names of a logged model, for checking feedback outside the server."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from modelyard.errors import DataError, UsageError
from modelyard.monitor.logstore import latest_version


def model_labels(engine: Engine, model: str) -> list[str]:
    """The labels of the newest logged version's bundle (read from the registry).

    The bundle, not the log, says which labels exist: a class the model never
    predicted is still a valid true label.
    """
    from modelyard import bundle as bundle_io

    version = latest_version(engine, model)
    if version is None:
        raise DataError(
            f"no predictions of model '{model}' in the prediction log; check --model and --db"
        )
    if not version.isdigit():
        raise UsageError(
            f"'{model}' was served from a bundle folder (version '{version}'); "
            "its labels cannot be looked up in the registry"
        )
    return list(bundle_io.load(f"models:/{model}/{version}").labels)
