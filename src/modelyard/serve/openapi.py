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


def _json_op(
    summary: str, response: str, params: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return {
        "summary": summary,
        "parameters": params or [],
        "responses": {
            "200": {
                "description": "OK",
                "content": {
                    "application/json": {"schema": {"$ref": f"#/components/schemas/{response}"}}
                },
            },
            "404": _ERROR,
        },
    }


def _infer_op(params: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "summary": "Open Inference Protocol (v2) inference: JSON tensors or Triton's "
        "binary extension",
        "parameters": params,
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/InferRequest"}}
            },
        },
        "responses": {
            "200": {
                "description": "Outputs",
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/InferResponse"}}
                },
            },
            **{code: _ERROR for code in ("400", "401", "404", "413", "429", "503")},
        },
    }


def build_openapi() -> dict[str, Any]:
    both = [_NAME, _VERSION]
    return {
        "openapi": "3.0.3",
        "info": {"title": "modelyard inference server", "version": __version__},
        "paths": {
            "/v2/health/live": {"get": _json_op("Liveness", "Live")},
            "/v2/health/ready": {
                "get": {
                    **_json_op("Readiness", "Ready"),
                    "responses": {
                        "200": {"description": "Ready"},
                        "503": {"description": "Not ready"},
                    },
                }
            },
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
            "/v1/models/{name}:predict": {
                "post": {
                    "summary": "Predict labels for images: multipart upload or JSON instances",
                    "parameters": [_NAME],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/Instances"}
                            },
                            "multipart/form-data": {
                                "schema": {
                                    "type": "object",
                                    "properties": {"file": {"type": "string", "format": "binary"}},
                                }
                            },
                        },
                    },
                    "responses": {
                        "200": {
                            "description": "Predictions",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/Predictions"}
                                }
                            },
                        },
                        **{
                            code: _ERROR
                            for code in ("400", "401", "404", "413", "415", "429", "503")
                        },
                    },
                }
            },
            "/v1/feedback": {
                "post": {
                    "summary": "True labels for served requests, joined to the prediction log",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "oneOf": [
                                        {"$ref": "#/components/schemas/Feedback"},
                                        {
                                            "type": "array",
                                            "items": {"$ref": "#/components/schemas/Feedback"},
                                        },
                                    ]
                                }
                            }
                        },
                    },
                    "responses": {
                        "200": {
                            "description": "Labels stored",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "properties": {"stored": {"type": "integer"}},
                                    }
                                }
                            },
                        },
                        **{code: _ERROR for code in ("400", "401", "409", "413", "422", "503")},
                    },
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics",
                    "responses": {"200": {"description": "text exposition"}},
                }
            },
        },
        "components": {
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {"error": {"type": "string"}},
                },
                "Feedback": {
                    "type": "object",
                    "required": ["id", "label"],
                    "properties": {"id": {"type": "string"}, "label": {"type": "string"}},
                },
                "Live": {"type": "object", "properties": {"live": {"type": "boolean"}}},
                "Ready": {"type": "object", "properties": {"ready": {"type": "boolean"}}},
                "ModelReady": {
                    "type": "object",
                    "properties": {"name": {"type": "string"}, "ready": {"type": "boolean"}},
                },
                "ServerMetadata": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string"},
                        "version": {"type": "string"},
                        "extensions": {"type": "array", "items": {"type": "string"}},
                    },
                },
                "ModelMetadata": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string"},
                        "versions": {"type": "array", "items": {"type": "string"}},
                        "platform": {"type": "string"},
                        "inputs": {"type": "array"},
                        "outputs": {"type": "array"},
                    },
                },
                "InferRequest": {
                    "type": "object",
                    "required": ["inputs"],
                    "properties": {
                        "id": {"type": "string"},
                        "parameters": {"type": "object"},
                        "inputs": {"type": "array", "minItems": 1, "items": _TENSOR},
                        "outputs": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["name"],
                                "properties": {
                                    "name": {"type": "string"},
                                    "parameters": {"type": "object"},
                                },
                            },
                        },
                    },
                },
                "InferResponse": {
                    "type": "object",
                    "properties": {
                        "model_name": {"type": "string"},
                        "model_version": {"type": "string"},
                        "id": {"type": "string"},
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
                        "model_name": {"type": "string"},
                        "model_version": {"type": "string"},
                        "request_id": {"type": "string"},
                        "predictions": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {
                                    "label": {"type": "string"},
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
        },
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
