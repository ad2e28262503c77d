"""The OpenAPI document describes every route the server has, and refers only to
schemas it defines (clients and the HTTP fuzzer generate requests from it)."""

from __future__ import annotations

from typing import Any

from modelyard.serve.app import _routes
from modelyard.serve.openapi import build_openapi

# The document itself and its HTML page are not API operations.
_SELF = {"/openapi.json", "/docs"}


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        here = [node["$ref"]] if "$ref" in node else []
        return here + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in _refs(value)]
    return []


def test_every_route_is_documented_with_its_methods() -> None:
    paths = build_openapi()["paths"]
    for route in _routes():
        if route.path in _SELF:
            continue
        assert route.path in paths, f"{route.path} is served but not in /openapi.json"
        served = {method.lower() for method in route.methods or ()} - {"head"}
        assert served == set(paths[route.path]), route.path
    assert set(paths) == {route.path for route in _routes()} - _SELF


def test_every_schema_reference_resolves() -> None:
    document = build_openapi()
    schemas = document["components"]["schemas"]
    refs = _refs(document["paths"]) + _refs(schemas)
    assert refs, "the document refers to no schema at all"
    prefix = "#/components/schemas/"
    missing = sorted({ref for ref in refs if ref.removeprefix(prefix) not in schemas})
    assert missing == []
    assert all(ref.startswith(prefix) for ref in refs)
