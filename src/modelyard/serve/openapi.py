"""The OpenAPI document of the server (served at /openapi.json) and a docs page."""

from __future__ import annotations

import html
from typing import Any

from modelyard import __version__

_ERROR = {
    "description": "Client error; the body names the problem",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
}
_NAME = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
_VERSION = {"name": "version", "in": "path", "required": True, "schema": {"type": "string"}}

_TENSOR = {
    "type": "object",
    "required": ["name", "shape", "datatype"],
    "properties": {
        "name": {"type": "string"},
        "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
        "datatype": {
            "type": "string",
            "enum": [
                "BOOL",
                "UINT8",
                "UINT16",
                "UINT32",
                "UINT64",
                "INT8",
                "INT16",
                "INT32",
                "INT64",
                "FP16",
                "FP32",
                "FP64",
            ],
        },
        "parameters": {"type": "object"},
        "data": {"type": "array"},
    },
}


def _ref(schema: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{schema}"}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    """A JSON content map holding ``schema``."""
    return {"application/json": {"schema": schema}}


def _errors(*codes: str) -> dict[str, Any]:
    return {code: _ERROR for code in codes}


def _json_op(
    summary: str, response: str, params: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return {
        "summary": summary,
        "parameters": params or [],
        "responses": {
            "200": {"description": "OK", "content": _json(_ref(response))},
            "404": _ERROR,
        },
    }


def _infer_op(params: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "summary": "Open Inference Protocol (v2) inference: JSON tensors or Triton's "
        "binary extension",
        "parameters": params,
        "requestBody": {"required": True, "content": _json(_ref("InferRequest"))},
        "responses": {
            "200": {"description": "Outputs", "content": _json(_ref("InferResponse"))},
            **_errors("400", "401", "404", "413", "429", "503"),
        },
    }


def _v2_paths() -> dict[str, Any]:
    """Open Inference Protocol routes: health, server and model metadata, inference."""
    both = [_NAME, _VERSION]
    ready = {
        **_json_op("Readiness", "Ready"),
        "responses": {"200": {"description": "Ready"}, "503": {"description": "Not ready"}},
    }
    return {
        "/v2/health/live": {"get": _json_op("Liveness", "Live")},
        "/v2/health/ready": {"get": ready},
        "/v2": {"get": _json_op("Server metadata", "ServerMetadata")},
        "/v2/models/{name}": {"get": _json_op("Model metadata", "ModelMetadata", [_NAME])},
        "/v2/models/{name}/versions/{version}": {
            "get": _json_op("Model metadata", "ModelMetadata", both)
        },
        "/v2/models/{name}/ready": {"get": _json_op("Model readiness", "ModelReady", [_NAME])},
        "/v2/models/{name}/versions/{version}/ready": {
            "get": _json_op("Model readiness", "ModelReady", both)
        },
        "/v2/models/{name}/infer": {"post": _infer_op([_NAME])},
        "/v2/models/{name}/versions/{version}/infer": {"post": _infer_op(both)},
    }


def _v1_predict_op() -> dict[str, Any]:
    upload = {"type": "object", "properties": {"file": {"type": "string", "format": "binary"}}}
    return {
        "summary": "Predict labels for images: multipart upload or JSON instances",
        "parameters": [_NAME],
        "requestBody": {
            "required": True,
            "content": {
                **_json(_ref("Instances")),
                "multipart/form-data": {"schema": upload},
            },
        },
        "responses": {
            "200": {"description": "Predictions", "content": _json(_ref("Predictions"))},
            **_errors("400", "401", "404", "413", "415", "429", "503"),
        },
    }


def _feedback_op() -> dict[str, Any]:
    one_or_many = {
        "oneOf": [_ref("Feedback"), {"type": "array", "items": _ref("Feedback")}],
    }
    stored = {"type": "object", "properties": {"stored": {"type": "integer"}}}
    return {
        "summary": "True labels for served requests, joined to the prediction log",
        "requestBody": {"required": True, "content": _json(one_or_many)},
        "responses": {
            "200": {"description": "Labels stored", "content": _json(stored)},
            **_errors("400", "401", "409", "413", "422", "503"),
        },
    }


_METRICS_OP = {
    "summary": "Prometheus metrics",
    "responses": {"200": {"description": "text exposition"}},
}

_STRING = {"type": "string"}
_STRINGS = {"type": "array", "items": _STRING}

_SCHEMAS: dict[str, Any] = {
    "Error": {"type": "object", "required": ["error"], "properties": {"error": _STRING}},
    "Feedback": {
        "type": "object",
        "required": ["id", "label"],
        "properties": {"id": _STRING, "label": _STRING},
    },
    "Live": {"type": "object", "properties": {"live": {"type": "boolean"}}},
    "Ready": {"type": "object", "properties": {"ready": {"type": "boolean"}}},
    "ModelReady": {
        "type": "object",
        "properties": {"name": _STRING, "ready": {"type": "boolean"}},
    },
    "ServerMetadata": {
        "type": "object",
        "properties": {"name": _STRING, "version": _STRING, "extensions": _STRINGS},
    },
    "ModelMetadata": {
        "type": "object",
        "properties": {
            "name": _STRING,
            "versions": _STRINGS,
            "platform": _STRING,
            "inputs": {"type": "array"},
            "outputs": {"type": "array"},
        },
    },
    "InferRequest": {
        "type": "object",
        "required": ["inputs"],
        "properties": {
            "id": _STRING,
            "parameters": {"type": "object"},
            "inputs": {"type": "array", "minItems": 1, "items": _TENSOR},
            "outputs": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {"name": _STRING, "parameters": {"type": "object"}},
                },
            },
        },
    },
    "InferResponse": {
        "type": "object",
        "properties": {
            "model_name": _STRING,
            "model_version": _STRING,
            "id": _STRING,
            "outputs": {"type": "array", "items": _TENSOR},
        },
    },
    "Instances": {
        "type": "object",
        "required": ["instances"],
        "properties": {"instances": {"type": "array", "minItems": 1, "items": {}}},
    },
    "Predictions": {
        "type": "object",
        "properties": {
            "model_name": _STRING,
            "model_version": _STRING,
            "request_id": _STRING,
            "predictions": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "label": _STRING,
                        "confidence": {"type": "number"},
                        "probabilities": {
                            "type": "object",
                            "additionalProperties": {"type": "number"},
                        },
                    },
                },
            },
        },
    },
}
"""The request and response bodies the routes refer to (``#/components/schemas/...``)."""


def build_openapi() -> dict[str, Any]:
    """The server's OpenAPI 3.0 document: v2 routes, the /v1 routes, /metrics."""
    return {
        "openapi": "3.0.3",
        "info": {"title": "modelyard inference server", "version": __version__},
        "paths": {
            **_v2_paths(),
            "/v1/models/{name}:predict": {"post": _v1_predict_op()},
            "/v1/feedback": {"post": _feedback_op()},
            "/metrics": {"get": _METRICS_OP},
        },
        "components": {"schemas": _SCHEMAS},
    }


def docs_page(schema: dict[str, Any]) -> str:
    """A self-contained page listing every route (no CDN: servers often run offline)."""
    rows = []
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            rows.append(
                f"<tr><td><code>{method.upper()}</code></td><td><code>{html.escape(path)}</code></td>"
                f"<td>{html.escape(operation.get('summary', ''))}</td></tr>"
            )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>modelyard API</title>"
        "<style>body{font-family:sans-serif;margin:2em}td{padding:4px 12px}</style></head><body>"
        f"<h1>{html.escape(schema['info']['title'])} {html.escape(schema['info']['version'])}</h1>"
        "<p>Machine-readable schema: <a href='/openapi.json'>/openapi.json</a></p>"
        f"<table>{''.join(rows)}</table></body></html>"
    )
