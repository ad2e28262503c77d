"""Smoke test of a running model server: is it ready, does it serve the expected
version (after a deploy, the server hot-reloads within its poll interval), and does
an inference answer with probabilities that sum to one?

Standard library only, so a CI job can run it without installing modelyard:

    python deploy/smoke_test.py --url https://staging.example.com \
        --model mnist5k-cnn --expect-version 7 --wait 120

Sends ``Authorization: Bearer $MODELYARD_API_KEY`` when that variable is set.
Exits 0 when every check passes, 1 with the reason otherwise.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
import urllib.error
import urllib.request
from typing import Any


class SmokeFailure(Exception):
    """A check failed; the message says which and what was seen."""


def _call(url: str, body: dict[str, Any] | None = None, timeout: float = 10.0) -> dict[str, Any]:
    headers = {"content-type": "application/json"}
    key = os.environ.get("MODELYARD_API_KEY")
    if key:
        headers["authorization"] = f"Bearer {key}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers=headers)
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())  # type: ignore[no-any-return]


def wait_for_version(url: str, model: str, version: str | None, wait_s: float) -> dict[str, Any]:
    """The model's v2 metadata once the server is ready and serves ``version``."""
    deadline = time.monotonic() + wait_s
    seen = "no answer"
    while True:
        try:
            metadata = _call(f"{url}/v2/models/{model}")
            seen = f"versions {metadata.get('versions')}"
            if version is None or metadata.get("versions") == [version]:
                return metadata
        except (urllib.error.URLError, OSError, ValueError) as error:
            seen = str(error)
        if time.monotonic() >= deadline:
            wanted = f"version {version} of '{model}'" if version else f"'{model}'"
            raise SmokeFailure(f"{url} did not serve {wanted} within {wait_s:.0f}s: {seen}")
        time.sleep(2)


def check_inference(url: str, model: str, metadata: dict[str, Any]) -> list[float]:
    """One v2 inference on a blank input; the probabilities it answers."""
    (tensor,) = metadata["inputs"]
    shape = [1, *tensor["shape"][1:]]
    answer = _call(
        f"{url}/v2/models/{model}/infer",
        {
            "inputs": [
                {
                    "name": tensor["name"],
                    "shape": shape,
                    "datatype": tensor["datatype"],
                    "data": [0.0] * math.prod(shape),
                }
            ]
        },
    )
    outputs = {o["name"]: o for o in answer.get("outputs", [])}
    if "probabilities" not in outputs:
        raise SmokeFailure(f"no 'probabilities' output in {sorted(outputs)}")
    probabilities = [float(p) for p in outputs["probabilities"]["data"]]
    labels = metadata.get("parameters", {}).get("labels", [])
    if len(probabilities) != len(labels) or abs(sum(probabilities) - 1.0) > 1e-3:
        raise SmokeFailure(f"probabilities {probabilities} do not match {len(labels)} labels")
    return probabilities


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="Server base URL, e.g. http://host:8000")
    parser.add_argument("--model", required=True, help="Registered model name")
    parser.add_argument("--expect-version", help="Model version the server must serve")
    parser.add_argument("--wait", type=float, default=120.0, help="Seconds to wait for it")
    args = parser.parse_args(argv)
    url = args.url.rstrip("/")
    try:
        metadata = wait_for_version(url, args.model, args.expect_version, args.wait)
        probabilities = check_inference(url, args.model, metadata)
    except (SmokeFailure, urllib.error.URLError, OSError, KeyError, ValueError) as error:
        print(f"smoke test failed: {error}", file=sys.stderr)
        return 1
    top = max(range(len(probabilities)), key=probabilities.__getitem__)
    print(
        f"ok: {url} serves {args.model} version {metadata['versions'][0]}; "
        f"a blank input scores '{metadata['parameters']['labels'][top]}'"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
