"""Shadow evidence for the gate: how often the challenger, run in shadow of the
champion, agreed with it, read from the prediction log (``monitor compare``)."""

from __future__ import annotations

import math

from modelyard.config.schema import PromoteConfig
from modelyard.errors import ModelyardError
from modelyard.promote.gate import ShadowEvidence


def needs_shadow_evidence(cfg: PromoteConfig) -> bool:
    return cfg.min_shadow_requests > 0 or cfg.min_shadow_agreement > 0


def shadow_evidence(
    name: str, champion: str, challenger: str, cfg: PromoteConfig
) -> ShadowEvidence:
    """The agreement of ``challenger`` with ``champion`` on the requests both answered
    in the last ``cfg.shadow_since``; none logged is zero evidence, not an error."""
    from modelyard.monitor.compare import compare

    try:
        found = compare(
            name,
            since=cfg.shadow_since,
            db_url=cfg.prediction_log or None,
            versions=(champion, challenger),
        )
    except ModelyardError as error:
        if "no records of version" not in str(error):
            raise
        return ShadowEvidence(0, math.nan, math.nan, math.nan)
    low, high = found.agreement_ci
    return ShadowEvidence(found.paired, found.agreement, low, high)
