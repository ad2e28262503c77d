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


def add_catalogues(packages: list[str], wheels: Path | None) -> None:
    """Append the packages' catalogue phrases to the training split (only; val and test
    stay UD documents) wherever train() loads the text dataset."""
    import modelyard.data as data_module
    from modelyard.data.catalogues import load_catalogues, training_split
    from modelyard.data.text import with_extra_training

    original = data_module.load_text_dataset

    def with_catalogues(cfg):  # type: ignore[no-untyped-def]
        dataset = original(cfg)
        items = load_catalogues(packages, wheels)
        return with_extra_training(dataset, training_split(items, dataset.class_names))

    data_module.load_text_dataset = with_catalogues


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
    args = parser.parse_args()
    if args.catalogues:
        add_catalogues(args.catalogues, args.wheels)
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
