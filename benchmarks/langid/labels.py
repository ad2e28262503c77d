"""Map each detector's answer onto the five labels da, sv, nb, nn, other.

Standard library only: this module is imported both by run.py (modelyard's .venv)
and by peer_worker.py inside each peer's own venv.

What each detector can say, and why the tables below read as they do:

- langid.py's model (97 ISO 639 codes) has `nb`, `nn` *and* a generic `no`
  (Norwegian, trained mostly on Bokmål text); `no` counts as nb. py3langid 0.4
  ships a newer model (140 codes) with `no` and `nn` but no `nb`, and `zxx` (no
  linguistic content, so `other`). Neither has an "unknown" answer.
- CLD2 (pycld2) says `no` for Norwegian, which is Bokmål in CLD2's training data,
  and `nn` for Nynorsk (NORWEGIAN_N). `un` (unknown) and answers CLD2 itself
  marks unreliable (`isReliable` False) count as `other` in the default reading.
- lingua names Bokmål and Nynorsk as separate languages (`nb`, `nn`); it returns
  no language (None) when it cannot decide, which counts as `other`.

Everything else (English, German, Icelandic, an unknown answer, ...) is `other`.
"""

from __future__ import annotations

LABELS: tuple[str, ...] = ("da", "sv", "nb", "nn", "other")
OTHER = "other"

# The codes that carry one of the four Nordic labels; any other code is `other`.
_NORDIC: dict[str, dict[str, str]] = {
    "langid": {"da": "da", "sv": "sv", "nb": "nb", "no": "nb", "nn": "nn"},
    "cld2": {"da": "da", "sv": "sv", "no": "nb", "nb": "nb", "nn": "nn"},
    "lingua": {"da": "da", "sv": "sv", "nb": "nb", "nn": "nn"},
}
DETECTOR_FAMILIES: tuple[str, ...] = tuple(_NORDIC)

# The languages present in the benchmark data, per detector family, for the
# "restricted" variants (a user who knows which languages can occur). The data's
# `other` is English, German, Dutch, Finnish, Icelandic and Faroese.
DATA_LANGUAGES: dict[str, tuple[str, ...]] = {
    "langid": ("da", "sv", "nb", "nn", "no", "en", "de", "nl", "fi", "is", "fo"),
    "py3langid": ("da", "sv", "nn", "no", "en", "de", "nl", "fi", "is", "fo"),
    "lingua": ("da", "sv", "nb", "nn", "en", "de", "nl", "fi", "is"),  # lingua has no Faroese
}


def to_label(family: str, code: str | None, reliable: bool = True) -> str:
    """The benchmark label for one detector answer.

    ``code`` is the detector's language code (case-insensitive; None or empty means
    it gave no answer); ``reliable`` False (CLD2's own flag) makes it `other`.
    """
    if family not in _NORDIC:
        raise ValueError(f"unknown detector family {family!r}; choose from {DETECTOR_FAMILIES}")
    if not code or not reliable:
        return OTHER
    return _NORDIC[family].get(code.strip().lower(), OTHER)
