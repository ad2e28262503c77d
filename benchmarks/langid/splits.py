"""modelyard vs the scikit-learn baseline over several random splits, not just one.

    .venv/bin/python benchmarks/langid/splits.py --data-dir ../shared/datasets/ud \
        [--seeds 0 1 2 3 4] [--override key=value ...] [--out splits.json]

One 3,000-sentence test split cannot tell two systems 0.005 macro-F1 apart (the
paired-bootstrap interval in RESULTS.md is about +-0.012). Here each split seed gives
a different seeded, stratified train/val/test split of the same sentences; on each,
modelyard's model is trained through the normal flow (`data.split_seed=<seed>`) and
the baseline is fitted with its usual grid chosen on that split's validation part.
Both are scored on that split's test part. The verdict is over the seeds: the mean
paired difference, its 95% t-interval, and how many seeds each system wins.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from scipy import stats

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import baseline
import ud_split
from labels import LABELS
from metrics import macro_f1_difference, quality
from modelyard_side import Modelyard, train_modelyard


def per_seed(data_dir: Path, seed: int, overrides: list[str], work_dir: Path) -> dict:
    """Train and score both systems on the split drawn with ``seed``."""
    split = ud_split.load(data_dir, split_seed=seed)
    base = baseline.fit(split.train.texts, split.train.labels, split.val.texts, split.val.labels)
    trained = train_modelyard(
        data_dir, (), work_dir / f"seed-{seed}", [f"data.split_seed={seed}", *overrides]
    )
    ours = Modelyard(trained["bundle"]).predict(split.test.texts)
    theirs = base.predict(split.test.texts)
    truth = split.test.labels
    row = {
        "seed": seed,
        "n_test": len(truth),
        "fit_seconds": trained["fit_seconds"],
        "baseline": base.description,
        "modelyard": quality(split.test.texts, truth, ours),
        "sklearn": quality(split.test.texts, truth, theirs),
        "difference": macro_f1_difference(truth, ours, theirs),
    }
    print(
        f"seed {seed}: modelyard {row['modelyard']['macro_f1']:.4f}  "
        f"sklearn {row['sklearn']['macro_f1']:.4f}  "
        f"diff {row['difference']['difference']:+.4f}",
        flush=True,
    )
    return row


def summary(rows: list[dict]) -> dict:
    """Mean paired difference over seeds with a t-interval, and the win count."""
    diffs = np.array([r["difference"]["difference"] for r in rows])
    mean = float(diffs.mean())
    if len(diffs) > 1:
        half = float(stats.t.ppf(0.975, len(diffs) - 1) * diffs.std(ddof=1) / np.sqrt(len(diffs)))
        p_value = float(stats.ttest_1samp(diffs, 0.0, alternative="greater").pvalue)
    else:
        half, p_value = float("nan"), float("nan")
    return {
        "seeds": [r["seed"] for r in rows],
        "mean_difference": mean,
        "ci95": [mean - half, mean + half],
        "p_one_sided": p_value,
        "modelyard_wins": int((diffs > 0).sum()),
        "ties": int((diffs == 0).sum()),
        "sklearn_wins": int((diffs < 0).sum()),
        "modelyard_mean_macro_f1": float(np.mean([r["modelyard"]["macro_f1"] for r in rows])),
        "sklearn_mean_macro_f1": float(np.mean([r["sklearn"]["macro_f1"] for r in rows])),
    }


def table(rows: list[dict], verdict: dict) -> str:
    """The markdown RESULTS.md quotes."""
    head = ["split seed", "n test", "modelyard macro-F1", "sklearn macro-F1", "difference"]
    head += [f"F1 {x} (ours / sklearn)" for x in LABELS[:4]]
    lines = ["| " + " | ".join(head) + " |", "|" + " ---: |" * len(head)]
    for r in rows:
        ours, theirs = r["modelyard"], r["sklearn"]
        cells = [
            str(r["seed"]),
            str(r["n_test"]),
            f"{ours['macro_f1']:.4f}",
            f"{theirs['macro_f1']:.4f}",
            f"{r['difference']['difference']:+.4f}",
        ]
        cells += [f"{ours['f1'][x]:.3f} / {theirs['f1'][x]:.3f}" for x in LABELS[:4]]
        lines.append("| " + " | ".join(cells) + " |")
    low, high = verdict["ci95"]
    lines.append(
        f"\nMean difference {verdict['mean_difference']:+.4f} (95% t-interval "
        f"[{low:+.4f}, {high:+.4f}], one-sided p = {verdict['p_one_sided']:.3f}); "
        f"modelyard ahead on {verdict['modelyard_wins']} of {len(rows)} splits, "
        f"behind on {verdict['sklearn_wins']}."
    )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True, type=Path)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--override", nargs="*", default=[], help="modelyard train settings")
    parser.add_argument("--work-dir", type=Path, default=HERE / ".work" / "splits")
    parser.add_argument("--out", type=Path, default=HERE / "splits.json")
    args = parser.parse_args()
    rows = [per_seed(args.data_dir, s, args.override, args.work_dir) for s in args.seeds]
    verdict = summary(rows)
    args.out.write_text(
        json.dumps({"overrides": args.override, "rows": rows, "verdict": verdict}, indent=1)
    )
    print(table(rows, verdict))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
