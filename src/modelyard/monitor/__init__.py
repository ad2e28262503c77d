"""Watching a model: reference profiles now; drift tests and reports build on them."""

from modelyard.monitor.profile import build_reference_profile, image_summaries

__all__ = ["build_reference_profile", "image_summaries"]
