"""Held-out genre: software text (gettext catalogues) for every system trained on UD.

    python3 benchmarks/langid/install_peers.py            # once: the peers' venvs
    .venv/bin/python benchmarks/langid/genre.py --data-dir ../shared/datasets/ud \
        [--bundle default=<bundle> ...] [--wheels <folder>] [--test-packages django ...]

run.py measures on UD: held-out documents of the treebanks training used, and the
Nynorsk treebanks held out in turn. This measures the genre none of them has: the
Danish, Swedish, Bokmål and Nynorsk translations that software ships (user-interface
messages, help and errors): Django, Sphinx and Wagtail's wheels and six Debian
packages (modelyard.data.catalogues fetches the pinned files, sha256-verified, and
keeps translations of at least four words once placeholders and markup are gone).
modelyard (trained here on the default `task=langid_nordic`, UD + word lists, or
each --bundle), the TF-IDF baseline
(trained on the same UD train split, its grid chosen on val as in run.py) and every
peer detector label each string. Intervals resample whole catalogues
(package:catalogue, per language): strings of one catalogue share a translator and
their English sources. Writes .work/genre.json and prints markdown tables.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import baseline
import peers
import ud_split
from intervals import document_bootstrap, paired_accuracy_difference
from labels import LABELS
from modelyard_side import Modelyard, train_modelyard
from timing import load_average

from modelyard.data.catalogues import PACKAGES, load_catalogues

NORDIC = ("da", "sv", "nb", "nn")


def scores(truth: Sequence[str], predicted: Sequence[str], groups: Sequence[str]) -> dict:
    """Accuracy overall and per language, with catalogue-bootstrap 95% intervals, and
    each language's most frequent wrong answers."""
    overall = document_bootstrap(truth, predicted, groups, LABELS)
    out: dict = {
        "n": len(truth),
        "accuracy": overall["accuracy"],
        "accuracy_ci95": overall["accuracy_ci95"],
        "per_language": {},
    }
    for label in NORDIC:
        rows = [i for i, t in enumerate(truth) if t == label]
        if not rows:
            continue
        sub = document_bootstrap(
            [truth[i] for i in rows],
            [predicted[i] for i in rows],
            [groups[i] for i in rows],
            LABELS,
        )
        wrong = Counter(predicted[i] for i in rows if predicted[i] != label)
        out["per_language"][label] = {
            "n": len(rows),
            "catalogues": sub["documents"],
            "accuracy": sub["accuracy"],
            "accuracy_ci95": sub["accuracy_ci95"],
            "wrong": dict(wrong.most_common(3)),
        }
    return out


def by_package(
    truth: Sequence[str], predicted: Sequence[str], packages: Sequence[str]
) -> dict[str, dict[str, float]]:
    """Point accuracy per package and language (no intervals: a few catalogues each)."""
    cells: dict[str, dict[str, list[int]]] = {}
    for t, p, pkg in zip(truth, predicted, packages, strict=True):
        cell = cells.setdefault(pkg, {}).setdefault(t, [0, 0])
        cell[0] += t == p
        cell[1] += 1
    return {
        pkg: {label: right / n for label, (right, n) in sorted(row.items())}
        for pkg, row in cells.items()
    }


def _cell(value: float, interval: Sequence[float]) -> str:
    return f"{value:.3f} [{interval[0]:.3f}, {interval[1]:.3f}]"


def markdown(results: dict) -> str:
    systems = results["systems"]
    lines = [
        "| system | accuracy, all | " + " | ".join(f"{label} (n)" for label in NORDIC) + " |",
        "| --- | ---: | " + " | ".join("---:" for _ in NORDIC) + " |",
    ]
    for system in systems.values():
        s = system["scores"]
        cells = []
        for label in NORDIC:
            row = s["per_language"].get(label)
            if row is None:
                cells.append("-")
                continue
            wrong = ", ".join(f"->{k} {v}" for k, v in row["wrong"].items())
            cells.append(
                f"{_cell(row['accuracy'], row['accuracy_ci95'])} ({row['n']})"
                + (f" {wrong}" if wrong else "")
            )
        lines.append(
            f"| {system['title']} | {_cell(s['accuracy'], s['accuracy_ci95'])} | "
            + " | ".join(cells)
            + " |"
        )
    if results["minus"]:
        reference = next(iter(systems.values()))["title"]
        lines += [
            "",
            f"| {reference} minus | accuracy difference | 95% interval (paired, catalogues) |",
            "| --- | ---: | ---: |",
        ]
        for key, diff in results["minus"].items():
            lines.append(
                f"| {systems[key]['title']} | {diff['difference']:+.4f} | "
                f"[{diff['ci95_low']:+.4f}, {diff['ci95_high']:+.4f}] |"
            )
    packages = sorted({pkg for s in systems.values() for pkg in s["by_package"]})
    lines += [
        "",
        "| system | " + " | ".join(packages) + " |",
        "| --- | " + " | ".join("---" for _ in packages) + " |",
    ]
    for system in systems.values():
        row = system["by_package"]
        lines.append(
            f"| {system['title']} | "
            + " | ".join(
                " ".join(f"{label} {acc:.2f}" for label, acc in row.get(pkg, {}).items())
                for pkg in packages
            )
            + " |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True, type=Path, help="folder of UD .conllu files")
    parser.add_argument(
        "--bundle",
        action="append",
        default=[],
        metavar="TITLE=BUNDLE",
        help="a trained langid_nordic bundle to score (repeatable); default: train one",
    )
    parser.add_argument("--wheels", type=Path, help="folder holding (or to hold) the wheels")
    parser.add_argument(
        "--test-packages",
        nargs="*",
        default=list(PACKAGES),
        help="packages whose catalogues are scored (others may have been trained on)",
    )
    parser.add_argument(
        "--peers", nargs="*", help="detector names (default: all; none: --peers alone)"
    )
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--cpu", type=int, default=None, help="pin the peers to this CPU")
    parser.add_argument("--work-dir", type=Path, default=HERE / ".work")
    parser.add_argument("--out", type=Path, default=HERE / ".work" / "genre.json")
    args = parser.parse_args(argv)
    args.data_dir = args.data_dir.resolve()
    missing = [] if args.peers == [] else peers.missing_venvs()
    if missing:
        parser.error(f"no venv for {missing}: run python3 benchmarks/langid/install_peers.py")
    load_before = load_average()
    started = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")

    items = load_catalogues(args.test_packages, args.wheels)
    texts = [item.text for item in items]
    truth = [item.label for item in items]
    groups = [f"{item.label}/{item.group}" for item in items]
    packages = [item.package for item in items]
    print(
        f"genre: {len(items)} strings in {len(set(groups))} catalogues; "
        + ", ".join(f"{k} {v}" for k, v in sorted(Counter(truth).items())),
        flush=True,
    )

    answers: dict[str, tuple[str, list[str]]] = {}
    bundles = [tuple(b.split("=", 1)) for b in args.bundle]
    if not bundles:
        print("training modelyard (task=langid_nordic, held-out fit) ...", flush=True)
        trained = train_modelyard(args.data_dir, (), args.work_dir / "genre-main")
        bundles = [("default", trained["bundle"])]
    for title, bundle in bundles:
        model = Modelyard(bundle)
        answers[f"modelyard:{title}"] = (
            f"modelyard ({model.bundle.name}, {title})",
            model.predict(texts),
        )
    if not args.no_baseline:
        split = ud_split.load(args.data_dir)
        base = baseline.fit(
            split.train.texts, split.train.labels, split.val.texts, split.val.labels
        )
        answers["sklearn"] = ("scikit-learn TF-IDF + LinearSVC", base.predict(texts))
    for run in peers.RUNS:
        if args.peers is not None and run.detector not in args.peers:
            continue
        print(f"peer {run.title} ...", flush=True)
        answer = peers.run_peer(run, texts, [], args.cpu)
        answers[f"{run.detector}:{run.variant}"] = (run.title, answer["labels"][: len(texts)])

    systems = {
        key: {
            "title": title,
            "scores": scores(truth, predicted, groups),
            "by_package": by_package(truth, predicted, packages),
            "predicted": predicted,
        }
        for key, (title, predicted) in answers.items()
    }
    first = next(iter(systems))
    minus = {
        key: paired_accuracy_difference(
            truth, systems[first]["predicted"], system["predicted"], groups, LABELS
        )
        for key, system in systems.items()
        if key != first
    }
    results = {
        "started_utc": started,
        "load_average_before": load_before,
        "load_average_after": load_average(),
        "command": " ".join([".venv/bin/python benchmarks/langid/genre.py", *sys.argv[1:]]),
        "packages": {
            name: {"wheel": PACKAGES[name].filename, "sha256": PACKAGES[name].sha256}
            for name in args.test_packages
        },
        "texts": texts,
        "truth": truth,
        "groups": groups,
        "systems": systems,
        "minus": minus,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, ensure_ascii=False))
    print(markdown(results))
    print(f"load average before {load_before}, after {results['load_average_after']}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
