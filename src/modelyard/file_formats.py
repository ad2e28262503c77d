"""The file suffixes modelyard reads, in one import-light home.

Training (``modelyard.data``) and batch prediction (``modelyard.batch_predict``) both
search folders for these; prediction must not import the training data stack, so the
lists live here rather than in either.
"""

from __future__ import annotations

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
"""Images PIL decodes: what an image folder is searched for."""

TABLE_SUFFIXES = (".csv", ".tsv", ".jsonl", ".ndjson", ".parquet")
"""Labelled-text tables, in the order error messages list them."""
