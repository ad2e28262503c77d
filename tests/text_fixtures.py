"""Small labelled sentences written for the tests (not copied from any treebank), and
writers that put them into CoNLL-U or table files, so text tests run without
../shared/datasets/ud."""

from __future__ import annotations

import json
from pathlib import Path

SENTENCES: dict[str, list[str]] = {
    "da": [
        "Jeg har ikke tid i dag, men måske i morgen.",
        "Hvor ligger den nærmeste togstation?",
        "Vi spiste frokost sammen med hendes forældre.",
        "Det regner meget i København om efteråret.",
        "Han købte en ny cykel til sin datter.",
        "Kan du hjælpe mig med at bære kassen?",
        "Bogen handler om en dreng, der rejser alene.",
        "Vores hund er bange for torden og fyrværkeri.",
        "Hun arbejder som sygeplejerske på hospitalet.",
        "Børnene leger udenfor hele eftermiddagen.",
        "Kommunen vil bygge flere boliger næste år.",
        "Jeg synes, at filmen var alt for lang.",
    ],
    "sv": [
        "Jag har inte tid idag, men kanske i morgon.",
        "Var ligger den närmaste järnvägsstationen?",
        "Vi åt lunch tillsammans med hennes föräldrar.",
        "Det regnar mycket i Stockholm på hösten.",
        "Han köpte en ny cykel till sin dotter.",
        "Kan du hjälpa mig att bära lådan?",
        "Boken handlar om en pojke som reser ensam.",
        "Vår hund är rädd för åska och fyrverkerier.",
        "Hon arbetar som sjuksköterska på sjukhuset.",
        "Barnen leker ute hela eftermiddagen.",
        "Kommunen vill bygga fler bostäder nästa år.",
        "Jag tycker att filmen var alldeles för lång.",
    ],
    "nb": [
        "Jeg har ikke tid i dag, men kanskje i morgen.",
        "Hvor ligger den nærmeste jernbanestasjonen?",
        "Vi spiste lunsj sammen med foreldrene hennes.",
        "Det regner mye i Bergen om høsten.",
        "Han kjøpte en ny sykkel til datteren sin.",
        "Kan du hjelpe meg med å bære kassen?",
        "Boken handler om en gutt som reiser alene.",
        "Hunden vår er redd for torden og fyrverkeri.",
        "Hun jobber som sykepleier på sykehuset.",
        "Barna leker ute hele ettermiddagen.",
        "Kommunen vil bygge flere boliger neste år.",
        "Jeg synes at filmen var altfor lang.",
    ],
    "nn": [
        "Eg har ikkje tid i dag, men kanskje i morgon.",
        "Kvar ligg den næraste jernbanestasjonen?",
        "Vi åt lunsj saman med foreldra hennar.",
        "Det regnar mykje i Bergen om hausten.",
        "Han kjøpte ein ny sykkel til dottera si.",
        "Kan du hjelpe meg med å bere kassen?",
        "Boka handlar om ein gut som reiser åleine.",
        "Hunden vår er redd for torevêr og fyrverkeri.",
        "Ho arbeider som sjukepleiar på sjukehuset.",
        "Borna leikar ute heile ettermiddagen.",
        "Kommunen vil byggje fleire bustader neste år.",
        "Eg synest at filmen var altfor lang.",
    ],
    "other": [
        "I do not have time today, but maybe tomorrow.",
        "Wo ist der nächste Bahnhof?",
        "We hadden samen met haar ouders geluncht.",
        "Sataa paljon syksyllä Helsingissä.",
        "Hann keypti nýtt hjól handa dóttur sinni.",
        "The book is about a boy who travels alone.",
        "Unser Hund hat Angst vor Gewitter.",
        "Ze werkt als verpleegster in het ziekenhuis.",
        "Lapset leikkivät ulkona koko iltapäivän.",
        "Börnin leika sér úti allan eftirmiðdaginn.",
        "The council wants to build more homes next year.",
        "Ich finde, der Film war viel zu lang.",
    ],
}
LABELS = ("da", "sv", "nb", "nn", "other")


def conllu_text(sentences: list[str]) -> str:
    """A minimal but valid CoNLL-U file: ids, ``# text`` and one line per token.

    Sentence ids name a document of two sentences (``doc0.1``), as many treebanks'
    ids do, so ``data.split_by=document`` has documents to deal out.
    """
    blocks = []
    for i, sentence in enumerate(sentences):
        tokens = sentence.split()
        lines = [f"# sent_id = doc{i // 2}.{i}", f"# text = {sentence}"]
        lines += [
            f"{j}\t{tok}\t{tok.lower()}\tX\t_\t_\t0\tdep\t_\t_" for j, tok in enumerate(tokens, 1)
        ]
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks) + "\n"


def write_ud_fixture(folder: Path, copies: int = 1) -> Path:
    """The files ``task=langid_nordic`` names, under their real names, holding these
    sentences (each label's sentences dealt round-robin over its files).

    ``copies`` repeats each sentence with a numbered suffix, for a bigger training set.
    """
    from modelyard.config import compose_config

    files = compose_config(["task=langid_nordic"]).data.files
    folder.mkdir(parents=True, exist_ok=True)
    for label, sentences in SENTENCES.items():
        names = sorted(name for name, mapped in files.items() if mapped == label)
        expanded = [
            s if c == 0 else f"{s[:-1]} {c}{s[-1]}" for c in range(copies) for s in sentences
        ]
        for k, name in enumerate(names):
            (folder / name).write_text(conllu_text(expanded[k :: len(names)]), encoding="utf-8")
    return folder


def write_jsonl(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
    return path
