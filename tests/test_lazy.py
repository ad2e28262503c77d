"""Lazy package exports: a subpackage import stays light until a name is used."""

from __future__ import annotations

import subprocess
import sys

import pytest

from modelyard.lazy import lazy_exports


def test_first_use_imports_the_home_module_and_caches_the_value() -> None:
    code = (
        "import sys, modelyard.deploy as d\n"
        "assert 'modelyard.deploy.run' not in sys.modules\n"
        "spec = d.parse_spec\n"
        "assert 'modelyard.deploy.spec' in sys.modules\n"
        "assert 'modelyard.deploy.run' not in sys.modules\n"
        "assert d.__dict__['parse_spec'] is spec\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_an_unknown_name_is_an_attribute_error_naming_the_package() -> None:
    import modelyard.promote as promote

    with pytest.raises(AttributeError, match=r"'modelyard\.promote' has no attribute 'nope'"):
        promote.nope  # noqa: B018
    with pytest.raises(ImportError):
        from modelyard.promote import nope  # noqa: F401


def test_the_home_module_must_hold_the_name() -> None:
    getattr_ = lazy_exports("modelyard", {"missing": "errors"})
    with pytest.raises(AttributeError):
        getattr_("missing")
