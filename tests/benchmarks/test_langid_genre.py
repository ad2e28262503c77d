"""The held-out-genre report (benchmarks/langid/genre.py): per-language accuracy."""

from __future__ import annotations

import pytest
from benchmarks.langid.genre import by_package, scores


def test_scores_give_each_language_its_accuracy_and_wrong_answers() -> None:
    truth = ["da"] * 4 + ["nn"] * 4
    predicted = ["da", "da", "nb", "nb", "nn", "nb", "nn", "nn"]
    groups = ["da/x:a", "da/x:a", "da/x:b", "da/x:b", "nn/x:a", "nn/x:a", "nn/x:b", "nn/x:b"]
    result = scores(truth, predicted, groups)
    assert result["accuracy"] == pytest.approx(5 / 8)
    da, nn = result["per_language"]["da"], result["per_language"]["nn"]
    assert (da["n"], da["catalogues"], da["accuracy"], da["wrong"]) == (4, 2, 0.5, {"nb": 2})
    assert (nn["accuracy"], nn["wrong"]) == (0.75, {"nb": 1})
    assert "sv" not in result["per_language"]  # no Swedish strings: no row, not 0


def test_by_package_splits_accuracy_per_package_and_language() -> None:
    table = by_package(["da", "da", "sv"], ["da", "nb", "sv"], ["django", "django", "dpkg"])
    assert table == {"django": {"da": 0.5}, "dpkg": {"sv": 1.0}}
