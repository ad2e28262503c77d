"""The server's metrics: a few rows take a per-value path, many a numpy path; both
must count the same buckets, sums and served labels, each label under its version."""

from __future__ import annotations

import numpy as np

from modelyard.serve.batcher import BatchStats
from modelyard.serve.metrics import ServerMetrics


def _samples(metrics: ServerMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in metrics.registry.collect()
        for s in family.samples
        if not s.name.endswith("_created")
    }


def test_small_and_large_batches_observe_confidences_alike() -> None:
    rng = np.random.default_rng(0)
    probabilities = rng.dirichlet(np.ones(4), size=40).astype(np.float32)
    one_by_one, all_at_once = ServerMetrics(), ServerMetrics()
    for row in probabilities:
        one_by_one.observe_confidences("m", row[None, :])
    all_at_once.observe_confidences("m", probabilities)
    got, want = _samples(one_by_one), _samples(all_at_once)
    assert got.keys() == want.keys()
    for key, value in want.items():
        assert np.isclose(got[key], value, rtol=1e-6), key
    count = all_at_once.registry.get_sample_value(
        "modelyard_prediction_confidence_count", {"model": "m"}
    )
    assert count == 40
    total = all_at_once.registry.get_sample_value(
        "modelyard_prediction_confidence_sum", {"model": "m"}
    )
    assert np.isclose(total, probabilities.max(axis=1).sum(), rtol=1e-6)
    # labels are counted per answer (count_served), never per batch
    assert not any(k[0] == "modelyard_predictions_total" for k in want)


def test_small_and_large_batches_observe_queue_times_alike() -> None:
    waits = [0.0001 * i for i in range(12)]
    few, many = ServerMetrics(), ServerMetrics()
    for start in range(0, 12, 2):
        few.observe_batch("m", BatchStats(2, 2, "full", waits[start : start + 2], 0.001))
    many.observe_batch("m", BatchStats(12, 12, "full", waits, 0.001))
    queue = {k: v for k, v in _samples(few).items() if k[0].startswith("modelyard_queue_seconds")}
    assert queue, "no queue-time histogram found"
    for key, value in queue.items():
        assert np.isclose(_samples(many)[key], value), key


def test_served_labels_are_counted_per_request_and_unknown_only_once_served() -> None:
    from modelyard.modality.base import AnswerRule

    probabilities = np.array([[0.9, 0.1], [0.55, 0.45], [0.2, 0.8], [0.5, 0.5]] * 3)
    labels = ["da", "sv"]
    rule = AnswerRule(0.6, "unknown")
    one, few, many, plain = ServerMetrics(), ServerMetrics(), ServerMetrics(), ServerMetrics()
    for row in probabilities:  # one row a request: the flat argmax path
        one.count_served("m", "3", labels, row[None, :], rule)
    for start in range(0, len(probabilities), 3):  # a few rows: a loop per row
        few.count_served("m", "3", labels, probabilities[start : start + 3], rule)
    many.count_served("m", "3", labels, probabilities, rule)
    plain.count_served("m", "3", labels, probabilities, None)

    def predicted(metrics: ServerMetrics) -> dict[tuple[str, str], float]:
        return {
            (dict(k[1])["version"], dict(k[1])["label"]): v
            for k, v in _samples(metrics).items()
            if k[0] == "modelyard_predictions_total"
        }

    expected = {("3", "da"): 3.0, ("3", "sv"): 3.0, ("3", "unknown"): 6.0}
    assert predicted(one) == predicted(few) == predicted(many) == expected
    assert predicted(plain) == {("3", "da"): 9.0, ("3", "sv"): 3.0}  # no unknown series at all


def test_served_labels_are_counted_under_the_version_that_served_them() -> None:
    probabilities = np.eye(3)[[0, 1, 2, 2, 1, 2, 0, 2]]
    metrics = ServerMetrics()
    metrics.count_served("m", "1", ["a", "b", "c"], probabilities[:2], None)
    metrics.count_served("m", "4", ["a", "b", "c"], probabilities[2:], None)  # > _FEW rows path
    metrics.count_served("m", "4", ["a", "b", "c"], probabilities[:1], None)
    got = {
        (dict(k[1])["version"], dict(k[1])["label"]): v
        for k, v in _samples(metrics).items()
        if k[0] == "modelyard_predictions_total"
    }
    assert got == {
        ("1", "a"): 1.0,
        ("1", "b"): 1.0,
        ("4", "a"): 2.0,
        ("4", "b"): 1.0,
        ("4", "c"): 4.0,
    }


def test_held_request_observations_show_at_every_collect_and_stay_bounded() -> None:
    from modelyard.serve import metrics as metrics_module

    metrics = ServerMetrics()
    assert metrics.deferred  # one process: no PROMETHEUS_MULTIPROC_DIR in tests
    route = "/v2/models/{name}/infer"
    for seconds in (0.0004, 0.003, 0.2):
        metrics.count_request(route, "200", seconds)
    metrics.count_request(route, "400", 0.001)
    metrics.active_requests = 5
    value = metrics.registry.get_sample_value
    assert value("modelyard_requests_total", {"route": route, "status": "200"}) == 3
    assert value("modelyard_requests_total", {"route": route, "status": "400"}) == 1
    assert value("modelyard_request_duration_seconds_count", {"route": route}) == 4
    assert value("modelyard_request_duration_seconds_bucket", {"route": route, "le": "0.0005"}) == 1
    assert np.isclose(value("modelyard_request_duration_seconds_sum", {"route": route}), 0.2044)
    assert value("modelyard_requests_in_flight") == 5
    # never scraped: held values are handed over on their own, so memory stays bounded
    for _ in range(metrics_module._PENDING_LIMIT):
        metrics.count_request(route, "200", 0.001)
    assert len(metrics._pending) < metrics_module._PENDING_LIMIT
    assert b'modelyard_requests_total{route="/v2/models/{name}/infer",status="200"}' in (
        metrics.render()
    )
