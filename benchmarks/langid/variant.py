"""Score one training variant of langid_nordic: grouped val and test per class, and
optionally the Nynorsk hold-outs (modelyard only; the detectors' answers do not
depend on modelyard's training, see run.py for them).

    .venv/bin/python benchmarks/langid/variant.py --data-dir ../shared/datasets/ud \
        --name nn --override +data.word_lists.nn=nn [--holdout] \
        [--catalogues dpkg apt ... --catalogue-cap 500 --catalogue-labels nn]

Select variants on ``val`` (grouped, whole documents); the hold-out genres are for
reporting once, not for choosing. Writes .work/variant-<name>.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import ud_split
from metrics import quality
from modelyard_side import Modelyard, train_modelyard

NYNORSK = ("spoken Nynorsk (NynorskLIA)", "written Nynorsk (Nynorsk)")


def scored(truth: list[str], predicted: list[str], texts: list[str]) -> dict:
    result = quality(texts, truth, predicted)
    wrong = Counter(f"{a}->{b}" for a, b in zip(truth, predicted, strict=True) if a != b)
    return {
        "n": len(truth),
        "accuracy": round(result["accuracy"], 4),
        "macro_f1": round(result["macro_f1"], 4),
        "f1": {label: round(f1, 3) for label, f1 in result["f1"].items()},
        "confusions": dict(wrong.most_common(8)),
    }


def catalogue_args(args: argparse.Namespace) -> list[str]:
    """train_modelyard.py's arguments for extra text in training: a JSON-lines file,
    catalogue phrases (none without --extra-text or --catalogues)."""
    extra = [f"--extra-text={args.extra_text.resolve()}"] if args.extra_text else []
    if not args.catalogues:
        return extra
    extra += ["--catalogues", *args.catalogues]
    if args.catalogue_cap is not None:
        extra.append(f"--catalogue-cap={args.catalogue_cap}")
    if args.catalogue_labels:
        extra += ["--catalogue-labels", *args.catalogue_labels]
    return extra


def fit(args: argparse.Namespace, exclude: Sequence[str], home: Path, extra: list[str]) -> dict:
    """Train the variant without ``exclude`` in ``home``, or with --reuse take the fit
    already there."""
    result = home / "train_result.json"
    if args.reuse and result.exists():
        return dict(json.loads(result.read_text()))
    return train_modelyard(args.data_dir.resolve(), exclude, home, args.override, extra)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True, type=Path)
    parser.add_argument("--name", required=True)
    parser.add_argument("--override", nargs="*", default=[])
    parser.add_argument("--holdout", action="store_true", help="also the Nynorsk hold-outs")
    parser.add_argument("--work-dir", type=Path, default=HERE / ".work")
    parser.add_argument(
        "--catalogues", nargs="*", default=[], help="also train on these packages' phrases"
    )
    parser.add_argument("--catalogue-cap", type=int, help="at most this many per label")
    parser.add_argument("--catalogue-labels", nargs="*", help="only these labels' phrases")
    parser.add_argument(
        "--reuse", action="store_true", help="take fits an earlier run left in --work-dir"
    )
    parser.add_argument(
        "--extra-text", type=Path, help="JSON lines (text, label, group) to train on too"
    )
    args = parser.parse_args()
    data = args.data_dir.resolve()
    out: dict = {"name": args.name, "overrides": args.override}
    extra = catalogue_args(args)
    if extra:
        out["catalogues"] = extra
    trained = fit(args, [], args.work_dir / f"variant-{args.name}", extra)
    out["fit_seconds"] = trained["fit_seconds"]
    split = ud_split.load(data)  # val and test do not depend on the word lists
    model = Modelyard(trained["bundle"])
    for part in ("val", "test"):
        sentences = getattr(split, part)
        predicted = model.predict(sentences.texts)
        out[part] = scored(sentences.labels, predicted, sentences.texts)
    for title in NYNORSK if args.holdout else ():
        files = ud_split.HOLDOUTS[title]
        home = args.work_dir / f"variant-{args.name}-without-{files[0].split('-')[0]}"
        held = fit(args, files, home, extra)
        without = ud_split.load(data, exclude=files)
        test = ud_split.held_out(split, files, without.train.texts + without.val.texts)
        predicted = Modelyard(held["bundle"]).predict(test.texts)
        out[title] = scored(test.labels, predicted, test.texts)
    print(json.dumps(out, indent=1))
    (args.work_dir / f"variant-{args.name}.json").write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
