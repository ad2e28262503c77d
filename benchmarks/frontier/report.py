"""The frontier table (markdown) and plot (PNG) from run.py's JSON.

    .venv/bin/python benchmarks/frontier/report.py benchmarks/frontier/results/mnist5k.json \\
        --png benchmarks/frontier/frontier.png

Served images/s is the median over the rounds of one serve setting; the ratio to the
default CNN is taken round by round (both measured minutes apart in the same round) and
given as the median with the lowest and highest round. The verdict checks the three
bars of issue 17 part 5 for every recipe trained over more than one split seed.

``--earlier <json>`` fills the split seeds a row lacks from an earlier run's row of the
same name and recipe (for a run that trained only seed 0 afresh): the table counts them
in the accuracy and says how many; fit times and the fit bar use this run's fits only.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

DEFAULT = "default CNN"
"""The baseline of files written before run.py recorded its own ``baseline``."""
TARGET_ACCURACY = 0.99
TARGET_RATIO = 2.0


def _baseline(data: dict[str, Any]) -> str:
    """The row every ratio and fit time is taken against."""
    name: str = data.get("baseline", DEFAULT)
    return name


def _serving(data: dict[str, Any], settings: str) -> dict[str, dict[str, Any]]:
    """Per model: median images/s, p50, p99 and the ratios to the baseline, round by
    round in round order."""
    base = _baseline(data)
    rows = [r for r in data["serving"] if r["settings"] == settings]
    by_round: dict[int, dict[str, float]] = {}
    for row in rows:
        by_round.setdefault(row["round"], {})[row["model"]] = row["images_per_s"]
    out: dict[str, dict[str, Any]] = {}
    for name in dict.fromkeys(r["model"] for r in rows):
        mine = [r for r in rows if r["model"] == name]
        ratios = [
            by_round[n][name] / by_round[n][base]
            for n in sorted(by_round)
            if name in by_round[n] and base in by_round[n]
        ]
        out[name] = {
            "images_per_s": statistics.median(r["images_per_s"] for r in mine),
            "p50_ms": statistics.median(r["p50_ms"] for r in mine),
            "p99_ms": statistics.median(r["p99_ms"] for r in mine),
            "errors": sum(r["errors"] for r in mine),
            "rounds": len(mine),
            "ratios": ratios,
            "load": [min(r["load_before"] for r in mine), max(r["load_after"] for r in mine)],
        }
    return out


def _recipe(run: dict[str, Any]) -> tuple[str, ...]:
    """What a row's run was trained or made with, less its split seed and file paths
    (a teacher's or source bundle's folder differs from run to run)."""
    if "overrides" in run:
        return tuple(run["overrides"])
    words = run.get("command", "").split()
    return tuple(w for w in words if "/" not in w and not w.startswith("data.split_seed="))


def fill_seeds(data: dict[str, Any], earlier: dict[str, Any], source: str) -> list[str]:
    """Add to each row of ``data`` the split seeds it lacks from ``earlier``'s row of the
    same name, where both runs' seed 0 have the same recipe; each added run records
    ``from``: ``source``. One line per row says what was added or why nothing was."""
    notes = []
    for name, runs in data["trained"].items():
        old = earlier["trained"].get(name)
        if not old or "0" not in old:
            notes.append(f"{name}: no row in {source}")
            continue
        if _recipe(old["0"]) != _recipe(runs["0"]):
            notes.append(f"{name}: recipe differs from {source}'s, seeds not taken")
            continue
        added = sorted((s for s in old if s not in runs), key=int)
        for seed in added:
            runs[seed] = {**old[seed], "from": source}
        if added:
            notes.append(f"{name}: split seeds {', '.join(added)} from {source}")
    return notes


def _fresh(runs: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The runs trained in this run (not taken from an earlier one): fit times compare
    only on one machine state."""
    return [run for run in runs.values() if "from" not in run]


def _accuracy(runs: dict[str, dict[str, Any]]) -> str:
    accs = [run["test_accuracy"] for run in runs.values()]
    if len(accs) == 1:
        return f"{accs[0]:.3f} (seed 0 only)"
    taken = len(runs) - len(_fresh(runs))
    earlier = f", {taken} from an earlier run" if taken else ""
    return f"{statistics.mean(accs):.4f} / {min(accs):.3f} ({len(accs)} seeds{earlier})"


def _fit(runs: dict[str, dict[str, Any]]) -> str:
    fits = [run["fit_seconds"] for run in _fresh(runs) if "fit_seconds" in run]
    walls = [run["train_seconds"] for run in _fresh(runs) if "train_seconds" in run]
    if not fits:
        return "-"
    return f"{statistics.mean(fits):.0f} / {statistics.mean(walls):.0f}"


def table(data: dict[str, Any], settings: str) -> str:
    served = _serving(data, settings)
    lines = [
        "| model | MACs / image | params | test accuracy: mean / min (seeds) "
        f"| served img/s (median) | ratio vs {_baseline(data)}: median [min-max] | p50 / p99 ms "
        "| fit s / train() s (mean over seeds) |",
        "|---|---:|---:|---|---:|---|---:|---:|",
    ]
    for name, runs in data["trained"].items():
        seed0 = runs["0"]
        s = served.get(name)
        macs = seed0.get("macs_per_example")
        params = seed0.get("parameters")
        if s:
            r = s["ratios"]
            ratio = f"**{statistics.median(r):.2f}x** [{min(r):.2f}-{max(r):.2f}]" if r else "-"
            speed = f"{s['images_per_s']:,.0f}"
            lat = f"{s['p50_ms']:.1f} / {s['p99_ms']:.1f}"
        else:
            ratio = speed = lat = "-"
        lines.append(
            f"| {name} | {macs / 1e6:.2f} M | {params:,} | {_accuracy(runs)} | {speed} "
            f"| {ratio} | {lat} | {_fit(runs)} |"
            if macs and params
            else f"| {name} | - | - | {_accuracy(runs)} | {speed} | {ratio} | {lat} "
            f"| {_fit(runs)} |"
        )
    return "\n".join(lines)


def rounds_table(data: dict[str, Any], settings: str) -> str:
    """Per model: images/s and the ratio to the baseline in every round, in round order."""
    rows = [r for r in data["serving"] if r["settings"] == settings]
    rounds = sorted({r["round"] for r in rows})
    rate = {(r["model"], r["round"]): r["images_per_s"] for r in rows}
    lines = [
        f"| model | images/s, rounds {rounds[0]}-{rounds[-1]} | ratio vs {_baseline(data)}, "
        "same round | median ratio |",
        "|---|---|---|---:|",
    ]
    for name, served in _serving(data, settings).items():
        speeds = [f"{rate[name, n]:,.0f}" if (name, n) in rate else "-" for n in rounds]
        ratios = served["ratios"]
        median = f"{statistics.median(ratios):.2f}x" if ratios else "-"
        lines.append(
            f"| {name} | {' '.join(speeds)} | {' '.join(f'{r:.2f}' for r in ratios)} | {median} |"
        )
    return "\n".join(lines)


def verdict(data: dict[str, Any], settings: str) -> list[str]:
    """One line per recipe trained over several seeds: which of the three bars it meets."""
    served = _serving(data, settings)
    trained = data["trained"]
    base = _baseline(data)
    base_fit = statistics.mean(run["fit_seconds"] for run in _fresh(trained[base]))
    lines = []
    for name, runs in trained.items():
        fits = [run["fit_seconds"] for run in _fresh(runs) if "fit_seconds" in run]
        if name == base or len(runs) < 2 or name not in served or not fits:
            continue
        accs = [run["test_accuracy"] for run in runs.values()]
        fit = statistics.mean(fits)
        ratio = statistics.median(served[name]["ratios"])
        bars = {
            f"accuracy mean {statistics.mean(accs):.4f} >= {TARGET_ACCURACY}": statistics.mean(accs)
            >= TARGET_ACCURACY,
            f"served ratio {ratio:.2f}x >= {TARGET_RATIO}x": ratio >= TARGET_RATIO,
            f"fit mean {fit:.1f}s <= {base}'s {base_fit:.1f}s": fit <= base_fit,
        }
        met = ", ".join(f"{k}: {'yes' if ok else 'NO'}" for k, ok in bars.items())
        lines.append(f"- {name} ({len(accs)} seeds): {met}")
    return lines


def plot(data: dict[str, Any], settings_seen: list[str], png: Path) -> None:
    """One panel per serve setting: a point per model (seed 0) and its mean over seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(
        1, len(settings_seen), figsize=(6.5 * len(settings_seen), 4.8), squeeze=False
    )
    for ax, settings in zip(axes[0], settings_seen, strict=True):
        served = _serving(data, settings)
        for name, runs in data["trained"].items():
            if name not in served:
                continue
            x = served[name]["images_per_s"]
            y = runs["0"]["test_accuracy"] * 100
            dots = ax.scatter([x], [y], s=45, label=name)
            accs = [run["test_accuracy"] * 100 for run in runs.values()]
            if len(accs) > 1:  # mean over seeds: a hollow marker joined to seed 0
                mean = statistics.mean(accs)
                ax.scatter([x], [mean], s=45, facecolors="none", edgecolors=dots.get_facecolor())
                ax.plot([x, x], [y, mean], color="grey", linewidth=0.6)
        ax.axhline(TARGET_ACCURACY * 100, color="red", linestyle=":", linewidth=0.8)
        base = served[_baseline(data)]["images_per_s"]
        ax.axvline(base * TARGET_RATIO, color="red", linestyle=":", linewidth=0.8)
        ax.set_xlabel(f"served images/s at c=32, modelyard serve {settings or '(defaults)'}")
        ax.set_ylabel("test accuracy % (filled: split seed 0; hollow: seed mean)")
        ax.legend(fontsize=8, loc="lower left")
    fig.suptitle(f"{data['task']}: accuracy vs served speed (red dotted: the part-5 bars)")
    fig.tight_layout()
    fig.savefig(png, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("json", type=Path)
    parser.add_argument("--png", type=Path, help="write the plot here")
    parser.add_argument(
        "--earlier",
        type=Path,
        help="an earlier run's JSON: the split seeds a row lacks are taken from its row of "
        "the same name and recipe (accuracy only; fit times stay this run's)",
    )
    args = parser.parse_args()
    data = json.loads(args.json.read_text())
    if args.earlier:
        earlier = json.loads(args.earlier.read_text())
        print("\n".join(fill_seeds(data, earlier, args.earlier.name)))
    settings_seen = list(dict.fromkeys(r["settings"] for r in data["serving"]))
    for settings in settings_seen:
        print(f"\n### modelyard serve {settings or '(default settings)'}\n")
        print(table(data, settings))
        print()
        print(rounds_table(data, settings))
        print()
        print("\n".join(verdict(data, settings)))
    if args.png and settings_seen:
        plot(data, settings_seen, args.png)


if __name__ == "__main__":
    main()
