"""Run one peer detector over sentences, inside that peer's own venv.

    .venvs/<peer>/bin/python peer_worker.py --detector lingua --variant all \
        --input sentences.json --output result.json [--cpu 0]

``sentences.json`` holds {"timed": [...], "extra": [...]}: the timed sentences (the
held-out test split) are classified one call per sentence, as these libraries are
used, with the process pinned to one CPU; the extra sentences (cross-genre sets) are
classified afterwards, untimed. Writes the raw codes, the mapped labels, the model
load time and the per-call latencies of the timed pass.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from labels import DATA_LANGUAGES, to_label

# A classifier returns (language code or None, reliable) for one sentence.
Classify = Callable[[str], tuple[str | None, bool]]

VARIANTS: dict[str, tuple[str, ...]] = {
    "langid": ("all", "restricted"),
    "py3langid": ("all", "restricted"),
    "pycld2": ("reliable", "besteffort"),
    "lingua": ("all", "restricted", "all-low"),
}
FAMILY = {"langid": "langid", "py3langid": "langid", "pycld2": "cld2", "lingua": "lingua"}


def _langid(variant: str) -> tuple[Classify, str]:
    import langid

    if variant == "restricted":
        langid.set_languages(list(DATA_LANGUAGES["langid"]))
    langid.classify("warm up")  # the model is unpacked on first use

    def classify(text: str) -> tuple[str | None, bool]:
        return langid.classify(text)[0], True

    return classify, f"langid {getattr(langid, '__version__', '1.1.6')}"


def _py3langid(variant: str) -> tuple[Classify, str]:
    import py3langid

    if variant == "restricted":
        py3langid.set_languages(list(DATA_LANGUAGES["py3langid"]))
    py3langid.classify("warm up")

    def classify(text: str) -> tuple[str | None, bool]:
        return py3langid.classify(text)[0], True

    return classify, f"py3langid {py3langid.__version__}"


def _pycld2(variant: str) -> tuple[Classify, str]:
    import pycld2

    best_effort = variant == "besteffort"

    def classify(text: str) -> tuple[str | None, bool]:
        try:
            reliable, _, details = pycld2.detect(text, bestEffort=best_effort)
        except pycld2.error:  # invalid UTF-8 after encoding; never seen on UD text
            return None, False
        code = details[0][1]
        # Best effort: take CLD2's top guess whatever its own reliability flag says.
        return (None if code == "un" else code), (True if best_effort else reliable)

    return classify, f"pycld2 {getattr(pycld2, '__version__', '0.42')}"


def _lingua(variant: str) -> tuple[Classify, str]:
    from importlib.metadata import version

    from lingua import IsoCode639_1, LanguageDetectorBuilder

    if variant == "restricted":
        codes = [getattr(IsoCode639_1, code.upper()) for code in DATA_LANGUAGES["lingua"]]
        builder = LanguageDetectorBuilder.from_iso_codes_639_1(*codes)
    else:
        builder = LanguageDetectorBuilder.from_all_languages()
    if variant == "all-low":
        builder = builder.with_low_accuracy_mode()
    detector = builder.with_preloaded_language_models().build()

    def classify(text: str) -> tuple[str | None, bool]:
        language = detector.detect_language_of(text)
        return (None if language is None else language.iso_code_639_1.name.lower()), True

    return classify, f"lingua-language-detector {version('lingua-language-detector')}"


BUILDERS: dict[str, Callable[[str], tuple[Classify, str]]] = {
    "langid": _langid,
    "py3langid": _py3langid,
    "pycld2": _pycld2,
    "lingua": _lingua,
}


def run(detector: str, variant: str, timed: list[str], extra: list[str]) -> dict[str, object]:
    started = time.perf_counter()
    classify, library = BUILDERS[detector](variant)
    load_s = time.perf_counter() - started
    for text in timed[:50]:  # warm caches before timing
        classify(text)
    answers: list[tuple[str | None, bool]] = []
    latencies_ns: list[int] = []
    clock = time.perf_counter_ns
    cpu_start = time.process_time()
    loop_start = clock()
    for text in timed:
        t0 = clock()
        answers.append(classify(text))
        latencies_ns.append(clock() - t0)
    loop_ns = clock() - loop_start
    loop_cpu_s = time.process_time() - cpu_start
    answers += [classify(text) for text in extra]
    family = FAMILY[detector]
    return {
        "detector": detector,
        "variant": variant,
        "library": library,
        "codes": [code for code, _ in answers],
        "reliable": [reliable for _, reliable in answers],
        "labels": [to_label(family, code, reliable) for code, reliable in answers],
        "load_s": load_s,
        "timed_n": len(timed),
        "timed_s": loop_ns / 1e9,
        "timed_cpu_s": loop_cpu_s,
        "latencies_us": [ns / 1000 for ns in latencies_ns],
        "cpu": sorted(os.sched_getaffinity(0)),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--detector", required=True, choices=sorted(VARIANTS))
    parser.add_argument("--variant", required=True)
    parser.add_argument("--input", required=True, type=Path)
    parser.add_argument("--output", required=True, type=Path)
    parser.add_argument("--cpu", type=int, default=None, help="pin to this CPU (one core)")
    args = parser.parse_args()
    if args.variant not in VARIANTS[args.detector]:
        parser.error(f"{args.detector} variants: {', '.join(VARIANTS[args.detector])}")
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    sentences = json.loads(args.input.read_text(encoding="utf-8"))
    result = run(args.detector, args.variant, sentences["timed"], sentences.get("extra", []))
    args.output.write_text(json.dumps(result), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
