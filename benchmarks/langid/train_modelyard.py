"""Train modelyard's langid_nordic model on the UD files, optionally without some.

    .venv/bin/python benchmarks/langid/train_modelyard.py --data-dir DIR \
        [--exclude FILE ...] [--override key=value ...] --output result.json

The same `train()` that `modelyard train task=langid_nordic data.path=DIR` calls,
with ``data.files`` minus the excluded files (the cross-genre runs). Run it with
MODELYARD_HOME pointing at a scratch folder to keep its runs out of yours.
Writes {"bundle": path, "fit_seconds": ..., "epochs": ..., "fingerprint": ...}.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ud_split import drop_files, task_overrides

from modelyard.config.compose import compose_config
from modelyard.train.run import train


def add_catalogues(
    packages: list[str],
    wheels: Path | None,
    cap: int | None = None,
    labels: list[str] | None = None,
) -> None:
    """Append the packages' catalogue phrases to the training split (only; val and test
    stay UD documents) wherever train() loads the text dataset: only ``labels``' (all
    when None), at most ``cap`` per label, a seeded sample (``sample_per_label``)."""
    import modelyard.data as data_module
    from modelyard.data.catalogues import load_catalogues, sample_per_label, training_split

    original = data_module.load_text_dataset

    def with_catalogues(cfg):  # type: ignore[no-untyped-def]
        dataset = original(cfg)
        items = load_catalogues(packages, wheels)
        if labels is not None:
            items = [item for item in items if item.label in labels]
        if cap is not None:
            items = sample_per_label(items, cap, cfg.split_seed)
        extra = training_split(items, dataset.class_names)
        return data_module.add_training_text(dataset, cfg, "catalogues", extra)

    data_module.load_text_dataset = with_catalogues


def add_extra_text(path: Path) -> None:
    """Append the rows of a JSON-lines file (``text``, ``label``, ``group``) to the
    training split wherever train() loads the text dataset: a way to try a text source
    on grouped validation before it earns a module of its own."""
    import numpy as np

    import modelyard.data as data_module
    from modelyard.data.text import TextSplit, as_text_array, with_extra_training

    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    original = data_module.load_text_dataset

    def with_rows(cfg):  # type: ignore[no-untyped-def]
        dataset = original(cfg)
        names = list(dataset.class_names)
        extra = TextSplit(
            as_text_array([row["text"] for row in rows]),
            np.asarray([names.index(row["label"]) for row in rows], dtype=np.int64),
            as_text_array([row["group"] for row in rows]),
        )
        return with_extra_training(dataset, extra)

    data_module.load_text_dataset = with_rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True, type=Path)
    parser.add_argument("--exclude", nargs="*", default=[])
    parser.add_argument("--override", nargs="*", default=[])
    parser.add_argument("--output", required=True, type=Path)
    parser.add_argument(
        "--catalogues",
        nargs="*",
        default=[],
        help="also train on these packages' gettext catalogues (genre_train.py)",
    )
    parser.add_argument("--wheels", type=Path, help="folder holding the catalogue wheels")
    parser.add_argument(
        "--catalogue-cap", type=int, help="at most this many catalogue phrases per label"
    )
    parser.add_argument(
        "--catalogue-labels", nargs="*", help="only these labels' catalogue phrases"
    )
    parser.add_argument(
        "--extra-text", type=Path, help="JSON lines of text, label, group to train on too"
    )
    args = parser.parse_args()
    if args.extra_text:
        add_extra_text(args.extra_text)
    if args.catalogues:
        add_catalogues(args.catalogues, args.wheels, args.catalogue_cap, args.catalogue_labels)
    # The held-out fit is what is scored here: a refit would have seen the test split.
    cfg = compose_config([*task_overrides(args.data_dir), "train.refit=false", *args.override])
    cfg = replace(cfg, data=drop_files(cfg.data, args.exclude))
    result = train(cfg)
    args.output.write_text(
        json.dumps(
            {
                "bundle": str(result.bundle_path),
                "fit_seconds": result.fit_seconds,
                "epochs": result.epochs,
                "metrics": result.metrics,
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
