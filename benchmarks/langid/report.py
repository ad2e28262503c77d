"""Markdown tables from a results.json written by run.py.

.venv/bin/python benchmarks/langid/report.py benchmarks/langid/results.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from labels import LABELS
from metrics import BUCKETS

# The cross-genre table shows each peer in its default configuration only.
CROSS_GENRE_COLUMNS = (
    "modelyard",
    "sklearn",
    "langid:all",
    "py3langid:all",
    "pycld2:reliable",
    "lingua:all",
)


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _rate(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:,.1f}"


def _seconds(system: dict) -> str:
    """Training time for the trained systems, model load time (in brackets) for peers."""
    if system.get("train_s") is not None:
        return f"{system['train_s']:.1f}"
    if system.get("load_s") is not None:
        return f"({system['load_s']:.1f})"
    return ""


def main_table(results: dict) -> list[str]:
    lines = [
        _row(
            [
                "system",
                "accuracy",
                "macro-F1",
                *[f"F1 {lb}" for lb in LABELS],
                "sentences/s",
                "sentences/CPU-s",
                "p50 µs/sentence",
                "train (load) s",
            ]
        ),
        _row(["---"] + ["---:"] * (len(LABELS) + 6)),
    ]
    ranked = sorted(
        results["systems"].values(), key=lambda s: s["quality"]["macro_f1"], reverse=True
    )
    for system in ranked:
        q, sp = system["quality"], system["speed"]
        lines.append(
            _row(
                [
                    system["title"],
                    f"{q['accuracy']:.4f}",
                    f"**{q['macro_f1']:.4f}**",
                    *[f"{q['f1'][lb]:.3f}" for lb in LABELS],
                    _rate(sp["sentences_per_s"]),
                    _rate(sp["sentences_per_cpu_s"]) if "sentences_per_cpu_s" in sp else "",
                    f"{sp['latency_p50_us']:,.0f}" if "latency_p50_us" in sp else "",
                    _seconds(system),
                ]
            )
        )
    return lines


def length_table(results: dict) -> list[str]:
    first = next(iter(results["systems"].values()))["quality"]["by_length"]
    header = ["system"] + [
        f"{b} words (n={first[b]['n']}) acc / macro-F1" for b in BUCKETS if b in first
    ]
    lines = [_row(header), _row(["---"] + ["---:"] * (len(header) - 1))]
    for system in results["systems"].values():
        by = system["quality"]["by_length"]
        lines.append(
            _row(
                [system["title"]]
                + [f"{by[b]['accuracy']:.3f} / {by[b]['macro_f1']:.3f}" for b in BUCKETS if b in by]
            )
        )
    return lines


def source_table(results: dict) -> list[str]:
    """Accuracy per treebank file of the test split (default configurations only)."""
    test = results["test"]
    titles = {key: s["title"] for key, s in results["systems"].items()}
    columns = [c for c in CROSS_GENRE_COLUMNS if c in titles]
    lines = [
        _row(["test sentences from", "label", "n", *[titles[c] for c in columns]]),
        _row(["---", "---", "---:"] + ["---:"] * len(columns)),
    ]
    for group in sorted(set(test["groups"])):
        index = [i for i, g in enumerate(test["groups"]) if g == group]
        truth = [test["labels"][i] for i in index]
        cells = []
        for column in columns:
            predicted = results["systems"][column]["predicted"]
            right = sum(predicted[i] == t for i, t in zip(index, truth, strict=True))
            cells.append(f"{right / len(index):.3f}")
        lines.append(_row([group.removesuffix(".conllu"), truth[0], str(len(index)), *cells]))
    return lines


def margin_table(results: dict) -> list[str]:
    """modelyard's macro-F1 minus each system's, with its 95% bootstrap interval."""
    margins = results.get("modelyard_minus") or {}
    if not margins:
        return ["(modelyard not run)"]
    lines = [
        _row(
            ["modelyard minus", "macro-F1 difference", "95% interval (paired document bootstrap)"]
        ),
        _row(["---", "---:", "---:"]),
    ]
    for key, margin in margins.items():
        lines.append(
            _row(
                [
                    results["systems"][key]["title"],
                    f"{margin['difference']:+.4f}",
                    f"[{margin['ci95_low']:+.4f}, {margin['ci95_high']:+.4f}]",
                ]
            )
        )
    return lines


def _ci(value: float, interval: list[float]) -> str:
    return f"{value:.3f} [{interval[0]:.3f}, {interval[1]:.3f}]"


def interval_table(results: dict) -> list[str]:
    """Every system on the held-out documents, with 95% document-bootstrap intervals."""
    systems = [s for s in results["systems"].values() if "intervals" in s]
    if not systems:
        return ["(no intervals in this results.json)"]
    lines = [
        _row(["system", "macro-F1", "accuracy", *[f"F1 {lb}" for lb in LABELS]]),
        _row(["---"] + ["---:"] * (len(LABELS) + 2)),
    ]
    for system in sorted(systems, key=lambda s: s["intervals"]["macro_f1"], reverse=True):
        i = system["intervals"]
        lines.append(
            _row(
                [
                    system["title"],
                    _ci(i["macro_f1"], i["macro_f1_ci95"]),
                    _ci(i["accuracy"], i["accuracy_ci95"]),
                    *[_ci(i["f1"][lb], i["f1_ci95"][lb]) for lb in LABELS],
                ]
            )
        )
    documents = systems[0]["intervals"]["documents"]
    return [f"Test documents: {documents} (intervals resample them, 2,000 times).", "", *lines]


def calibration_table(results: dict) -> list[str]:
    """modelyard's ECE and what min_confidence thresholds do, on test and hold-outs."""
    rows = []
    main = results["systems"].get("modelyard", {}).get("calibration")
    if main:
        rows.append(("held-out documents (test split)", main))
    for title, entry in (results.get("cross_genre") or {}).items():
        if entry.get("modelyard_calibration"):
            rows.append((f"held out: {title}", entry["modelyard_calibration"]))
    if not rows:
        return ["(no calibration figures)"]
    thresholds = list(rows[0][1]["min_confidence"])
    lines = [
        _row(
            [
                "sentences",
                "temperature",
                "ECE",
                "accuracy",
                "mean confidence",
                *[f"min_confidence {t}: answered / accuracy" for t in thresholds],
            ]
        ),
        _row(["---"] + ["---:"] * (4 + len(thresholds))),
    ]
    for title, c in rows:
        cells = []
        for t in thresholds:
            th = c["min_confidence"][t]
            accuracy = th["accuracy_answered"]
            cells.append(
                f"{th['answered']:.3f} / " + ("" if accuracy is None else f"{accuracy:.3f}")
            )
        temperature = c.get("temperature")
        lines.append(
            _row(
                [
                    title,
                    "" if temperature is None else f"{temperature:.2f}",
                    f"{c['ece']:.4f}",
                    f"{c['accuracy']:.3f}",
                    f"{c['mean_confidence']:.3f}",
                    *cells,
                ]
            )
        )
    return lines


def cross_genre_table(results: dict) -> list[str]:
    holdouts = results.get("cross_genre") or {}
    if not holdouts:
        return ["(cross-genre not run)"]
    titles = {key: s["title"] for key, s in results["systems"].items()}
    columns = [c for c in CROSS_GENRE_COLUMNS if c in titles]
    lines = [
        _row(["held out (trained without it)", "n", *[titles[c] for c in columns]]),
        _row(["---", "---:"] + ["---:"] * len(columns)),
    ]
    for title, entry in holdouts.items():
        cells = []
        for column in columns:
            scored = entry["scores"].get(column)
            if scored is None:
                cells.append("")
                continue
            wrong: dict[str, int] = {}
            for truth, predicted in scored["confusion"].items():
                for label, count in predicted.items():
                    if label != truth:
                        wrong[label] = wrong.get(label, 0) + count
            worst = max(wrong, key=wrong.get) if wrong else None  # type: ignore[arg-type]
            interval = scored.get("accuracy_ci95")
            cells.append(
                f"{scored['accuracy']:.3f}"
                + (f" [{interval[0]:.3f}, {interval[1]:.3f}]" if interval else "")
                + (f" (->{worst} {wrong[worst]})" if worst else "")
            )
        lines.append(_row([title, str(entry["n"]), *cells]))
    return lines


def markdown(results: dict) -> str:
    env = results["environment"]
    split = results["split"]
    parts = [
        f"Measured {env['date_utc']} on {env['cpu']} (nproc {env['nproc']}), Python "
        f"{env['python']}, load average {env['load_average_before']} before and "
        f"{env['load_average_after']} after; commit {env['git_commit']}.",
        f"Held-out split: {split['sizes']} (test per label {split['test_per_label']}), "
        f"dataset fingerprint {split['fingerprint'][:12]}.",
        "",
        *main_table(results),
        "",
        *interval_table(results),
        "",
        *margin_table(results),
        "",
        *calibration_table(results),
        "",
        *length_table(results),
        "",
        *source_table(results),
        "",
        *cross_genre_table(results),
        "",
        "Configurations:",
        *[f"- {s['title']}: {s['note']}" for s in results["systems"].values()],
    ]
    return "\n".join(parts)


if __name__ == "__main__":
    print(markdown(json.loads(Path(sys.argv[1]).read_text())))
