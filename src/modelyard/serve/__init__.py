"""Serving: a protocol-free core (batching, runtime) under thin HTTP routes; no torch.

Owns: the Starlette app and raw-ASGI fast path (bytes in and out only), the
protocol-neutral data plane, batcher, runtime (sessions, hot reload), wire codecs,
metrics, the prediction log writer, feedback, shadow and canary.

May import: ``bundle``, ``features``, ``modality``, ``monitor``, ``registry``,
``registry_client``, ``tracking``; ``registry`` and ``tracking`` (MLflow) only inside
functions, and never torch or Lightning.
"""
