"""The Nynorsk hold-out rows shared by compare.py and genre_train.py
(benchmarks/langid/holdouts.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from benchmarks.langid import holdouts
from benchmarks.langid.ud_split import HOLDOUTS, Sentences, Split
from benchmarks.langid.variant import NYNORSK


def _split() -> Split:
    spoken, written = HOLDOUTS[NYNORSK[0]][0], HOLDOUTS[NYNORSK[1]][0]
    texts = ["a", "b", "c", "d", "e", "f"]
    groups = [spoken] * 4 + [written, "da_ddt-ud-dev.conllu"]
    part = Sentences(
        texts, ["nn"] * 5 + ["da"], groups, [f"{g}#{t}" for g, t in zip(groups, texts, strict=True)]
    )
    empty = Sentences([], [], [], [])
    return Split(part, empty, empty, "f", ())


class _Model:
    """Answers from a table: bundle "good" is right but for "a", "bad" says nb always."""

    def __init__(self, bundle: str) -> None:
        self.bundle = bundle

    def predict(self, texts: list[str]) -> list[str]:
        if self.bundle.startswith("good"):
            return ["da" if t == "a" else "nn" for t in texts]
        return ["nb"] * len(texts)


def test_rows_pair_each_model_with_the_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    split = _split()
    empty = Sentences([], [], [], [])
    monkeypatch.setattr(holdouts, "Modelyard", _Model)
    # The fits without the files trained on nothing here: every sentence of them is scored.
    monkeypatch.setattr(
        holdouts.ud_split, "load", lambda *_, **__: Split(empty, empty, empty, "", ())
    )
    asked: list[tuple[str, ...]] = []

    def bundles(files: tuple[str, ...]) -> dict[str, str | None]:
        asked.append(files)
        return {"bad": "bad", "good": "good"}

    rows, out = holdouts.holdout_rows(Path("."), split, bundles, "bad", reference_wrong=False)
    assert asked == [HOLDOUTS[title] for title in NYNORSK]
    spoken, written = out[NYNORSK[0]], out[NYNORSK[1]]
    assert (spoken["n"], written["n"]) == (4, 1)  # the Danish sentence is in neither
    assert spoken["good"]["bootstrap"]["accuracy"] == pytest.approx(0.75)
    assert spoken["good"]["wrong"] == {"da": 1} and spoken["bad"]["wrong"] == {"nb": 4}
    assert spoken["good"]["minus_reference"]["difference"] == pytest.approx(0.75)
    assert "minus_reference" not in spoken["bad"]
    cells = rows[0].split(" | ")
    assert cells[1:3] == ["4", "0.000 [0.000, 0.000]"]  # the reference: no wrong answers
    assert cells[3].startswith("0.750 [") and cells[3].endswith("(->da 1)")
    assert cells[4].startswith("+0.7500 [")
    with_wrong, _ = holdouts.holdout_rows(Path("."), split, bundles, "bad")
    assert with_wrong[0].split(" | ")[2].endswith("(->nb 4)")


def test_a_missing_bundle_skips_the_row(monkeypatch: pytest.MonkeyPatch) -> None:
    split = _split()
    monkeypatch.setattr(holdouts, "Modelyard", _Model)
    monkeypatch.setattr(holdouts.ud_split, "load", lambda *_, **__: split)
    rows, out = holdouts.holdout_rows(Path("."), split, lambda _: {"a": "bad", "b": None}, "a")
    assert rows == [] and out == {}
