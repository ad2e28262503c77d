"""Does training on catalogue text help? Leave one package group out, paired with the default.

    .venv/bin/python benchmarks/langid/genre_train.py --data-dir ../shared/datasets/ud \
        [--wheels <folder>] [--reuse]

Leave-package-out folds: the default `task=langid_nordic` training split plus the
phrases of Django's catalogues, scored on Sphinx and Wagtail's; plus Sphinx and
Wagtail's, scored on Django's (PyPI's only Nynorsk); plus all three PyPI packages,
scored on the Debian packages; plus the Debian packages, scored on the PyPI ones.
Each fold's model and the default model (no catalogue text) are scored on the same
strings, and on the same held-out UD val and test documents (the catalogue text
joins the training split only), with paired bootstrap intervals: catalogues for the
genre, documents for UD. --reuse takes the bundles of an earlier run from the work
folder. Writes .work/genre_train.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import ud_split
from holdouts import holdout_rows, interval
from intervals import document_bootstrap, paired_accuracy_difference, paired_difference
from labels import LABELS
from metrics import quality
from modelyard_side import Modelyard, train_modelyard
from timing import load_average

from modelyard.data.catalogues import DEBIAN_PACKAGES, load_catalogues

PYPI = ("django", "sphinx", "wagtail")
DEBIAN = tuple(DEBIAN_PACKAGES)
FOLDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # name: (trained on, scored on)
    "default": ((), ()),
    "django": (("django",), ("sphinx", "wagtail")),
    "sw": (("sphinx", "wagtail"), ("django",)),
    "pypi": (PYPI, DEBIAN),
    "debian": (DEBIAN, PYPI),
    "debian-nn": (DEBIAN, PYPI),
}
OVERRIDES: dict[str, tuple[str, ...]] = {
    # with the opt-in Nynorsk word list (Hunspell-split wordfreq, follow-up above)
    "debian-nn": ("+data.word_lists.nn=nn",),
}


def bundle(name: str, args: argparse.Namespace, exclude: Sequence[str] = ()) -> str:
    home = args.work_dir / ("genre-main" if name == "default" else f"genre-plus-{name}")
    if exclude:
        home = home.with_name(f"{home.name}-without-{exclude[0].split('-')[0]}")
    result = home / "train_result.json"
    if not (args.reuse and result.exists()):
        packages = FOLDS[name][0]
        extra = ["--catalogues", *packages, *(["--wheels", str(args.wheels)] * bool(args.wheels))]
        train_modelyard(
            args.data_dir,
            exclude,
            home,
            OVERRIDES.get(name, ()),
            extra_args=extra if packages else (),
        )
    return str(json.loads(result.read_text())["bundle"])


def holdouts(name: str, args: argparse.Namespace, split: ud_split.Split) -> list[str]:
    """The Nynorsk treebanks held out in turn (run.py's cross-genre rows), for the
    default and for fold ``name``, paired on the same held-out documents."""
    lines = [
        "",
        f"| held out (trained without it) | n | default | + {name} catalogues "
        "| minus default (paired, documents) |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    rows, _ = holdout_rows(
        args.data_dir,
        split,
        lambda files: {"default": bundle("default", args, files), name: bundle(name, args, files)},
        "default",
        reference_wrong=False,
    )
    return lines + rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True, type=Path)
    parser.add_argument("--wheels", type=Path)
    parser.add_argument("--reuse", action="store_true", help="bundles of an earlier run")
    parser.add_argument(
        "--holdout",
        choices=[name for name in FOLDS if name != "default"],
        help="also hold out each Nynorsk treebank for the default and this fold",
    )
    parser.add_argument("--work-dir", type=Path, default=HERE / ".work")
    args = parser.parse_args(argv)
    args.data_dir = args.data_dir.resolve()
    load_before = load_average()
    models = {name: Modelyard(bundle(name, args)) for name in FOLDS}
    split = ud_split.load(args.data_dir)
    test = split.test
    val = {name: model.predict(split.val.texts) for name, model in models.items()}
    ud = {name: model.predict(test.texts) for name, model in models.items()}
    out: dict = {"load_average_before": load_before, "ud": {}, "genre": {}}
    lines = [
        "| model | UD val macro-F1 (selection) | UD test macro-F1 | UD F1 da | UD F1 nb "
        "| minus default, test macro-F1 (paired) |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, predicted in ud.items():
        b = document_bootstrap(test.labels, predicted, test.documents, LABELS)
        d = paired_difference(test.labels, predicted, ud["default"], test.documents, LABELS)
        v = quality(split.val.texts, split.val.labels, val[name])["macro_f1"]
        out["ud"][name] = {"bootstrap": b, "minus_default": d, "val_macro_f1": v}
        lines.append(
            f"| {name} | {v:.4f} | {b['macro_f1']:.4f} {interval(b['macro_f1_ci95'])} | "
            f"{b['f1']['da']:.3f} {interval(b['f1_ci95']['da'])} | "
            f"{b['f1']['nb']:.3f} {interval(b['f1_ci95']['nb'])} | "
            + (
                ""
                if name == "default"
                else f"{d['difference']:+.4f} [{d['ci95_low']:+.4f}, {d['ci95_high']:+.4f}]"
            )
            + " |"
        )
    lines += [
        "",
        "| fold: trained on + | scored on | n | default | fold | per language default -> fold "
        "| fold minus default (paired, catalogues) |",
        "| --- | --- | ---: | ---: | ---: | --- | ---: |",
    ]
    for name, (trained, scored) in FOLDS.items():
        if not scored:
            continue
        items = load_catalogues(scored, args.wheels)
        texts = [i.text for i in items]
        truth = [i.label for i in items]
        groups = [f"{i.label}/{i.group}" for i in items]
        base = models["default"].predict(texts)
        mine = models[name].predict(texts)
        b0 = document_bootstrap(truth, base, groups, LABELS)
        b1 = document_bootstrap(truth, mine, groups, LABELS)
        d = paired_accuracy_difference(truth, mine, base, groups, LABELS)
        per = {}
        for label in sorted(set(truth)):
            rows = [k for k, t in enumerate(truth) if t == label]
            per[label] = (
                sum(base[k] == label for k in rows) / len(rows),
                sum(mine[k] == label for k in rows) / len(rows),
            )
        out["genre"][name] = {"n": len(items), "default": b0, "fold": b1, "minus": d, "per": per}
        lines.append(
            f"| {' + '.join(trained)} | {' + '.join(scored)} | {len(items)} | "
            f"{b0['accuracy']:.3f} {interval(b0['accuracy_ci95'])} | "
            f"{b1['accuracy']:.3f} {interval(b1['accuracy_ci95'])} | "
            + ", ".join(f"{k} {a:.3f}->{c:.3f}" for k, (a, c) in per.items())
            + f" | {d['difference']:+.4f} [{d['ci95_low']:+.4f}, {d['ci95_high']:+.4f}] |"
        )
    if args.holdout:
        lines += holdouts(args.holdout, args, split)
    out["load_average_after"] = load_average()
    (args.work_dir / "genre_train.json").write_text(json.dumps(out, indent=1))
    print("\n".join(lines))
    print(f"load average before {load_before}, after {out['load_average_after']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
