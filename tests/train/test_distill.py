"""``modelyard distill``: the loss, the teacher's logits, the refusals, and a real run."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import mlflow
import numpy as np
import onnxruntime as ort
import pytest
import torch
import torch.nn.functional as F
from mlflow.tracking import MlflowClient
from tests.conftest import FAST
from tests.helpers import cli_in_fresh_interpreter
from typer.testing import CliRunner

from modelyard import bundle as bundles
from modelyard.bundle import MANIFEST, file_sha256
from modelyard.cli import app
from modelyard.config.schema import TrainConfig
from modelyard.errors import ConfigError, UsageError
from modelyard.features.image import ImageSpec, to_model_input
from modelyard.paths import checkpoint_dir
from modelyard.train import distill as distill_module
from modelyard.train.distill import (
    MANIFEST_KEY,
    TEACHER_TAG,
    Distillation,
    distill,
    distillation_loss,
)
from modelyard.train.distill_command import distill_config
from modelyard.train.distill_teacher import Teacher
from modelyard.train.module import Classifier
from modelyard.train.run import LAST_CHECKPOINT, TrainingInterrupted


def _softmax(values: list[float]) -> list[float]:
    exps = [math.exp(v) for v in values]
    return [e / sum(exps) for e in exps]


def test_loss_is_the_hand_computed_mix_of_soft_kl_and_hard_cross_entropy() -> None:
    student, teacher, label, t, alpha = [1.0, 2.0, 0.0], [2.0, 0.0, 1.0], 1, 2.0, 0.25
    p_teacher = _softmax([v / t for v in teacher])
    p_student = _softmax([v / t for v in student])
    kl = sum(pt * math.log(pt / ps) for pt, ps in zip(p_teacher, p_student, strict=True))
    cross_entropy = -math.log(_softmax(student)[label])
    expected = alpha * t * t * kl + (1 - alpha) * cross_entropy
    # By hand: p_teacher = (.5065, .1863, .3072) and p_student its rotation, so
    # KL = .5065 * 0.5 - .1863 * 1.0 + .3072 * 0.5 = .2205; CE = -ln(.6652) = .4076;
    # .25 * 4 * .2205 + .75 * .4076 = .5262.
    assert expected == pytest.approx(0.5262, abs=1e-4)
    loss = distillation_loss(
        torch.tensor([student]), torch.tensor([teacher]), torch.tensor([label]), t, alpha
    )
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_loss_averages_over_the_batch_and_vanishes_when_the_student_matches() -> None:
    logits = torch.randn(5, 4)
    labels = torch.randint(0, 4, (5,))
    assert distillation_loss(logits, logits, labels, 3.0, 1.0).item() == pytest.approx(0, abs=1e-6)
    one = [
        distillation_loss(logits[i : i + 1], -logits[i : i + 1], labels[i : i + 1], 3.0, 0.7)
        for i in range(5)
    ]
    batch = distillation_loss(logits, -logits, labels, 3.0, 0.7)
    assert batch.item() == pytest.approx(torch.stack(one).mean().item(), rel=1e-5)


class _RandomTeacher:
    """Stands in for a bundle: logits that differ from the student's."""

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return torch.randn(x.shape[0], 3)


def test_alpha_zero_trains_on_the_same_loss_as_plain_cross_entropy() -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3))
    cfg = TrainConfig(augment=False)
    batch = (torch.randn(8, 1, 2, 2), torch.randint(0, 3, (8,)))
    plain = Classifier(model, cfg)
    plain.log = lambda *args, **kwargs: None  # type: ignore[method-assign]  # no Trainer here
    student = Classifier(model, cfg)
    student.log = plain.log  # type: ignore[method-assign]  # as above
    callback = Distillation(_RandomTeacher(), temperature=4.0, alpha=0.0)  # type: ignore[arg-type]  # a stand-in teacher
    callback.setup(None, student, "fit")  # type: ignore[arg-type]  # setup reads only the module
    assert student.train_loss is not None
    expected = F.cross_entropy(model(batch[0]), batch[1])
    assert student.training_step(batch, 0).item() == pytest.approx(expected.item(), rel=1e-6)
    assert plain.training_step(batch, 0).item() == pytest.approx(expected.item(), rel=1e-6)
    # alpha > 0 does use the teacher: the loss moves away from the cross-entropy.
    callback.alpha = 0.5
    assert student.training_step(batch, 0).item() != pytest.approx(expected.item(), rel=1e-3)


def test_teacher_logits_are_the_bundles_and_other_preprocessing_is_converted(
    trained, use_session_home
) -> None:  # type: ignore[no-untyped-def]
    teacher_bundle = bundles.read_bundle(trained.bundle_path)
    spec = teacher_bundle.preprocessing
    images = np.random.default_rng(0).integers(0, 256, (6, 8, 8, 1), dtype=np.uint8)
    session = ort.InferenceSession(str(teacher_bundle.onnx_path))
    (expected,) = session.run(["logits"], {"input": to_model_input(images, spec)})
    same = Teacher(teacher_bundle, spec).logits(torch.from_numpy(to_model_input(images, spec)))
    np.testing.assert_allclose(same.numpy(), expected, atol=1e-5)
    # An RGB student normalised otherwise: the teacher still sees its own grey input.
    rgb = ImageSpec(height=8, width=8, channels=3, mean=0.5, std=0.25)
    x = torch.from_numpy(to_model_input(np.repeat(images, 3, axis=3), rgb))
    converted = Teacher(teacher_bundle, rgb).logits(x)
    np.testing.assert_allclose(converted.numpy(), expected, atol=1e-4)
    assert Teacher(teacher_bundle, spec).record.bundle_sha256 == file_sha256(
        teacher_bundle.path / MANIFEST
    )


def _digits(*extra: str) -> list[str]:
    return [*FAST, "model=cnn_small", "task.model_name=digits-student", *extra]


def _no_runs_opened() -> bool:
    client = MlflowClient()
    experiments = [e.experiment_id for e in client.search_experiments()]
    return not experiments or not client.search_runs(experiments)


def test_teacher_with_other_labels_is_refused_naming_both_lists(
    trained, home: Path, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "letters"
    shutil.copytree(bundles.read_bundle(trained.bundle_path).path, folder)
    bundles.update_manifest(bundles.read_bundle(folder), {"labels": list("abcdefghij")})
    with pytest.raises(ConfigError) as error:
        distill(distill_config(_digits(f"teacher={folder}")))
    message = str(error.value)
    assert "'a', 'b'" in message and "'0', '1'" in message and "\n" not in message
    assert _no_runs_opened()


def test_unknown_student_architecture_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="cnn cnn_fast cnn_small fasttext"):
        distill_config(["teacher=x@candidate", "task=digits", "model=resnet"])


@pytest.mark.parametrize(
    ("teacher", "says"),
    [
        ("nosuch@candidate", "teacher=nosuch@candidate does not resolve"),
        ("/no/such/folder", "teacher=/no/such/folder does not resolve"),
        ("", "distill needs a teacher"),
    ],
)
def test_teacher_that_does_not_resolve_is_refused_before_training(
    teacher: str, says: str, home: Path
) -> None:
    with pytest.raises(UsageError, match=says) as error:
        distill(distill_config(_digits(f"teacher={teacher}")))
    assert "\n" not in str(error.value)
    assert _no_runs_opened()


@pytest.mark.parametrize(
    ("override", "says"),
    [("train.refit=true", "set train.refit=false"), ("train.devices=2", "set train.devices=1")],
)
def test_settings_that_would_train_without_the_teacher_are_refused(
    override: str, says: str, home: Path
) -> None:
    with pytest.raises(ConfigError, match=says):
        distill(distill_config(_digits("teacher=nosuch@candidate", override)))
    assert _no_runs_opened()


@pytest.mark.parametrize(
    ("override", "says"),
    [
        ("distill.temperature=0", "distill.temperature must be positive, got 0.0"),
        ("distill.temperature=-1", "distill.temperature must be positive"),
        ("distill.alpha=1.5", "distill.alpha must be within 0..1"),
    ],
)
def test_bad_temperature_or_alpha_is_refused_when_composing(override: str, says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        distill_config(["teacher=x@candidate", "task=digits", override])


def test_cli_refuses_a_bad_temperature_before_the_training_stack_loads() -> None:
    words = ["distill", "teacher=x@candidate", "task=digits", "distill.temperature=0"]
    answer = cli_in_fresh_interpreter(words)
    assert answer == {"error": "distill.temperature must be positive, got 0.0", "heavy": []}


def test_ctrl_c_leaves_nothing_that_train_resume_would_continue_without_the_teacher(
    trained, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    last = checkpoint_dir("run-1") / LAST_CHECKPOINT
    last.parent.mkdir(parents=True)
    last.write_bytes(b"checkpoint")

    def interrupted(*args: object, **kwargs: object) -> None:
        raise TrainingInterrupted("interrupted; resume it with: modelyard train", "run-1", "x")

    monkeypatch.setattr(distill_module, "train", interrupted)
    with pytest.raises(TrainingInterrupted) as error:
        distill(distill_config(_digits(f"teacher={trained.bundle_path}")))
    assert "a distill run cannot be resumed" in str(error.value)
    assert error.value.command is None and not last.exists()


def test_ctrl_c_after_the_distill_run_finished_does_not_call_it_killed(
    trained, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    """A press held in a finished run's last writes: the run is complete and its model
    registered, so "ended KILLED ... run the same command again" would train a twin."""
    finished = "interrupted after MLflow run run-1 had finished: it is complete; nothing to resume"

    def interrupted(*args: object, **kwargs: object) -> None:
        raise TrainingInterrupted(finished, "run-1")

    monkeypatch.setattr(distill_module, "train", interrupted)
    with pytest.raises(TrainingInterrupted) as error:
        distill(distill_config(_digits(f"teacher={trained.bundle_path}")))
    assert str(error.value) == finished


@pytest.mark.slow
def test_distill_registers_a_student_whose_run_and_bundle_name_the_teacher(
    trained, use_session_home
) -> None:  # type: ignore[no-untyped-def]
    teacher_uri = f"models:/digits-cnn/{trained.model_version}"
    result = CliRunner().invoke(
        app, ["distill", f"teacher={teacher_uri}", *_digits("distill.temperature=3"), "--json"]
    )
    assert result.exit_code == 0, result.output
    student = bundles.load("models:/digits-student@candidate")
    teacher_sha = file_sha256(bundles.read_bundle(trained.bundle_path).path / MANIFEST)
    record = student.manifest[MANIFEST_KEY]
    assert record["name"] == "digits-cnn" and record["version"] == trained.model_version
    assert record["bundle_sha256"] == teacher_sha
    assert record["temperature"] == 3.0 and record["alpha"] == 0.9
    assert student.manifest["cost"]["macs_per_example"] > 0
    assert student.metrics["test_accuracy"] > 0.5
    run = MlflowClient().get_run(student.manifest["run_id"])
    assert run.data.tags[TEACHER_TAG] == f"digits-cnn/{trained.model_version}"
    assert run.data.params["distill.teacher"] == teacher_uri
    assert run.data.params["distill.teacher_bundle_sha256"] == teacher_sha
    assert run.data.params["model.channels"] == "[16, 32]"
    assert mlflow.active_run() is None


def test_train_refuses_a_teacher_it_would_ignore(home: Path) -> None:
    """`modelyard train distill.teacher=...` would train without the teacher: refused."""
    result = CliRunner().invoke(app, ["train", "task=digits", "distill.teacher=x@candidate"])
    assert isinstance(result.exception, UsageError)  # exit 2 through main()
    assert "read by `modelyard distill` only" in str(result.exception)
