"""Reference profiles of text models: per-text summaries instead of pixel statistics.

Same layout as :func:`modelyard.monitor.profile.build_reference_profile` (features,
predictions, embedding projection), so drift monitoring treats both kinds alike.
The per-text summaries are :func:`modelyard.monitor.summaries.text_summaries`, the
ones the server logs, so served traffic and the reference compare like with like.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from modelyard.monitor.profile import build_profile
from modelyard.monitor.summaries import text_summaries


def build_text_profile(
    texts: Sequence[str],
    probabilities: np.ndarray,
    embeddings: np.ndarray,
    label_names: tuple[str, ...],
) -> dict[str, Any]:
    """Summarise texts (already sampled) and the model's outputs on them."""
    summaries = text_summaries(list(texts))
    return build_profile(summaries, probabilities, embeddings, label_names, kind="text")
