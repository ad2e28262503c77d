"""Errors a client causes, each with the HTTP status and a message naming the problem."""

from __future__ import annotations

import re

_OBJECT_REPR = re.compile(r"<[^<>]* at 0x[0-9a-fA-F]+>")
"""A Python object's default repr (``<_io.BytesIO object at 0x7f...>``): a library's
message may carry one; it tells a client nothing and leaks internals."""


class ClientError(Exception):
    """A request the server refuses; becomes ``{"error": message}`` with ``status``."""

    status = 400

    def __init__(self, message: str, status: int | None = None):
        message = _OBJECT_REPR.sub("the data", message)
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status


class NotFound(ClientError):
    status = 404


class PayloadTooLarge(ClientError):
    status = 413


class UnsupportedMediaType(ClientError):
    status = 415


class Overloaded(ClientError):
    """Back-pressure: the queue is full; the client should retry later."""

    status = 429


class Unavailable(ClientError):
    """No answer in time, or the server is shutting down (503 with Retry-After)."""

    status = 503
