"""Text model figures: training time, held-out quality, cross-genre hold-out, and
prediction throughput on one core (feature extraction included).

Usage (the UD folder from ../shared/datasets/ud, or any folder with the files
task=langid_nordic names):

    taskset -c 0 .venv/bin/python benchmarks/text/bench_text.py --data-dir <ud> --json out.json

Everything trains through the normal flow (``modelyard.train.run.train``) into a
throwaway MODELYARD_HOME, so the figures are the ones a user gets.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

HOLDOUTS = {
    # Spoken, transcribed Nynorsk (LIA): trained only on written Nynorsk, is it still nn?
    "no_nynorsklia": ("no_nynorsklia-ud-train.conllu", "no_nynorsklia-ud-dev.conllu"),
    # Written Nynorsk: trained only on spoken Nynorsk.
    "no_nynorsk": ("no_nynorsk-ud-dev.conllu",),
}


def _train(overrides: list[str], drop: tuple[str, ...] = ()) -> tuple[Any, float]:
    from modelyard.config import compose_config
    from modelyard.train.run import train

    cfg = compose_config(overrides)
    cfg.data.files = {k: v for k, v in cfg.data.files.items() if k not in drop}
    started = time.perf_counter()
    result = train(cfg)
    return result, time.perf_counter() - started


def _throughput(bundle_path: Path, texts: list[str], repeats: int) -> dict[str, float]:
    """Sentences per second of Predictor.predict_texts on one ONNX Runtime thread,
    and how the time splits between feature extraction and the graph."""
    from modelyard import bundle
    from modelyard.features.text import encode_texts
    from modelyard.predictor import Predictor

    loaded = bundle.load(bundle_path)
    predictor = Predictor(loaded, intra_op_threads=1, batch_size=1024)
    predictor.predict_texts(texts[:2048])  # warm-up
    # Wall time and this process's CPU time: on a shared machine the CPU time says
    # what one core does when it is ours, the wall time what we got.
    best = best_cpu = float("inf")
    for _ in range(repeats):
        started, cpu = time.perf_counter(), time.process_time()
        predictor.predict_texts(texts)
        best = min(best, time.perf_counter() - started)
        best_cpu = min(best_cpu, time.process_time() - cpu)
    ordered = sorted(texts, key=len)
    cpu = time.process_time()
    for i in range(0, len(ordered), 1024):
        encode_texts(ordered[i : i + 1024], loaded.preprocessing)  # type: ignore[arg-type]
    features = time.process_time() - cpu
    single = []
    for text in texts[:300]:
        started = time.perf_counter()
        predictor.predict_texts([text])
        single.append(time.perf_counter() - started)
    return {
        "sentences": len(texts),
        "batched_sentences_per_s_wall": len(texts) / best,
        "batched_sentences_per_cpu_s": len(texts) / best_cpu,
        "feature_extraction_share_of_cpu": features / best_cpu,
        "single_sentence_p50_ms": 1000 * float(np.median(single)),
        "single_sentence_p99_ms": 1000 * float(np.quantile(single, 0.99)),
    }


def _holdout(bundle_path: Path, data_dir: Path, files: tuple[str, ...]) -> dict[str, Any]:
    from modelyard import bundle
    from modelyard.data.conllu import read_conllu_sentences
    from modelyard.evaluate import length_buckets
    from modelyard.predictor import Predictor

    loaded = bundle.load(bundle_path)
    texts = [t for f in files for t in read_conllu_sentences(data_dir / f)]
    predicted = Predictor(loaded).predict_texts(texts).predicted
    target = loaded.labels.index("nn")
    labels = np.full(len(texts), target)
    shares = np.bincount(predicted, minlength=len(loaded.labels)) / len(texts)
    return {
        "sentences": len(texts),
        "recall_nn": float((predicted == target).mean()),
        "predicted_share": {
            k: round(float(v), 4) for k, v in zip(loaded.labels, shares, strict=True)
        },
        "recall_by_length": {
            b.name: round(b.accuracy, 4) for b in length_buckets(texts, labels, predicted)
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--json", type=Path, help="write the figures here as JSON")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--copies", type=int, default=4, help="throughput corpus = test x copies")
    parser.add_argument("--skip-holdout", action="store_true")
    parser.add_argument("overrides", nargs="*", help="extra config overrides")
    args = parser.parse_args()
    os.environ.setdefault("MODELYARD_HOME", tempfile.mkdtemp(prefix="bench-text-"))
    base = [
        "task=langid_nordic",
        f"data.path={args.data_dir}",
        "train.progress_bar=false",
        "tracking.register=false",
        *args.overrides,
    ]
    figures: dict[str, Any] = {"load_average_start": os.getloadavg()}
    result, wall = _train(base)
    figures["train"] = {
        "wall_seconds": round(wall, 1),
        "fit_seconds": round(result.fit_seconds, 1),
        "epochs": result.epochs,
        "metrics": {k: round(v, 4) for k, v in result.metrics.items()},
    }
    print(json.dumps(figures["train"], indent=2), flush=True)

    from modelyard.config import compose_config
    from modelyard.data import load_text_dataset

    test = load_text_dataset(compose_config(base).data).test
    corpus = list(test.texts) * args.copies
    figures["throughput"] = _throughput(result.bundle_path, corpus, args.repeats)
    print(json.dumps(figures["throughput"], indent=2), flush=True)

    if not args.skip_holdout:
        figures["cross_genre"] = {}
        for name, files in HOLDOUTS.items():
            held, _ = _train(base, drop=files)
            figures["cross_genre"][name] = {
                "trained_without": list(files),
                "test_macro_f1_without": round(held.metrics["test_macro_f1"], 4),
                **_holdout(held.bundle_path, args.data_dir, files),
            }
            print(name, json.dumps(figures["cross_genre"][name], indent=2), flush=True)
    figures["load_average_end"] = os.getloadavg()
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
