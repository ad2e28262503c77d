"""modelyard: a classification model's whole life, from data to a served bundle.

Owns: the package's version, and the layering. Top-level modules are shared
services (``bundle``, ``manifest``, ``registry``, ``registry_client``, ``predictor``,
``scoring``, ``evaluate``, ``tracking``, ...); each package's ``__init__`` docstring
says what it owns and, in a ``May import:`` paragraph, which other modelyard modules
and packages its modules may import (tests/test_package_boundaries.py holds the code
to it, and keeps torch, Lightning and MLflow off the serving path's module level).

May import: every package may import these foundations: ``errors``, ``lazy``,
``paths``, ``choices``, ``cli_options``, ``durations``, ``file_formats``, ``extras``;
this module itself imports nothing.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
