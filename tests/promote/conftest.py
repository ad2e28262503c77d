"""Two registered digits models for the promotion tests: a good one and a poor one."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.conftest import FAST
from tests.helpers import modelyard_home


@dataclass(frozen=True)
class TwoModels:
    home: Path
    good: str
    """Version trained for train=fast's three epochs."""
    poor: str
    """Version trained for one epoch at a tiny learning rate."""
    good_test_accuracy: float


@pytest.fixture(scope="module")
def two_models(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwoModels]:
    from modelyard.config import compose_config
    from modelyard.train.run import train

    with modelyard_home(tmp_path_factory.mktemp("promote-home")) as home:
        good = train(compose_config(FAST))
        poor = train(compose_config([*FAST, "train.max_epochs=1", "train.lr=1e-4"]))
        yield TwoModels(home, good.model_version, poor.model_version, good.metrics["test_accuracy"])  # type: ignore[arg-type]


@pytest.fixture
def models(two_models: TwoModels, monkeypatch: pytest.MonkeyPatch) -> TwoModels:
    from modelyard import tracking

    monkeypatch.setenv("MODELYARD_HOME", str(two_models.home))
    tracking.configure()
    return two_models
