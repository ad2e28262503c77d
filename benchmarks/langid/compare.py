"""Variants side by side, paired: grouped val (the selection), test and the Nynorsk
hold-outs with document-bootstrap intervals, each minus the first variant.

    .venv/bin/python benchmarks/langid/compare.py --data-dir ../shared/datasets/ud \
        --work-dir <variant.py's work dir> default nn-debnn ...

Reads the fits variant.py left in the work dir (``variant-<name>`` and, after
``--holdout``, ``variant-<name>-without-<treebank>``); a hold-out row is printed when
every named variant has its fit. The first name is the reference ("minus" columns
pair each variant with it on the same resamples). Writes <work dir>/compare.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import ud_split
from holdouts import holdout_rows, interval, minus
from intervals import document_bootstrap, paired_difference
from labels import LABELS
from metrics import quality
from modelyard_side import Modelyard
from timing import load_average


def _bundle(work_dir: Path, name: str, files: tuple[str, ...] = ()) -> str | None:
    home = work_dir / f"variant-{name}"
    if files:
        home = home.with_name(f"{home.name}-without-{files[0].split('-')[0]}")
    result = home / "train_result.json"
    return str(json.loads(result.read_text())["bundle"]) if result.exists() else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True, type=Path)
    parser.add_argument("--work-dir", required=True, type=Path)
    parser.add_argument("names", nargs="+", help="variants; the first is the reference")
    args = parser.parse_args()
    load_before = load_average()
    split = ud_split.load(args.data_dir.resolve())
    out: dict = {"load_average_before": load_before, "ud": {}, "holdouts": {}}
    reference = args.names[0]
    test_predictions: dict[str, list[str]] = {}
    lines = [
        f"| variant | val macro-F1 (selection) | test macro-F1 | test F1 "
        f"{' / '.join(LABELS)} | test minus {reference} (paired) |",
        "| --- | ---: | ---: | --- | ---: |",
    ]
    for name in args.names:
        bundle = _bundle(args.work_dir, name)
        if bundle is None:
            raise SystemExit(f"no fit for {name} in {args.work_dir}")
        model = Modelyard(bundle)
        val = quality(split.val.texts, split.val.labels, model.predict(split.val.texts))
        test = split.test
        predicted = test_predictions[name] = model.predict(test.texts)
        b = document_bootstrap(test.labels, predicted, test.documents, LABELS)
        d = paired_difference(
            test.labels, predicted, test_predictions[reference], test.documents, LABELS
        )
        out["ud"][name] = {"val": val, "test": b, "minus_reference": d}
        lines.append(
            f"| {name} | {val['macro_f1']:.4f} | "
            f"{b['macro_f1']:.4f} {interval(b['macro_f1_ci95'])} | "
            + " / ".join(f"{b['f1'][label]:.3f}" for label in LABELS)
            + f" | {'' if name == reference else minus(d)} |"
        )
    lines += [
        "",
        "| held out (trained without it) | n | "
        + " | ".join(args.names)
        + " | "
        + " | ".join(f"{name} minus {reference} (paired)" for name in args.names[1:])
        + " |",
        "| --- | ---: |" + " ---: |" * (2 * len(args.names) - 1),
    ]
    rows, out["holdouts"] = holdout_rows(
        args.data_dir.resolve(),
        split,
        lambda files: {name: _bundle(args.work_dir, name, files) for name in args.names},
        reference,
    )
    lines += rows
    out["load_average_after"] = load_average()
    (args.work_dir / "compare.json").write_text(json.dumps(out, indent=1))
    print("\n".join(lines))
    print(f"load average before {load_before}, after {out['load_average_after']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
