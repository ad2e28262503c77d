"""The frontier report (benchmarks/frontier/report.py): ratios to the baseline taken
round by round, the per-round table, and the part-5 verdict per recipe."""

from __future__ import annotations

from typing import Any

from benchmarks.frontier.report import fill_seeds, rounds_table, table, verdict


def _run(accuracy: float, fit: float) -> dict[str, Any]:
    return {
        "test_accuracy": accuracy,
        "fit_seconds": fit,
        "train_seconds": fit + 5,
        "macs_per_example": 1_800_000,
        "parameters": 1000,
    }


def _served(model: str, round_: int, rate: float) -> dict[str, Any]:
    return {
        "model": model,
        "settings": "",
        "round": round_,
        "images_per_s": rate,
        "p50_ms": 5.0,
        "p99_ms": 20.0,
        "errors": 0,
        "load_before": 1.0,
        "load_after": 1.5,
    }


def _data() -> dict[str, Any]:
    return {
        "task": "mnist5k",
        "baseline": "old",
        "trained": {
            "old": {"0": _run(0.992, 130.0), "1": _run(0.990, 140.0)},
            "fast": {"0": _run(0.990, 50.0), "1": _run(0.988, 60.0)},
            "small": {"0": _run(0.984, 20.0)},
        },
        # round 1's baseline is slow, so its ratio is high: the median of the per-round
        # ratios (2.5) differs from the ratio of the medians (4,000 / 1,500 = 2.67)
        "serving": [
            _served("old", 0, 2000.0),
            _served("fast", 0, 4000.0),
            _served("old", 1, 1000.0),
            _served("fast", 1, 3000.0),
            _served("small", 1, 5000.0),
        ],
    }


def test_rounds_table_gives_each_rounds_ratio_and_their_median() -> None:
    lines = rounds_table(_data(), "").splitlines()
    fast = next(line for line in lines if line.startswith("| fast "))
    small = next(line for line in lines if line.startswith("| small "))
    assert fast == "| fast | 4,000 3,000 | 2.00 3.00 | 2.50x |"
    assert small == "| small | - 5,000 | 5.00 | 5.00x |"


def test_table_takes_the_median_of_per_round_ratios_and_says_seed_counts() -> None:
    text = table(_data(), "")
    fast = next(line for line in text.splitlines() if line.startswith("| fast "))
    assert "**2.50x** [2.00-3.00]" in fast
    assert "0.9890 / 0.988 (2 seeds)" in fast
    assert "0.984 (seed 0 only)" in text


def test_verdict_names_the_bars_a_recipe_misses() -> None:
    lines = verdict(_data(), "")
    assert lines == [
        "- fast (2 seeds): accuracy mean 0.9890 >= 0.99: NO, served ratio 2.50x >= 2.0x: yes, "
        "fit mean 55.0s <= old's 135.0s: yes"
    ]


def _quantize(seed: int, home: str, accuracy: float) -> dict[str, Any]:
    command = f"modelyard export quantize {home}/runs/{seed}/bundle --static --out {home}/q-{seed}"
    return {"command": command, "test_accuracy": accuracy, "split_seed": seed}


def test_fill_seeds_takes_missing_seeds_of_the_same_recipe_only() -> None:
    data = _data()
    data["trained"]["fast"] = {"0": {**_run(0.990, 50.0), "overrides": ["model=cnn_fast"]}}
    data["trained"]["small"]["0"]["overrides"] = ["model=cnn_small", "train.prune=channels"]
    data["trained"]["int8"] = {"0": _quantize(0, "/tmp/new", 0.990)}
    earlier = {
        "trained": {
            "fast": {
                str(s): {**_run(0.98, 70.0), "overrides": ["model=cnn_fast"]} for s in range(3)
            },
            "small": {"0": _run(0.97, 20.0), "1": _run(0.97, 20.0)},  # no pruning
            "int8": {str(s): _quantize(s, "/tmp/old", 0.986) for s in range(2)},
        }
    }
    notes = fill_seeds(data, earlier, "old.json")
    fast = data["trained"]["fast"]
    assert sorted(fast) == ["0", "1", "2"]
    assert fast["0"]["test_accuracy"] == 0.990 and "from" not in fast["0"]
    assert fast["2"]["from"] == "old.json"
    assert sorted(data["trained"]["int8"]) == ["0", "1"]  # paths differ, recipe the same
    assert sorted(data["trained"]["small"]) == ["0"]
    assert notes == [
        "old: no row in old.json",
        "fast: split seeds 1, 2 from old.json",
        "small: recipe differs from old.json's, seeds not taken",
        "int8: split seeds 1 from old.json",
    ]
    line = next(ln for ln in table(data, "").splitlines() if ln.startswith("| fast "))
    # accuracy over all three seeds, fit over this run's only
    assert "0.9833 / 0.980 (3 seeds, 2 from an earlier run)" in line
    assert line.endswith("| 50 / 55 |")
