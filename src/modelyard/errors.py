"""Errors a user can cause, and the exit codes every command follows.

The CLI prints a :class:`ModelyardError` as one line (``error: ...``), without a
traceback, and exits with the error's :attr:`~ModelyardError.exit_code`:

====  ==========================================================================
0     done (also: a dry run whose decision passed, nothing to do)
1     refused or found wanting: a gate refused, drift detected, some inputs failed
2     usage: a bad option, config key, value, path, model URI; fix the command
130   interrupted (Ctrl-C / SIGINT); the message says how to resume, where one can
====  ==========================================================================
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_REFUSED = 1
"""A gate refused, drift was found, or part of the work failed (the output says what)."""
EXIT_USAGE = 2
"""The command, its options, config or inputs were wrong; the message says what to do."""
EXIT_INTERRUPTED = 130
"""Interrupted by Ctrl-C (128 + SIGINT), the shell convention."""


class ModelyardError(Exception):
    """Something the user can fix: the message says what was wrong and what to do."""

    exit_code: int = EXIT_USAGE


class ConfigError(ModelyardError):
    """The composed configuration is invalid (unknown key, wrong type, bad choice)."""


class DataError(ModelyardError):
    """A data source is missing, unreadable, corrupt or empty."""


class RegistryError(ModelyardError):
    """A model name, version or alias does not exist in the registry."""


class ExportError(ModelyardError):
    """An export could not produce a faithful artefact: an ONNX graph that does not
    reproduce the trained model, an INT8 graph ONNX Runtime cannot run, a graph
    another server cannot take."""


class BundleError(ModelyardError):
    """A model bundle is missing, malformed or inconsistent, or fails its checksums."""


class UsageError(ModelyardError):
    """An option or argument has a value the command cannot take (a URL, a size, a
    target folder that exists): the message names it and shows a value that works."""


class ServiceError(ModelyardError):
    """A server modelyard starts or talks to (a model server, a tracking server) did
    not start, cannot be reached, or answered with an error it reports."""


class MissingExtra(ModelyardError):
    """An optional part is not installed; the message names the extra that brings it."""


class Refused(ModelyardError):
    """A check ran and said no (a promotion gate, a deploy's gate): nothing was moved.
    Not a usage error, so scripts can tell "fix the command" from "the model failed"."""

    exit_code = EXIT_REFUSED
