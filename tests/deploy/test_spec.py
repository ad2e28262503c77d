"""Deployment specs: the shipped example, and a clear error for each kind of mistake."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from modelyard.deploy.spec import load_spec, parse_spec
from modelyard.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "deploy" / "models" / "mnist5k-cnn.yaml"


def example() -> dict[str, Any]:
    return yaml.safe_load(EXAMPLE.read_text())  # type: ignore[no-any-return]


def test_the_shipped_example_is_valid() -> None:
    spec = load_spec(EXAMPLE)
    assert spec.model == "mnist5k-cnn"
    assert spec.environments["staging"].alias == "staging"
    assert spec.environments["production"].replicas == 2
    assert (spec.resources.cpu, spec.resources.memory) == ("1", "512Mi")
    settings = spec.serve_settings("production")
    assert settings.model == "mnist5k-cnn@production" and settings.max_batch_size == 32
    assert spec.to_dict() == {**example(), "resources": {"cpu": "1", "memory": "512Mi"}}


def test_every_spec_in_the_repository_is_valid() -> None:
    specs = sorted((ROOT / "deploy" / "models").glob("*.yaml"))
    assert specs
    for path in specs:
        assert load_spec(path).model == path.stem


def _with(path: str, value: Any) -> dict[str, Any]:
    data = example()
    *parents, last = path.split(".")
    node = data
    for key in parents:
        node = node[key]
    if value is _DELETE:
        del node[last]
    else:
        node[last] = value
    return data


_DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("replica", 2, "unknown key 'replica' in the top level; valid: model, environments"),
        ("model", _DELETE, "missing 'model'"),
        ("model", "has space", "model must be a registered model name"),
        ("environments.canary", {"alias": "c"}, "unknown key 'canary' in environments; valid"),
        ("environments.staging.alias", 3, "environments.staging.alias must be an alias name"),
        ("environments.staging.replicas", "two", "replicas must be an integer >= 1, got 'two'"),
        ("environments.staging.replicas", 0, "replicas must be an integer >= 1, got 0"),
        ("environments.staging.port", 80, "unknown key 'port' in environments.staging"),
        ("environments", {}, "environments is empty"),
        ("environments", ["staging"], "environments must be a mapping, got list"),
        ("resources.cpu", "lots", 'resources.cpu must be a Kubernetes quantity like "1"'),
        ("resources.memory", "512MB", "resources.memory must be a Kubernetes quantity"),
        ("resources.gpu", 1, "unknown key 'gpu' in resources; valid: cpu, memory"),
        ("serve.max_batch", 8, "unknown key 'max_batch' in serve; valid: host, port"),
        ("serve.model", "x@y", "unknown key 'model' in serve"),
        ("serve.max_batch_size", "big", "serve: bad serve setting"),
        ("serve.max_batch_size", 0, "max_batch_size=0: max_batch_size must be at least 1"),
    ],
)
def test_mistakes_name_the_key(path: str, value: Any, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_spec(_with(path, value), "spec.yaml")
    assert str(caught.value).startswith("spec.yaml: ")
    assert message in str(caught.value)


def test_unknown_environment_and_missing_or_broken_files(tmp_path: Path) -> None:
    only_staging = parse_spec(_with("environments.production", _DELETE), "s.yaml")
    with pytest.raises(ConfigError, match=r"s.yaml has no environment 'production'; it describes"):
        only_staging.environment("production")
    with pytest.raises(ConfigError, match="does not exist; see deploy/models/"):
        load_spec(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("model: [unclosed\n")
    with pytest.raises(ConfigError, match="is not valid YAML"):
        load_spec(broken)
    numeric = parse_spec(_with("resources", {"cpu": 2, "memory": "1Gi"}), "n.yaml")
    assert numeric.resources.cpu == "2"
