"""The UI's only door to a model: HTTP calls to a running ``modelyard serve``.

No torch and no ONNX Runtime here; every failure (server down, 4xx/5xx, a reply
that is not what a modelyard server sends) becomes a :class:`ServerError` whose
message a person can act on.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import httpx

_MODEL_INFO = re.compile(r"^modelyard_model_info\{([^}]*)\}\s+1(?:\.0)?$", re.M)
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


class ServerError(Exception):
    """The server could not be reached or did not answer a prediction."""


@dataclass(frozen=True)
class ModelInfo:
    """What a server serves, from ``/v2/models/{name}``."""

    name: str
    version: str
    labels: tuple[str, ...]
    kind: str  # "image" or "text" (a BYTES input)
    input_shape: tuple[int, ...]


@dataclass(frozen=True)
class Prediction:
    model: str
    version: str
    label: str
    confidence: float
    probabilities: dict[str, float]


class ServerClient:
    """One model server. ``model`` names the model; when left out, the server's
    ``/metrics`` tells (``modelyard_model_info`` is 1 for the version it serves)."""

    def __init__(
        self, url: str, model: str | None = None, timeout: float = 10, api_key: str | None = None
    ):
        self.url = url.rstrip("/")
        self._model = model
        headers = {"authorization": f"Bearer {api_key}"} if api_key else None
        self._http = httpx.Client(base_url=self.url, timeout=timeout, headers=headers)

    def close(self) -> None:
        self._http.close()

    def _get(self, path: str) -> httpx.Response:
        return self._checked(lambda: self._http.get(path))

    def _checked(self, call: Callable[[], httpx.Response]) -> httpx.Response:
        try:
            response: httpx.Response = call()
        except httpx.TimeoutException:
            raise ServerError(f"{self.url} did not answer in time; is it overloaded?") from None
        except httpx.HTTPError as error:
            raise ServerError(
                f"cannot reach the model server at {self.url} ({type(error).__name__}); "
                "start it with `modelyard serve <model>` or check the URL"
            ) from None
        if response.is_success:
            return response
        try:
            detail = response.json().get("error") or response.text
        except ValueError:
            detail = response.text[:200] or response.reason_phrase
        raise ServerError(f"{self.url} answered {response.status_code}: {detail}")

    def model_name(self) -> str:
        if self._model is None:
            found = [
                dict(_LABEL.findall(labels))
                for labels in _MODEL_INFO.findall(self._get("/metrics").text)
            ]
            names = sorted({info["model"] for info in found if "model" in info})
            if not names:
                raise ServerError(
                    f"{self.url} serves no model yet (its /metrics shows none loaded); "
                    "wait for it to finish loading"
                )
            self._model = names[0]
        return self._model

    def info(self) -> ModelInfo:
        name = self.model_name()
        try:
            data = self._get(f"/v2/models/{name}").json()
            (tensor,) = data["inputs"]
            return ModelInfo(
                name=data["name"],
                version=str(data["versions"][-1]),
                labels=tuple(data.get("parameters", {}).get("labels", ())),
                kind=str(data["parameters"]["kind"]),
                input_shape=tuple(int(d) for d in tensor["shape"][1:]),
            )
        except (ValueError, KeyError, TypeError, IndexError):
            raise ServerError(
                f"{self.url}/v2/models/{name} is not the metadata of a modelyard server"
            ) from None

    def predict_image(self, image: bytes, filename: str = "image.png") -> Prediction:
        """One image file (PNG, JPEG, ...) through ``/v1/models/{name}:predict``."""
        path = f"/v1/models/{self.model_name()}:predict"
        return self._prediction(
            self._checked(lambda: self._http.post(path, files={"file": (filename, image)}))
        )

    def predict_text(self, text: str) -> Prediction:
        path = f"/v1/models/{self.model_name()}:predict"
        return self._prediction(self._checked(lambda: self._http.post(path, json={"text": text})))

    def _prediction(self, response: httpx.Response) -> Prediction:
        try:
            data = response.json()
            first = data["predictions"][0]
            return Prediction(
                model=data["model_name"],
                version=str(data["model_version"]),
                label=str(first["label"]),
                confidence=float(first["confidence"]),
                probabilities={str(k): float(v) for k, v in first["probabilities"].items()},
            )
        except (ValueError, KeyError, TypeError, IndexError):
            raise ServerError(f"{self.url} answered a prediction in an unknown shape") from None
