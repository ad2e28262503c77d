"""The docker command line for the end-to-end tests: images, containers, waits.

Every call is bounded in time, and every failure is one line saying what failed
(with the end of the container's log where there is one).
"""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
PREFIX = "modelyard-e2e"
"""Every image, container and network these tests make is named with this prefix."""

TIMINGS: dict[str, float] = {}
"""What the tests measured (seconds); conftest prints it at the end of the session."""


CONTAINER_FIGURES: dict[str, dict[str, float]] = {}
"""Per case of the server container (bundle folder, registry alias): ready_s (docker
run to the first 200 on /v2/health/ready), rss_mb (the largest Python process after
the test's requests), stop_s (docker stop, SIGTERM to exit). conftest writes them to
benchmarks/deploy/results/ready-container.json, where tests/deploy/test_k8s_manifests.py
holds the Kubernetes probes and memory to them."""


def record_timing(what: str, seconds: float) -> None:
    TIMINGS[what] = seconds


def record_container(case: str, **figures: float) -> None:
    CONTAINER_FIGURES[case] = figures


class DockerError(AssertionError):
    """A docker command that failed or ran too long."""


def docker_binary() -> str:
    found = shutil.which("docker")
    if found is None:
        raise DockerError("the docker client is missing: apt-get install docker.io (.ci/run does)")
    return found


def docker(*args: str, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``docker ARGS``; with ``check``, a non-zero exit is a DockerError."""
    command = [docker_binary(), *args]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as error:
        raise DockerError(f"docker {' '.join(args[:3])} ran past {timeout:g}s") from error
    if check and result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()[-15:]
        raise DockerError(
            f"docker {' '.join(args[:3])} exited {result.returncode}: " + "\n".join(detail)
        )
    return result


def engine_answers(timeout: float = 20) -> str | None:
    """None when ``docker info`` answers within ``timeout``; else why not, in one line."""
    deadline = time.monotonic() + timeout
    reason = "no answer"
    while time.monotonic() < deadline:
        try:
            result = docker("info", "--format", "{{.ServerVersion}}", timeout=10, check=False)
        except DockerError as error:
            reason = str(error)
        else:
            if result.returncode == 0:
                return None
            reason = (result.stderr.strip().splitlines() or ["no answer"])[-1]
        time.sleep(1)
    return reason


def image_exists(tag: str) -> bool:
    return docker("image", "inspect", tag, timeout=30, check=False).returncode == 0


def image_size(tag: str) -> int:
    """Bytes, as ``docker image inspect --format '{{.Size}}'`` reports them."""
    return int(docker("image", "inspect", "--format", "{{.Size}}", tag).stdout.strip())


def image_id(tag: str) -> str:
    return docker("image", "inspect", "--format", "{{.Id}}", tag).stdout.strip()


def dangling_images() -> set[str]:
    return set(
        docker("images", "--quiet", "--no-trunc", "--filter", "dangling=true").stdout.split()
    )


def build(
    dockerfile: str,
    tag: str,
    build_args: dict[str, str],
    timeout: float,
    context: Path = ROOT,
    network: str = "",
) -> float:
    """``docker build`` of ``dockerfile`` (relative to the repository root) with
    ``context`` (the repository root by default), its RUN steps on ``network`` if
    given; returns the seconds it took."""
    args = [arg for key, value in build_args.items() for arg in ("--build-arg", f"{key}={value}")]
    if network:
        args += ["--network", network]
    started = time.monotonic()
    docker(
        *("build", "--quiet", "--force-rm", "--file", str(ROOT / dockerfile), "--tag", tag),
        *args,
        str(context),
        timeout=timeout,
    )
    return time.monotonic() - started


def create_network() -> tuple[str, str]:
    """A bridge network of this test's own: (its name, the host's address on it).

    A process on the host that listens on that address is reachable from containers
    on the network, and from nowhere else.
    """
    name = f"{PREFIX}-{uuid.uuid4().hex[:10]}"
    docker("network", "create", "--driver", "bridge", name)
    gateway = docker(
        "network", "inspect", "--format", "{{range .IPAM.Config}}{{.Gateway}} {{end}}", name
    ).stdout.split()
    if not gateway:
        docker("network", "rm", name, check=False)
        raise DockerError(f"docker network {name} has no gateway address")
    return name, gateway[0]


class Container:
    """One detached container, published on 127.0.0.1 only, removed by :meth:`remove`."""

    def __init__(self, image: str, run_args: list[str], command: list[str], port: int = 0):
        self.name = f"{PREFIX}-{uuid.uuid4().hex[:10]}"
        self.image = image
        publish = ["--publish", f"127.0.0.1::{port}"] if port else []
        docker("run", "--detach", "--name", self.name, *publish, *run_args, image, *command)
        self.url = ""
        if port:
            # "127.0.0.1:49153" (the first line; docker may also list [::1]).
            address = docker("port", self.name, f"{port}/tcp").stdout.split()[0]
            self.url = f"http://{address}"

    def state(self) -> tuple[str, int]:
        fields = docker(
            "inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", self.name
        ).stdout.split()
        return fields[0], int(fields[1])

    def logs(self, lines: int = 40) -> str:
        result = docker("logs", "--tail", str(lines), self.name, check=False)
        return (result.stdout + result.stderr).strip()

    def wait_until_ok(self, path: str, timeout: float) -> float:
        """Seconds until GET ``path`` answers 200; fails early if the container exits."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            status, code = self.state()
            if status != "running":
                raise DockerError(
                    f"container {self.image} {status} (exit {code}) before {path} answered:\n"
                    + self.logs()
                )
            try:
                if httpx.get(self.url + path, timeout=2).status_code == 200:
                    return time.monotonic() - started
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise DockerError(
            f"{self.image}: {path} did not answer 200 in {timeout:g}s:\n{self.logs()}"
        )

    def exec(self, *command: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return docker("exec", self.name, *command, timeout=timeout, check=False)

    def stop(self, grace_s: int = 30) -> int:
        """``docker stop`` (SIGTERM, then SIGKILL after ``grace_s``); the exit code."""
        docker("stop", "--time", str(grace_s), self.name, timeout=grace_s + 30)
        return self.state()[1]

    def copy_out(self, path: str, destination: Path) -> Path:
        docker("cp", f"{self.name}:{path}", str(destination))
        return destination

    def remove(self) -> None:
        docker("rm", "--force", "--volumes", self.name, check=False)
