"""A shadow's log rows: they reuse the main row's input summary when both versions
read inputs the same way, and summarise their own inputs when they do not."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa

from modelyard.features.image import ImageSpec
from modelyard.modality import modality_for
from modelyard.modality.image import ImageModality
from modelyard.monitor.logstore import create_log_engine, predictions, read_window
from modelyard.monitor.profile import image_summaries
from modelyard.serve.metrics import ServerMetrics
from modelyard.serve.monitoring import ServingMonitor
from modelyard.serve.settings import ServeSettings

LABELS = tuple(str(i) for i in range(10))
SPEC = ImageSpec(height=8, width=8, channels=1, mean=0.0, std=1.0)


class CountingImages(ImageModality):
    """The image kind, counting the images it summarises."""

    def __init__(self) -> None:
        self.summarised = 0
        self.calls = 0

    def summaries(self, observed: Any) -> dict[str, np.ndarray]:
        self.summarised += len(observed)
        self.calls += 1
        return super().summaries(observed)


def _model(version: str, modality: ImageModality, spec: ImageSpec, role: str = "main") -> Any:
    bundle = SimpleNamespace(reference_profile={}, labels=LABELS)
    return SimpleNamespace(
        name="digits", version=version, modality=modality, spec=spec, bundle=bundle, role=role
    )


@pytest.fixture
def monitor(tmp_path: Path) -> ServingMonitor:
    url = f"sqlite:///{tmp_path / 'log.db'}"
    settings = ServeSettings(prediction_log_url=url, log_write_rows=0)
    return ServingMonitor(settings, ServerMetrics())


def _log(
    monitor: ServingMonitor, main: Any, shadow: Any, images: list[np.ndarray], share: bool
) -> None:
    """Queue main and shadow rows as the data plane and the shadow do: every main row
    first, then the shadow's rows (a batch later, in one step), sharing when asked to."""
    rng = np.random.default_rng(1)
    rows = []
    for i, image in enumerate(images):
        outputs = {"probabilities": rng.dirichlet(np.ones(10), len(image)).astype(np.float32)}
        assert monitor.observe(main, f"r{i}", image, outputs, 0.001)
        rows.append(monitor.queued_row(f"r{i}", image) if share else None)
    if share:
        assert all(row is not None for row in rows)
    batch = [
        (f"r{i}", image, {"probabilities": rng.dirichlet(np.ones(10), len(image))}, row, None)
        for i, (image, row) in enumerate(zip(images, rows, strict=True))
    ]
    assert monitor.observe_shadow(shadow, batch, 0.002) == len(images)


def _images(count: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (1 + i % 3, 8, 8, 1), dtype=np.uint8) for i in range(count)]


@pytest.mark.parametrize("flushes", [1, 2])
def test_a_shadow_row_reuses_the_main_rows_summary(monitor: ServingMonitor, flushes: int) -> None:
    modality = CountingImages()
    main, shadow = _model("1", modality, SPEC), _model("2", modality, SPEC, "shadow")
    images = _images(12)
    assert monitor.log is not None
    if flushes == 1:
        _log(monitor, main, shadow, images, share=True)
    else:  # the shadow's rows reach the log thread one write after the main rows
        rng = np.random.default_rng(1)
        rows = []
        for i, image in enumerate(images):
            probabilities = rng.dirichlet(np.ones(10), len(image)).astype(np.float32)
            monitor.observe(main, f"r{i}", image, {"probabilities": probabilities}, 0.001)
            rows.append(monitor.queued_row(f"r{i}", image))
        monitor.flush_queued()
        for i, (image, row) in enumerate(zip(images, rows, strict=True)):
            probabilities = rng.dirichlet(np.ones(10), len(image)).astype(np.float32)
            outputs = {"probabilities": probabilities}
            monitor.observe(shadow, f"r{i}", image, outputs, 0.002, sampled=True, shares=row)
    monitor.flush_queued()
    monitor.log.start()
    monitor.log.close()
    rows = sum(len(image) for image in images)
    assert modality.summarised == rows  # once for both versions, not twice
    engine = create_log_engine(str(monitor.settings.prediction_log_url))
    main_rows = read_window(engine, "digits", version="1")
    shadow_rows = read_window(engine, "digits", version="2")
    engine.dispose()
    assert len(main_rows) == len(shadow_rows) == rows
    assert shadow_rows.request_ids == main_rows.request_ids
    expected = image_summaries(np.concatenate(images))
    for name, values in expected.items():
        # what a drift check over the shadow's version reads: the inputs' own summary
        assert np.allclose(shadow_rows.summaries[name], values), name
        assert np.allclose(main_rows.summaries[name], values), name


def test_a_shadow_that_reads_inputs_differently_summarises_its_own(
    monitor: ServingMonitor,
) -> None:
    modality = CountingImages()
    other = ImageSpec(height=8, width=8, channels=1, mean=0.5, std=0.25)
    main, shadow = _model("1", modality, SPEC), _model("2", modality, other, "shadow")
    images = _images(5)
    _log(monitor, main, shadow, images, share=False)
    monitor.flush_queued()
    rows = sum(len(image) for image in images)
    assert modality.summarised == 2 * rows


def test_only_the_main_row_just_queued_with_the_same_inputs_is_shared(
    monitor: ServingMonitor,
) -> None:
    main = _model("1", modality_for("image"), SPEC)
    first, second = _images(2)
    monitor.observe(main, "a", first, {"probabilities": np.full((len(first), 10), 0.1)}, 0.001)
    assert monitor.queued_row("a", first) is not None
    assert monitor.queued_row("a", first.copy()) is None  # equal values, other inputs
    assert monitor.queued_row("b", first) is None  # a request id reused by a client
    monitor.observe(main, "b", second, {"probabilities": np.full((len(second), 10), 0.1)}, 0.001)
    assert monitor.queued_row("a", first) is None  # only the latest row is kept


def test_main_rows_between_shadow_bursts_are_summarised_in_one_call(
    monitor: ServingMonitor,
) -> None:
    """The shadow's rows arrive in bursts between main rows; the main rows of one
    write are still summarised in one call, and each shadow row is written after the
    main row of its request."""
    modality = CountingImages()
    main, shadow = _model("1", modality, SPEC), _model("2", modality, SPEC, "shadow")
    images = _images(30)
    rows = []
    for i, image in enumerate(images):
        outputs = {"probabilities": np.full((len(image), 10), 0.1, np.float32)}
        monitor.observe(main, f"r{i}", image, outputs, 0.001)
        rows.append(monitor.queued_row(f"r{i}", image))
        if i % 3 == 2:  # a shadow batch lands: the last three requests
            for j in range(i - 2, i + 1):
                outputs = {"probabilities": np.full((len(images[j]), 10), 0.1, np.float32)}
                monitor.observe(
                    shadow, f"r{j}", images[j], outputs, 0.002, sampled=True, shares=rows[j]
                )
    monitor.flush_queued()
    assert modality.calls == 1
    assert monitor.log is not None
    monitor.log.start()
    monitor.log.close()
    engine = create_log_engine(str(monitor.settings.prediction_log_url))
    with engine.connect() as connection:
        logged = connection.execute(
            sa.select(predictions.c.id, predictions.c.request_id, predictions.c.version)
        ).all()
    engine.dispose()
    first: dict[str, tuple[int, str]] = {}
    for row_id, request_id, version in sorted(logged):
        first.setdefault(request_id, (row_id, version))
    assert {version for _, version in first.values()} == {"1"}
    assert len(logged) == 2 * sum(len(image) for image in images)


def test_a_shadow_that_skipped_requests_gets_each_rows_own_summary(
    monitor: ServingMonitor,
) -> None:
    """Requests the shadow dropped leave gaps: the shared summaries are gathered in
    pieces, across two writes, and each shadow row still gets its own input's."""
    modality = CountingImages()
    main, shadow = _model("1", modality, SPEC), _model("2", modality, SPEC, "shadow")
    images = _images(20)
    kept = [i for i in range(len(images)) if i % 3 != 1]
    rows = {}
    for i, image in enumerate(images):
        outputs = {"probabilities": np.full((len(image), 10), 0.1, np.float32)}
        monitor.observe(main, f"r{i}", image, outputs, 0.001)
        rows[i] = monitor.queued_row(f"r{i}", image)
        if i == 9:
            monitor.flush_queued()  # the first half's main rows are written alone
    for i in kept:
        outputs = {"probabilities": np.full((len(images[i]), 10), 0.1, np.float32)}
        monitor.observe(shadow, f"r{i}", images[i], outputs, 0.002, sampled=True, shares=rows[i])
    monitor.flush_queued()
    assert modality.summarised == sum(len(image) for image in images)
    assert monitor.log is not None
    monitor.log.start()
    monitor.log.close()
    engine = create_log_engine(str(monitor.settings.prediction_log_url))
    shadow_rows = read_window(engine, "digits", version="2")
    engine.dispose()
    assert shadow_rows.request_ids == [f"r{i}" for i in kept for _ in range(len(images[i]))]
    expected = image_summaries(np.concatenate([images[i] for i in kept]))
    for name, values in expected.items():
        assert np.allclose(shadow_rows.summaries[name], values), name


def test_shadow_rows_beyond_their_share_of_the_log_are_dropped_first(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'log.db'}"
    # 14 records, of which a shadow's rows may fill 11 (SHADOW_SHARE); 3 are kept for main rows
    settings = ServeSettings(prediction_log_url=url, log_write_rows=0, log_buffer_records=14)
    metrics = ServerMetrics()
    monitor = ServingMonitor(settings, metrics)
    modality = modality_for("image")
    main, shadow = _model("1", modality, SPEC), _model("2", modality, SPEC, "shadow")
    images = [np.zeros((2, 8, 8, 1), np.uint8) for _ in range(4)]  # 8 rows
    for i, image in enumerate(images):
        assert monitor.observe(main, f"r{i}", image, {"probabilities": np.full((2, 10), 0.1)}, 0)
    batch = [
        (f"r{i}", image, {"probabilities": np.full((2, 10), 0.1)}, None, None)
        for i, image in enumerate(images)
    ]
    # room for 3 of the 8 shadow rows: the first request's, then none (never half a request)
    assert monitor.observe_shadow(shadow, batch, 0.002) == 1
    assert metrics.registry.get_sample_value("modelyard_prediction_log_dropped_total") == 6
    assert metrics.registry.get_sample_value("modelyard_prediction_log_shadow_dropped_total") == 6
    monitor.flush_queued()  # 10 rows buffered for the log
    # the main path still finds room: the shadow left the reserve alone
    late = np.zeros((2, 8, 8, 1), np.uint8)
    assert monitor.observe(main, "r9", late, {"probabilities": np.full((2, 10), 0.1)}, 0)
    monitor.flush_queued()
    assert metrics.registry.get_sample_value("modelyard_prediction_log_dropped_total") == 6
    assert monitor.log is not None
    monitor.log.start()
    monitor.log.close()
    engine = create_log_engine(url)
    assert read_window(engine, "digits", version="2").request_ids == ["r0", "r0"]
    assert len(read_window(engine, "digits", version="1")) == 10
    engine.dispose()
