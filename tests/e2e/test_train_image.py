"""The training image (deploy/train.Dockerfile), built and run: the CPU build of torch
pinned in requirements/constraints.txt, and a short training run inside it as its
non-root user, tracked and registered in an embedded store on a tmpfs."""

from __future__ import annotations

import json
import time

import pytest
from tests.e2e.docker import docker, record_timing

pytestmark = pytest.mark.e2e

HOME_IN_IMAGE = "/home/modelyard"


def test_training_image_trains_and_registers_a_model(train_image: str) -> None:
    config = json.loads(
        docker("image", "inspect", "--format", "{{json .Config}}", train_image).stdout
    )
    assert config["User"] == "10001:10001" and config["Entrypoint"] == ["modelyard", "train"]
    versions = docker(
        *("run", "--rm", "--entrypoint", "python", train_image, "-c"),
        "import torch, lightning; print(torch.__version__, torch.cuda.is_available())",
    )
    assert versions.stdout.split() == ["2.13.0+cpu", "False"], versions.stdout

    run_args = ["--rm", "--tmpfs", f"{HOME_IN_IMAGE}:rw,uid=10001,gid=10001,exec"]
    command = ["task=digits", "train=fast", "train.max_epochs=1", "--json"]
    started = time.monotonic()
    trained = docker("run", *run_args, train_image, *command, timeout=600)
    seconds = time.monotonic() - started
    result = json.loads(trained.stdout)
    assert result["model_version"] == "1", result
    assert result["bundle"].startswith(f"{HOME_IN_IMAGE}/"), result
    record_timing("training image: digits, 1 epoch, docker run to exit", seconds)
