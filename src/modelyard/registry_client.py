"""The serving path's view of the MLflow Model Registry, without importing MLflow.

A server needs three things from the registry: which version an alias names, that
version's three bundle files, and (while it runs) whether the alias moved. MLflow's
Python client costs seconds of imports and ~150 MB for that, so this module speaks
to the two stores a deployment uses directly:

- a **tracking server** (``http://`` / ``https://``): MLflow's REST API for the
  registry, and the server's proxied artifact routes (``mlflow-artifacts:/``) for
  the files;
- the **embedded SQLite store** (``sqlite:///``, the laptop default): read-only SQL
  on the registry's tables, files from the local artifact folder.

Anything else (another database, artifacts the tracking server does not proxy)
returns ``None`` from :func:`fetch_bundle`, and :mod:`modelyard.registry` does the
work with MLflow's client.

Fetched bundles land in ``$MODELYARD_HOME/cache/bundles/<store>/<name>/<version>/``
after their files match the sha256 the manifest recorded at training time (and the
manifest matches the ``modelyard.bundle_sha256`` tag written when the version was
registered). A cached copy is checked again on every start and fetched anew if it
fails. Each alias resolution is remembered (``aliases.json``), so a server whose
registry is unreachable at start can serve the alias's last known version from the
cache, and says so.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import re
import shutil
import sqlite3
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol, cast

from modelyard.bundle import (
    BUNDLE_FILES,
    MANIFEST,
    MANIFEST_SHA_TAG,
    MLFLOW_SUBDIR,
    file_sha256,
    verify_files,
)
from modelyard.errors import BundleError, ModelyardError, RegistryError
from modelyard.paths import default_tracking_uri, home_dir

MODELS_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/]+)|/(?P<version>\d+))?$")
"""``models:/<name>``, ``models:/<name>@<alias>`` or ``models:/<name>/<version>``."""
REQUEST_TIMEOUT_S = 10.0
"""One registry call's budget; a refused connection fails at once."""
ALIASES_FILE = "aliases.json"
MOVE_IN_TRIES = 3
"""Tries to move a fetched copy into the cache past copies other processes moved in
that do not verify (each is discarded); one that verifies is used at once."""
CANDIDATE = "candidate"
"""The alias training (and tune) gives each new version; promote takes it from here."""


class RegistryUnreachable(RegistryError):
    """The registry did not answer (connection refused, timeout, 5xx)."""


class NeedsMlflow(Exception):
    """This store or artifact location is one only MLflow's own client can read."""


@dataclass(frozen=True)
class ModelRef:
    """A parsed ``models:/`` URI."""

    name: str
    alias: str | None = None
    version: str | None = None

    @classmethod
    def parse(cls, uri: str) -> ModelRef | None:
        match = MODELS_URI.match(uri)
        if match is None:
            return None
        return cls(match["name"], match["alias"], match["version"])


@dataclass(frozen=True)
class RegisteredVersion:
    name: str
    version: str
    artifact_uri: str
    """Where the MLflow model folder lives (the bundle is under ``artifacts/bundle``)."""
    manifest_sha256: str | None
    """The ``modelyard.bundle_sha256`` tag: bundle.json's hash when it was registered."""


@dataclass(frozen=True)
class Fetched:
    folder: Path
    name: str
    version: str
    from_cache_note: str | None = None
    """Set when the registry was unreachable and the cache answered: says so, and why."""


class Store(Protocol):
    """One kind of registry backend."""

    uri: str

    def resolve(self, ref: ModelRef) -> RegisteredVersion: ...

    def read(self, found: RegisteredVersion, file: str) -> bytes: ...


def _known(names: list[str]) -> str:
    return ", ".join(names) if names else "none yet (train one with `modelyard train task=...`)"


def _missing_model(name: str, names: list[str]) -> RegistryError:
    return RegistryError(f"registered model '{name}' not found; registered models: {_known(names)}")


def _missing_alias(name: str, alias: str, aliases: list[str]) -> RegistryError:
    listed = ", ".join(sorted(aliases)) or "none"
    return RegistryError(f"model '{name}' has no alias '{alias}'; its aliases: {listed}")


class RestStore:
    """A tracking server, through MLflow's REST API (``/api/2.0/mlflow/...``)."""

    def __init__(self, uri: str):
        self.uri = uri.rstrip("/")

    def _headers(self) -> dict[str, str]:
        # The same variables MLflow's own client reads.
        token = os.environ.get("MLFLOW_TRACKING_TOKEN")
        if token:
            return {"Authorization": f"Bearer {token}"}
        user = os.environ.get("MLFLOW_TRACKING_USERNAME")
        if user:
            password = os.environ.get("MLFLOW_TRACKING_PASSWORD", "")
            encoded = base64.b64encode(f"{user}:{password}".encode()).decode()
            return {"Authorization": f"Basic {encoded}"}
        return {}

    def _request(self, path: str, params: dict[str, str] | None = None) -> bytes:
        url = f"{self.uri}{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        request = urllib.request.Request(url, headers=self._headers())
        try:
            with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_S) as response:
                return cast("bytes", response.read())
        except urllib.error.HTTPError as error:
            if error.code >= 500:
                raise RegistryUnreachable(
                    f"the MLflow tracking server at {self.uri} answered HTTP {error.code}"
                ) from None
            raise _ApiError(error.code, error.read()) from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise RegistryUnreachable(
                f"cannot reach the MLflow tracking server at {self.uri} ({reason})"
            ) from None

    def _get(self, path: str, **params: str) -> dict[str, Any]:
        body = self._request(f"/api/2.0/mlflow/{path}", params)
        try:
            return cast("dict[str, Any]", json.loads(body))
        except ValueError:
            raise RegistryUnreachable(
                f"{self.uri} did not answer {path} with JSON; is it an MLflow tracking server?"
            ) from None

    def _model_names(self) -> list[str]:
        found = self._get("registered-models/search", max_results="50")
        return [m["name"] for m in found.get("registered_models", [])]

    def _registered(self, name: str) -> dict[str, Any]:
        try:
            return cast(
                "dict[str, Any]", self._get("registered-models/get", name=name)["registered_model"]
            )
        except _ApiError as error:
            if error.missing:
                raise _missing_model(name, self._model_names()) from None
            raise error.as_registry_error(self.uri) from None

    def resolve(self, ref: ModelRef) -> RegisteredVersion:
        registered = self._registered(ref.name)
        version = ref.version
        if ref.alias is not None:
            aliases = {a["alias"]: str(a["version"]) for a in registered.get("aliases", [])}
            if ref.alias not in aliases:
                raise _missing_alias(ref.name, ref.alias, list(aliases))
            version = aliases[ref.alias]
        if version is None:
            found = self._get(
                "model-versions/search",
                filter=f"name='{ref.name}'",
                order_by="version_number DESC",
                max_results="1",
            ).get("model_versions", [])
            if not found:
                raise RegistryError(f"model '{ref.name}' has no versions yet")
            version = str(found[0]["version"])
        try:
            model_version = self._get("model-versions/get", name=ref.name, version=version)
            location = self._get("model-versions/get-download-uri", name=ref.name, version=version)
        except _ApiError as error:
            if error.missing:
                raise RegistryError(f"model '{ref.name}' has no version {version}") from None
            raise error.as_registry_error(self.uri) from None
        tags = {t["key"]: t["value"] for t in model_version["model_version"].get("tags", [])}
        return RegisteredVersion(
            ref.name, version, location["artifact_uri"], tags.get(MANIFEST_SHA_TAG)
        )

    def read(self, found: RegisteredVersion, file: str) -> bytes:
        parsed = urllib.parse.urlparse(found.artifact_uri)
        if parsed.scheme in ("file", ""):
            # A server whose artifact root is a folder this machine shares.
            return _read_local(found, file)
        if parsed.scheme != "mlflow-artifacts":
            raise NeedsMlflow(found.artifact_uri)  # s3://, gs://...: not proxied here
        path = f"{parsed.path.strip('/')}/{MLFLOW_SUBDIR.as_posix()}/{file}"
        try:
            return self._request(f"/api/2.0/mlflow-artifacts/artifacts/{urllib.parse.quote(path)}")
        except _ApiError as error:
            raise RegistryError(
                f"{found.name} version {found.version} has no {file} in the registry "
                f"(HTTP {error.status}); was it registered by modelyard?"
            ) from None


class _ApiError(Exception):
    """A 4xx answer from the REST API, with MLflow's error code."""

    def __init__(self, status: int, body: bytes):
        super().__init__(status)
        self.status = status
        try:
            payload = json.loads(body)
        except ValueError:
            payload = {}
        self.code = str(payload.get("error_code", ""))
        self.message = str(payload.get("message", body[:200].decode(errors="replace")))

    @property
    def missing(self) -> bool:
        return self.status == 404 or self.code == "RESOURCE_DOES_NOT_EXIST"

    def as_registry_error(self, uri: str) -> RegistryError:
        if self.status in (401, 403):
            return RegistryError(
                f"the MLflow tracking server at {uri} refused the request (HTTP "
                f"{self.status}); set MLFLOW_TRACKING_USERNAME/PASSWORD or MLFLOW_TRACKING_TOKEN"
            )
        return RegistryError(f"the MLflow tracking server at {uri} answered: {self.message}")


class SqliteStore:
    """The embedded store: read-only SQL on MLflow's registry tables, local files.

    The table and column names are MLflow's SQL schema (stable since the registry
    gained aliases); a database that does not match makes the caller use MLflow.
    """

    def __init__(self, uri: str):
        self.uri = uri
        self.path = Path(uri.removeprefix("sqlite:///"))

    def _query(self, sql: str, *args: str) -> list[tuple[Any, ...]]:
        if not self.path.is_file():
            return []  # no store yet: nothing is registered
        try:
            with sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True) as db:
                return db.execute(sql, args).fetchall()
        except sqlite3.OperationalError as error:
            if "locked" in str(error) or "unable to open" in str(error):
                raise RegistryUnreachable(f"cannot read {self.path}: {error}") from None
            raise NeedsMlflow(str(error)) from None

    def resolve(self, ref: ModelRef) -> RegisteredVersion:
        if not self._query("SELECT 1 FROM registered_models WHERE name = ?", ref.name):
            names = [row[0] for row in self._query("SELECT name FROM registered_models")]
            raise _missing_model(ref.name, sorted(names))
        version = ref.version
        if ref.alias is not None:
            aliases = dict(
                self._query(
                    "SELECT alias, version FROM registered_model_aliases WHERE name = ?", ref.name
                )
            )
            if ref.alias not in aliases:
                raise _missing_alias(ref.name, ref.alias, list(aliases))
            version = str(aliases[ref.alias])
        if version is None:
            newest = self._query(
                "SELECT MAX(version) FROM model_versions WHERE name = ? "
                "AND current_stage != 'Deleted_Internal'",
                ref.name,
            )
            if not newest or newest[0][0] is None:
                raise RegistryError(f"model '{ref.name}' has no versions yet")
            version = str(newest[0][0])
        rows = self._query(
            "SELECT storage_location FROM model_versions WHERE name = ? AND version = ? "
            "AND current_stage != 'Deleted_Internal'",
            ref.name,
            version,
        )
        if not rows:
            raise RegistryError(f"model '{ref.name}' has no version {version}")
        tag = self._query(
            "SELECT value FROM model_version_tags WHERE name = ? AND version = ? AND key = ?",
            ref.name,
            version,
            MANIFEST_SHA_TAG,
        )
        return RegisteredVersion(ref.name, version, str(rows[0][0]), tag[0][0] if tag else None)

    def read(self, found: RegisteredVersion, file: str) -> bytes:
        if urllib.parse.urlparse(found.artifact_uri).scheme not in ("file", ""):
            raise NeedsMlflow(found.artifact_uri)
        return _read_local(found, file)


def _read_local(found: RegisteredVersion, file: str) -> bytes:
    """A bundle file from an artifact folder on this machine (``file://`` or a path)."""
    parsed = urllib.parse.urlparse(found.artifact_uri)
    folder = Path(urllib.parse.unquote(parsed.path)) / MLFLOW_SUBDIR
    if not folder.is_dir():
        raise NeedsMlflow(found.artifact_uri)  # another machine's folder: MLflow's client
    try:
        return (folder / file).read_bytes()
    except OSError as error:
        raise RegistryError(
            f"{found.name} version {found.version}: cannot read {file} from {folder} "
            f"({error.strerror}); was the artifact folder changed?"
        ) from None


def store_for(tracking_uri: str | None) -> Store | None:
    """The light store for a tracking URI, or None where MLflow's client is needed."""
    uri = tracking_uri or default_tracking_uri()
    if uri.startswith(("http://", "https://")):
        return RestStore(uri)
    if uri.startswith("sqlite:///"):
        return SqliteStore(uri)
    return None


def require_safe_name(name: str, root: Path) -> None:
    """The model name becomes a cache folder: it must not climb out of the cache."""
    folder = (root / name).resolve()
    if name in (".", "..") or "\\" in name or folder.parent != root.resolve():
        raise RegistryError(
            f"model name '{name}' cannot be a cache folder (path traversal); "
            "use a name of letters, digits, '-', '_' and '.'"
        )


class BundleCache:
    """Verified bundle files by store, model name and version; aliases last resolved."""

    def __init__(self, store_uri: str, root: Path | None = None):
        # Key by store: two tracking servers can both have "mnist5k-cnn" version 1.
        key = hashlib.sha256(store_uri.encode()).hexdigest()[:12]
        self.root = (root or home_dir() / "cache" / "bundles") / key

    def folder(self, name: str, version: str) -> Path:
        require_safe_name(name, self.root)
        return self.root / name / version

    def verified(self, name: str, version: str, manifest_sha256: str | None) -> Path | None:
        """The cached folder if every file matches its recorded checksum, else None
        (a failing copy is removed, so it is fetched again and never served)."""
        folder = self.folder(name, version)
        if not (folder / MANIFEST).is_file():
            return None
        try:
            _verify(folder, manifest_sha256)
        except ModelyardError:
            _discard(folder)
            return None
        return folder

    def store(self, store: Store, found: RegisteredVersion) -> Path:
        """Fetch the version's files beside the cache, verify them, then move them in,
        so a crash or a bad download never leaves a half bundle in the cache.

        Several processes may fetch one version at once (``serve --workers N`` with a
        shadow, two servers on one machine): the cached folder only ever appears whole
        (a rename) and only ever goes whole (:func:`_discard`), and a process that finds
        another's verified copy already moved in uses that one."""
        final = self.folder(found.name, found.version)
        final.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{found.version}-"))
        try:
            for file in BUNDLE_FILES:
                (staging / file).write_bytes(store.read(found, file))
            _verify(staging, found.manifest_sha256, where=f"{found.name} version {found.version}")
            for _ in range(MOVE_IN_TRIES):
                try:
                    staging.rename(final)
                    return final
                except OSError:  # a copy is there: another process moved its own in
                    if self.verified(found.name, found.version, found.manifest_sha256):
                        return final  # (one that fails is discarded, and ours goes in)
            raise BundleError(
                f"could not move {found.name} version {found.version} into the cache at "
                f"{final}; check that the folder is writable"
            )
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def remember(self, name: str, alias: str, found: RegisteredVersion) -> None:
        path = self.folder(name, ALIASES_FILE)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Several processes may remember aliases of one model at once: each reads,
        # adds its own and writes under a lock (no alias lost to a concurrent write),
        # through a file of its own moved over the old one (readers, who take no lock,
        # see the old records or the new, never half of them).
        with _locked(path.with_name(f".{ALIASES_FILE}.lock")):
            records = self.aliases(name)
            records[alias] = {
                "version": found.version,
                "manifest_sha256": found.manifest_sha256,
                "resolved_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            }
            handle, partial = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")
            with os.fdopen(handle, "w") as out:
                out.write(json.dumps(records, indent=2))
            os.replace(partial, path)

    def aliases(self, name: str) -> dict[str, dict[str, Any]]:
        path = self.folder(name, ALIASES_FILE)
        try:
            return cast("dict[str, dict[str, Any]]", json.loads(path.read_text()))
        except (OSError, ValueError):
            return {}


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock between processes on ``path`` (POSIX ``flock``; where there is
    none, no lock: the write is still whole, only a concurrent one may be lost)."""
    try:
        import fcntl
    except ImportError:  # Windows
        yield
        return
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield  # the lock goes with the file's closing


def _discard(folder: Path) -> None:
    """Remove a cached folder in one step for every reader: renamed aside first (a
    process opening it then finds nothing, never half a bundle), then deleted."""
    aside = folder.with_name(f".discarded-{folder.name}-{os.getpid()}-{os.urandom(4).hex()}")
    try:
        folder.rename(aside)
    except FileNotFoundError:
        return  # another process discarded it first
    shutil.rmtree(aside, ignore_errors=True)


def _verify(folder: Path, manifest_sha256: str | None, where: str | None = None) -> None:
    """bundle.json against the registry's tag (when the version has one), then every
    file against the manifest's own sha256 record."""
    if manifest_sha256 is not None and file_sha256(folder / MANIFEST) != manifest_sha256:
        raise BundleError(
            f"{where or folder}: bundle.json does not match the sha256 recorded when the "
            "version was registered (corrupt or tampered); refusing to serve it"
        )
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except ValueError as error:
        raise BundleError(f"{where or folder}: bundle.json is not valid JSON: {error}") from None
    verify_files(folder, manifest)


def fetch_bundle(uri: str, tracking_uri: str | None = None) -> Fetched | None:
    """The bundle folder for a ``models:/`` URI, from the light store and the cache.

    Returns None when MLflow's client must do it (another store, unproxied artifacts,
    a ``runs:/`` URI). When the registry is unreachable, an alias's last resolved
    version (or a pinned version) is served from the cache if it verifies; otherwise
    the error says the registry is down and the cache holds nothing to serve.
    """
    ref = ModelRef.parse(uri)
    store = store_for(tracking_uri)
    if ref is None or store is None:
        return None
    cache = BundleCache(store.uri)
    require_safe_name(ref.name, cache.root)  # before any request names it
    try:
        found = store.resolve(ref)
        folder = cache.verified(found.name, found.version, found.manifest_sha256)
        if folder is None:
            folder = cache.store(store, found)
    except NeedsMlflow:
        return None
    except RegistryUnreachable as down:
        return _from_cache(cache, ref, uri, down)
    if ref.alias is not None:
        cache.remember(ref.name, ref.alias, found)
    return Fetched(folder, found.name, found.version)


def _from_cache(cache: BundleCache, ref: ModelRef, uri: str, down: RegistryUnreachable) -> Fetched:
    record: dict[str, Any] = {}
    if ref.alias is not None:
        record = cache.aliases(ref.name).get(ref.alias, {})
    version = ref.version or record.get("version")
    folder = cache.verified(ref.name, version, record.get("manifest_sha256")) if version else None
    if version is None or folder is None:
        raise RegistryError(
            f"{down}, and the cache holds no verified copy of {uri}; start it (or point "
            "tracking_uri=... at a running one), or serve a bundle folder"
        ) from None
    when = f", resolved {record['resolved_at']}" if "resolved_at" in record else ""
    note = (
        f"registry unreachable ({down}); serving {ref.name} version {version} from the cache{when}"
    )
    return Fetched(folder, ref.name, version, from_cache_note=note)


def resolve_alias(uri: str, tracking_uri: str | None = None) -> str | None:
    """The version an alias URI names now (a server's poll), or None for pinned
    versions and folders.

    Raises :class:`RegistryUnreachable` when the registry does not answer, and
    :class:`NeedsMlflow` for a store only MLflow's client can read (the caller asks
    it instead: a None here would read as "the alias did not move").
    """
    ref = ModelRef.parse(uri)
    if ref is None or ref.alias is None:
        return None
    store = store_for(tracking_uri)
    if store is None:
        raise NeedsMlflow(tracking_uri or default_tracking_uri())
    return store.resolve(ref).version
