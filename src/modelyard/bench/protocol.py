"""The inference APIs a load run can speak; light, so the ``modelyard`` command can
offer them in ``bench --help`` without loading the engine."""

from __future__ import annotations

from modelyard.choices import Choice


class Protocol(Choice):
    """The inference API a load run speaks (``modelyard bench --protocol``)."""

    v2 = "v2"
    """Open Inference Protocol: ``/v2/models/<name>/infer``."""
    v1 = "v1"
    """The simple API: ``/v1/models/<name>:predict``."""
