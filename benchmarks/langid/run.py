"""Nordic language identification: modelyard vs the detectors people use, side by side.

    python3 benchmarks/langid/install_peers.py            # once: the peers' venvs
    .venv/bin/python benchmarks/langid/run.py --data-dir ../shared/datasets/ud

One run, one held-out split: modelyard's own `task=langid_nordic` test split of the
UD sentences. Scored on it: modelyard's model (trained here, or --bundle), a
scikit-learn char n-gram TF-IDF + linear SVM trained on the same train split, and
langid.py, py3langid, pycld2 and lingua (each in its own venv, answers mapped onto
da/sv/nb/nn/other by labels.py). Speed is sentences per second on one pinned CPU
core. Cross-genre: modelyard and the baseline are retrained without one treebank
(or language) and tested on all of its sentences. Writes results.json and prints
the markdown tables that RESULTS.md quotes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))

import baseline
import latency
import peers
import report
import ud_split
from intervals import document_bootstrap, paired_difference
from labels import LABELS
from metrics import confusions, quality, speed
from modelyard_side import Modelyard, find_fingerprint, train_modelyard
from timing import load_average, one_core, time_batched, time_single

# --- the environment the figures were measured in --------------------------------------


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def environment() -> dict[str, object]:
    from importlib.metadata import version

    return {
        "date_utc": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu_model(),
        "nproc": os.cpu_count(),
        "python": platform.python_version(),
        "versions": {
            pkg: version(pkg) for pkg in ("modelyard", "onnxruntime", "scikit-learn", "numpy")
        },
        "git_commit": subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
        ).stdout.strip(),
    }


# --- the run ---------------------------------------------------------------------------


def score(name: str, texts: Sequence[str], truth: Sequence[str], predicted: Sequence[str]) -> dict:
    result = quality(texts, truth, predicted)
    print(
        f"  {name:28s} accuracy {result['accuracy']:.4f}  macro-F1 {result['macro_f1']:.4f}",
        flush=True,
    )
    return result


def run_holdouts(args: argparse.Namespace, base: baseline.Baseline, full: ud_split.Split) -> dict:
    """Retrain the baseline (its chosen hyperparameters) and modelyard without each set."""
    results: dict[str, dict] = {}
    for title, files in ud_split.HOLDOUTS.items():
        print(f"cross-genre: without {title}", flush=True)
        split = ud_split.load(args.data_dir, exclude=files)
        seen = split.train.texts + split.val.texts
        test = ud_split.held_out(full, files, seen)
        entry: dict = {
            "files": list(files),
            "n": len(test),
            "texts": test.texts,
            "documents": test.documents,
        }
        entry["truth"] = test.labels
        pipeline = baseline.make(base.ngram_range, base.c).fit(
            split.train.texts, split.train.labels
        )
        entry["sklearn"] = [str(x) for x in pipeline.predict(test.texts)]
        if not args.no_modelyard:
            home = args.work_dir / f"holdout-{files[0].split('-')[0]}"
            trained = train_modelyard(args.data_dir, files, home)
            entry["modelyard_fit_seconds"] = trained["fit_seconds"]
            held = Modelyard(trained["bundle"])
            entry["modelyard"] = held.predict(test.texts)
            entry["modelyard_calibration"] = held.calibration(test.texts, test.labels)
        results[title] = entry
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True, type=Path, help="folder of UD .conllu files")
    parser.add_argument(
        "--bundle", help="a trained langid_nordic bundle (folder or models:/ URI); default: train"
    )
    parser.add_argument("--no-modelyard", action="store_true", help="peers and baseline only")
    parser.add_argument("--no-cross-genre", action="store_true")
    parser.add_argument("--no-latency", action="store_true", help="skip the served latency")
    parser.add_argument("--peers", nargs="*", help="detector names (default: all)")
    parser.add_argument("--cpu", type=int, default=1, help="the CPU timed sections run on")
    parser.add_argument("--work-dir", type=Path, default=HERE / ".work")
    parser.add_argument("--out", type=Path, default=HERE / "results.json")
    args = parser.parse_args(argv)
    args.data_dir = args.data_dir.resolve()
    if not args.data_dir.is_dir():
        parser.error(f"--data-dir {args.data_dir} is not a folder of UD .conllu files")
    missing = peers.missing_venvs()
    if missing:
        parser.error(f"no venv for {missing}: run python3 benchmarks/langid/install_peers.py")

    load_before = load_average()
    env = environment()
    split = ud_split.load(args.data_dir)
    test = split.test
    print(f"split: train {len(split.train)}, val {len(split.val)}, test {len(test)}", flush=True)
    systems: dict[str, dict] = {}

    # The baseline: grid on val, then timed batched prediction on one core.
    base = baseline.fit(split.train.texts, split.train.labels, split.val.texts, split.val.labels)
    with one_core(args.cpu):
        seconds, cpu_seconds = time_batched(base.predict, test.texts)
        single = time_single(base.predict, test.texts[:500])
    systems["sklearn"] = {
        "title": "scikit-learn TF-IDF + LinearSVC",
        "note": f"{base.description}; chosen on val (macro-F1 {base.val_macro_f1:.4f})",
        "predicted": base.predict(test.texts),
        "speed": speed(len(test), seconds, cpu_seconds, single),
        "train_s": base.fit_s,
    }

    # modelyard: the bundle trained on this very split.
    if not args.no_modelyard:
        if args.bundle:
            bundle_ref, trained = args.bundle, {}
        else:
            print("training modelyard (task=langid_nordic) ...", flush=True)
            trained = train_modelyard(args.data_dir, (), args.work_dir / "main")
            bundle_ref = trained["bundle"]
        model = Modelyard(bundle_ref)
        recorded = find_fingerprint(model.bundle.manifest)
        if recorded != split.fingerprint:
            raise SystemExit(
                f"bundle {bundle_ref} was trained on dataset {recorded}, not on this split "
                f"({split.fingerprint}); train it with `modelyard train "
                f"{' '.join(split.overrides)}` or omit --bundle"
            )
        with one_core(args.cpu):
            seconds, cpu_seconds = time_batched(model.predict, test.texts)
            single = time_single(model.predict, test.texts[:500])
        systems["modelyard"] = {
            "title": f"modelyard ({model.bundle.name})",
            "note": f"bundle {_relative(bundle_ref)}",
            "predicted": model.predict(test.texts),
            "speed": speed(len(test), seconds, cpu_seconds, single),
            "train_s": trained.get("fit_seconds"),
            "train_wall_s": trained.get("wall_seconds"),
            "calibration": model.calibration(test.texts, test.labels),
        }

    served = None
    if not args.no_modelyard and not args.no_latency:
        print("single-sentence latency: modelyard serve vs lingua in-process ...", flush=True)
        others = sorted(os.sched_getaffinity(0) - {args.cpu}) or [args.cpu]
        served = latency.measure(bundle_ref, test.texts[:1000], args.cpu, others[0])

    holdouts = {} if args.no_cross_genre else run_holdouts(args, base, split)
    extra = [text for entry in holdouts.values() for text in entry["texts"]]

    for run in peers.RUNS:
        if args.peers and run.detector not in args.peers:
            continue
        print(f"peer {run.title} ...", flush=True)
        answer = peers.run_peer(run, test.texts, extra, args.cpu)
        key = f"{run.detector}:{run.variant}"
        systems[key] = {
            "title": run.title,
            "note": f"{answer['library']}; {run.note}",
            "predicted": answer["labels"][: len(test)],
            "speed": speed(
                answer["timed_n"], answer["timed_s"], answer["timed_cpu_s"], answer["latencies_us"]
            ),
            "load_s": answer["load_s"],
            # What the detector said, per true label (its raw codes, before mapping).
            "code_counts": confusions(test.labels, [str(c) for c in answer["codes"][: len(test)]]),
        }
        at = len(test)
        for entry in holdouts.values():
            entry[key] = answer["labels"][at : at + entry["n"]]
            at += entry["n"]

    print("scores on the held-out test split:")
    for system in systems.values():
        system["quality"] = score(system["title"], test.texts, test.labels, system["predicted"])
    # Intervals resample whole documents: the test split holds whole documents.
    for system in systems.values():
        system["intervals"] = document_bootstrap(
            test.labels, system["predicted"], test.documents, LABELS
        )
    # modelyard's margin over each system, with a paired document-bootstrap 95% interval.
    comparisons = {
        key: paired_difference(
            test.labels,
            systems["modelyard"]["predicted"],
            system["predicted"],
            test.documents,
            LABELS,
        )
        for key, system in systems.items()
        if "modelyard" in systems and key != "modelyard"
    }
    for entry in holdouts.values():
        entry["scores"] = {
            key: {
                "accuracy": sum(p == t for p, t in zip(entry[key], entry["truth"], strict=True))
                / max(entry["n"], 1),
                "accuracy_ci95": document_bootstrap(
                    entry["truth"], entry[key], entry["documents"], LABELS
                )["accuracy_ci95"],
                "confusion": confusions(entry["truth"], entry[key]),
            }
            for key in systems
            if key in entry
        }

    results = {
        "environment": {
            **env,
            "load_average_before": load_before,
            "load_average_after": load_average(),
        },
        "command": " ".join([".venv/bin/python benchmarks/langid/run.py", *sys.argv[1:]]),
        "split": {
            "overrides": list(split.overrides),
            "fingerprint": split.fingerprint,
            "sizes": {name: len(getattr(split, name)) for name in ("train", "val", "test")},
            "test_per_label": {label: test.labels.count(label) for label in LABELS},
        },
        "systems": systems,
        "modelyard_minus": comparisons,
        "served_latency": served,
        "cross_genre": {
            title: {
                k: v
                for k, v in entry.items()
                if k in ("files", "n", "scores", "modelyard_fit_seconds", "modelyard_calibration")
            }
            for title, entry in holdouts.items()
        },
        # The split is reproducible from its overrides (and checked by its fingerprint):
        # labels and sources are kept for the per-source table, not the texts.
        "test": {"labels": test.labels, "groups": test.groups},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, ensure_ascii=False, separators=(",", ":")))
    print(report.markdown(results))
    if served:
        print("\n" + latency.table(served))
    print(f"wrote {args.out}")
    return 0


def _relative(path: str) -> str:
    """A bundle path relative to the repository when it is inside it (for RESULTS.md)."""
    try:
        return str(Path(path).resolve().relative_to(REPO))
    except ValueError:
        return path


if __name__ == "__main__":
    raise SystemExit(main())
