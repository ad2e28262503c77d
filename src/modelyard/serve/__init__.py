"""Serving: a protocol-free core (batching, runtime) under thin HTTP routes; no torch."""
