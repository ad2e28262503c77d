"""The Nynorsk hold-out rows that compare.py and genre_train.py print: each model trained
without a Nynorsk treebank, scored on its held-out documents, paired with the reference
model on the same documents (95% document-bootstrap intervals)."""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import ud_split
from intervals import document_bootstrap, paired_accuracy_difference
from labels import LABELS
from modelyard_side import Modelyard
from variant import NYNORSK


def interval(values: Sequence[float]) -> str:
    return f"[{values[0]:.3f}, {values[1]:.3f}]"


def minus(d: dict[str, float]) -> str:
    return f"{d['difference']:+.4f} [{d['ci95_low']:+.4f}, {d['ci95_high']:+.4f}]"


def holdout_rows(
    data_dir: Path,
    split: ud_split.Split,
    bundles: Callable[[tuple[str, ...]], dict[str, str | None]],
    reference: str,
    reference_wrong: bool = True,
) -> tuple[list[str], dict]:
    """One table row per Nynorsk treebank for which ``bundles(files)`` (model name ->
    bundle trained without those files, the reference first) names every bundle:
    accuracy with its interval per model, the commonest wrong answers (not for the
    reference unless ``reference_wrong``), then each other model minus the reference.
    Returns the rows and what they show, per treebank title."""
    lines: list[str] = []
    out: dict = {}
    for title in NYNORSK:
        files = ud_split.HOLDOUTS[title]
        named = bundles(files)
        if any(b is None for b in named.values()):
            continue
        without = ud_split.load(data_dir, exclude=files)
        test = ud_split.held_out(split, files, without.train.texts + without.val.texts)
        predicted = {name: Modelyard(str(b)).predict(test.texts) for name, b in named.items()}
        cells, minuses = [], []
        out[title] = {"n": len(test)}
        for name, answers in predicted.items():
            b = document_bootstrap(test.labels, answers, test.documents, LABELS)
            wrong = Counter(p for p, t in zip(answers, test.labels, strict=True) if p != t)
            cell = f"{b['accuracy']:.3f} {interval(b['accuracy_ci95'])}"
            if name != reference or reference_wrong:
                cell += " (" + ", ".join(f"->{k} {v}" for k, v in wrong.most_common(2)) + ")"
            cells.append(cell)
            entry: dict = {"bootstrap": b, "wrong": dict(wrong)}
            if name != reference:
                d = paired_accuracy_difference(
                    test.labels, answers, predicted[reference], test.documents, LABELS
                )
                minuses.append(minus(d))
                entry["minus_reference"] = d
            out[title][name] = entry
        lines.append(f"| {title} | {len(test)} | " + " | ".join(cells + minuses) + " |")
    return lines, out
