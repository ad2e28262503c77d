"""The MLflow Model Registry: register bundles, resolve aliases, download versions."""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from pathlib import Path

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from modelyard import tracking
from modelyard.bundle import MANIFEST, MANIFEST_SHA_TAG, file_sha256
from modelyard.errors import RegistryError
from modelyard.paths import home_dir
from modelyard.registry_client import CANDIDATE as CANDIDATE
from modelyard.registry_client import MODELS_URI, require_safe_name


def _known_models(client: MlflowClient) -> str:
    names = [m.name for m in client.search_registered_models(max_results=50)]
    return ", ".join(names) if names else "none yet (train one with `modelyard train task=...`)"


def resolve_version(name: str, alias: str | None, version: str | None) -> str:
    """The concrete version number an alias or version points at, with clear errors."""
    client = MlflowClient()
    try:
        client.get_registered_model(name)
    except MlflowException:
        raise RegistryError(
            f"registered model '{name}' not found; registered models: {_known_models(client)}"
        ) from None
    if alias is not None:
        try:
            return str(client.get_model_version_by_alias(name, alias).version)
        except MlflowException:
            aliases = sorted(client.get_registered_model(name).aliases or {})
            raise RegistryError(
                f"model '{name}' has no alias '{alias}'; its aliases: "
                f"{', '.join(aliases) or 'none'}"
            ) from None
    if version is not None:
        try:
            client.get_model_version(name, version)
        except MlflowException:
            raise RegistryError(f"model '{name}' has no version {version}") from None
        return version
    latest = client.search_model_versions(
        f"name='{name}'", order_by=["version_number DESC"], max_results=1
    )
    if not latest:
        raise RegistryError(f"model '{name}' has no versions yet")
    return str(latest[0].version)


def download_model(uri: str, tracking_uri: str | None = None) -> tuple[Path, str | None]:
    """Download a ``models:/`` or ``runs:/`` URI; registry versions are cached locally."""
    tracking.configure(tracking_uri)
    match = MODELS_URI.match(uri)
    if match is None:
        try:
            return Path(mlflow.artifacts.download_artifacts(artifact_uri=uri)), None
        except (MlflowException, OSError) as error:
            raise RegistryError(f"cannot download {uri}: {error}") from None
    name = match["name"]
    # Versions are immutable, so a cached copy stays valid; key by store too, since
    # two tracking servers can both have "mnist5k-cnn" version 1.
    store = hashlib.sha256(mlflow.get_tracking_uri().encode()).hexdigest()[:12]
    root = home_dir() / "cache" / "models" / store
    require_safe_name(name, root)
    version = resolve_version(name, match["alias"], match["version"])
    cache = root / name / version
    if not (cache / "MLmodel").exists():
        cache.parent.mkdir(parents=True, exist_ok=True)
        # Download beside the cache and rename, so a crash never leaves half a model.
        staging = Path(tempfile.mkdtemp(dir=cache.parent, prefix=f".{version}-"))
        try:
            mlflow.artifacts.download_artifacts(
                artifact_uri=f"models:/{name}/{version}", dst_path=str(staging)
            )
            _require_contained(staging)
            shutil.rmtree(cache, ignore_errors=True)
            staging.rename(cache)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return cache, version


def _require_contained(folder: Path) -> None:
    """Every downloaded file must stay inside ``folder``: no links out, no ``..``."""
    root = folder.resolve()
    for path in folder.rglob("*"):
        if path.is_symlink() or not path.resolve().is_relative_to(root):
            raise RegistryError(
                f"the registry sent {path.relative_to(folder)}, a link or path outside the "
                "model folder; refusing the download (path traversal)"
            )


def register(
    model_uri: str, name: str, alias: str = CANDIDATE, bundle_dir: Path | None = None
) -> str:
    """Register ``model_uri`` under ``name``, point ``alias`` at it, return the version.

    With ``bundle_dir`` (the bundle logged in ``model_uri``) the version is tagged with
    bundle.json's sha256, which servers check fetched and cached copies against.
    """
    version = create_version(model_uri, name, bundle_dir)
    point_alias(name, alias, version)
    return version


def create_version(model_uri: str, name: str, bundle_dir: Path | None = None) -> str:
    """A new version of ``name`` from ``model_uri`` (no alias moved); its number."""
    tags = {MANIFEST_SHA_TAG: file_sha256(bundle_dir / MANIFEST)} if bundle_dir else None
    return str(mlflow.register_model(model_uri, name, tags=tags).version)


def point_alias(name: str, alias: str, version: str) -> None:
    """Point ``alias`` of model ``name`` at ``version``."""
    # Two processes pointing one alias at once (tune workers) both insert its row.
    client = MlflowClient()
    tracking.write_racing(lambda: client.set_registered_model_alias(name, alias, version))
