"""Fast langid_nordic experiments: modelyard's features, model and optimiser in a plain
torch loop (no Lightning, MLflow, ONNX export or registry), about 15 s per run.

    taskset -c 0 .venv/bin/python benchmarks/text/quick_sweep.py TAG --data-dir <ud> \
        [--split-seed N] [--seeds 42 ...] [--crop 0.3] [--punct-dropout 0.5] \
        [--pool mean|sqrt|log] [--buckets N] [--dim N] [--epochs N] \
        [--holdout FILE-SUBSTRING] [--sklearn] [--jsonl out.jsonl]

It trains exactly ``--epochs`` epochs (no early stopping, no checkpoint choice), so
its scores differ from `modelyard train`'s by the run-to-run noise (about 0.005
macro-F1); it is for telling ideas apart cheaply, across several split seeds. An idea
worth adopting is then checked through the real flow (`val_sweep.py`, `splits.py`).

Ideas it can switch on, none of them in modelyard:
- ``--crop P``: each epoch, a share P of training sentences is replaced by a random
  window of 1..``--crop-max`` words (more short examples);
- ``--punct-dropout P``: each epoch, a share P of training sentences lose their
  punctuation (so the model cannot lean on one corpus's punctuation style);
- ``--strip-punct``: punctuation removed everywhere, training and prediction;
- ``--pool sqrt|log``: sum of n-gram embeddings over sqrt(count), or the mean times
  log(1 + count), instead of the mean (long texts carry more evidence);
- ``--ensemble K``: average the probabilities of K models trained with other seeds;
- ``--init-scale S``: the n-gram table drawn from U(-S, S) (0: unseen n-grams add nothing).
``--holdout S`` drops every file whose name holds S from training and scores on all
of its sentences (cross-genre); ``--sklearn`` scores the TF-IDF + LinearSVC baseline
(grid chosen on validation) on the same split instead.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
import types
from pathlib import Path

import numpy as np
import torch
from torch import nn

from modelyard.config import compose_config
from modelyard.config.schema import ModelConfig
from modelyard.data import load_text_dataset
from modelyard.data.text import TextSplit, class_weights
from modelyard.features.text import TextSpec, encode_texts
from modelyard.models.fasttext import FastText
from modelyard.train.optim import SparseDenseAdam

sys.path.insert(0, str(Path(__file__).resolve().parent))
from val_sweep import emit, per_class_f1

PUNCTUATION = re.compile(r"[^\w\s]|_")
LABELS = ["da", "sv", "nb", "nn", "other"]


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("tag")
    p.add_argument("--data-dir", type=Path, required=True)
    p.add_argument("--split-seed", type=int, default=0)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--ensemble", type=int, default=1)
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--dim", type=int, default=32)
    p.add_argument("--buckets", type=int, default=262144)
    p.add_argument("--lr", type=float, default=2e-2)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--crop", type=float, default=0.0)
    p.add_argument("--crop-max", type=int, default=10)
    p.add_argument("--punct-dropout", type=float, default=0.0)
    p.add_argument("--strip-punct", action="store_true")
    p.add_argument("--pool", choices=["mean", "sqrt", "log"], default="mean")
    p.add_argument("--init-scale", type=float, default=0.1)
    p.add_argument("--holdout", default="")
    p.add_argument("--sklearn", action="store_true")
    p.add_argument("--jsonl", type=Path)
    return p.parse_args()


def without_punctuation(text: str) -> str:
    """The text with punctuation turned into spaces, unless nothing else is left."""
    stripped = PUNCTUATION.sub(" ", text)
    return stripped if stripped.strip() else text


def crop(text: str, rng: np.random.Generator, longest: int) -> str:
    words = text.split()
    if len(words) <= 1:
        return text
    k = int(rng.integers(1, min(longest, len(words)) + 1))
    start = int(rng.integers(0, len(words) - k + 1))
    return " ".join(words[start : start + k])


def pooled(model: FastText, pool: str) -> FastText:
    """Swap the mean over n-grams for another pooling (``mean`` leaves it alone)."""
    if pool == "mean":
        return model

    def embed(self: FastText, ids: torch.Tensor) -> torch.Tensor:
        summed = self.embeddings(ids).sum(dim=1)
        count = (ids != self.pad_id).sum(dim=1, keepdim=True).clamp(min=1).to(summed.dtype)
        if pool == "sqrt":
            return summed / count.sqrt()
        return summed / count * torch.log1p(count)

    model.embed = types.MethodType(embed, model)  # type: ignore[method-assign]
    return model


class Experiment:
    def __init__(self, args: argparse.Namespace, train: TextSplit, spec: TextSpec):
        self.args = args
        self.train = train
        self.spec = spec
        self.weights = torch.from_numpy(class_weights(train.labels, len(LABELS)))

    def encode(self, texts: list[str]) -> torch.Tensor:
        if self.args.strip_punct:
            texts = [without_punctuation(t) for t in texts]
        return torch.from_numpy(encode_texts(texts, self.spec).ids)

    def epoch_texts(self, rng: np.random.Generator) -> list[str]:
        a = self.args
        texts = [str(t) for t in self.train.texts]
        if a.punct_dropout > 0:
            pick = rng.random(len(texts)) < a.punct_dropout
            texts = [without_punctuation(t) if c else t for t, c in zip(texts, pick, strict=True)]
        if a.crop > 0:
            pick = rng.random(len(texts)) < a.crop
            texts = [crop(t, rng, a.crop_max) if c else t for t, c in zip(texts, pick, strict=True)]
        return texts

    def fit(self, seed: int) -> FastText:
        a = self.args
        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)
        config = ModelConfig(name="fasttext", embedding_dim=a.dim, hidden=0, dropout=0.1)
        model = pooled(FastText(config, self.spec.vocab_size, len(LABELS)), a.pool)
        if a.init_scale != 0.1:  # FastText draws the table from U(-0.1, 0.1)
            with torch.no_grad():
                model.embeddings.weight.mul_(a.init_scale / 0.1)
        dense = [p for n, p in model.named_parameters() if not n.startswith("embeddings")]
        optimiser = SparseDenseAdam(model.sparse_parameters(), dense, lr=a.lr, weight_decay=1e-4)
        steps = a.epochs * -(-len(self.train) // a.batch_size)
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=a.lr, total_steps=steps)
        loss_fn = nn.CrossEntropyLoss(weight=self.weights)
        for _ in range(a.epochs):
            texts = self.epoch_texts(rng)
            lengths = np.array([len(t) for t in texts])
            order = rng.permutation(len(texts))
            window = 50 * a.batch_size
            batches = []
            for start in range(0, len(order), window):  # length-bucketed, as in modelyard
                part = order[start : start + window]
                part = part[np.argsort(lengths[part], kind="stable")]
                batches += [part[i : i + a.batch_size] for i in range(0, len(part), a.batch_size)]
            model.train()
            for b in rng.permutation(len(batches)):
                index = batches[b]
                ids = self.encode([texts[i] for i in index])
                labels = torch.from_numpy(self.train.labels[index].astype(np.int64))
                optimiser.zero_grad()
                loss_fn(model(ids), labels).backward()
                optimiser.step()
                schedule.step()
        return model.eval()

    def predict(self, models: list[FastText], texts: list[str]) -> np.ndarray:
        order = np.argsort([len(t) for t in texts])
        probabilities = np.zeros((len(texts), len(LABELS)), np.float32)
        with torch.no_grad():
            for start in range(0, len(texts), 1024):
                index = order[start : start + 1024]
                ids = self.encode([texts[i] for i in index])
                summed = sum(torch.softmax(m(ids), -1) for m in models)
                probabilities[index] = summed.numpy() / len(models)  # type: ignore[union-attr]
        return probabilities.argmax(1)


def short_accuracy(texts: np.ndarray, truth: np.ndarray, predicted: np.ndarray) -> float:
    """Accuracy on texts of 1-3 words (words holding a letter or digit)."""
    words = np.array([sum(any(ch.isalnum() for ch in w) for w in str(t).split()) for t in texts])
    return round(float((truth == predicted)[words <= 3].mean()), 4)


def main() -> None:
    a = parse()
    torch.set_num_threads(1)
    cfg = compose_config(
        ["task=langid_nordic", f"data.path={a.data_dir}", f"data.split_seed={a.split_seed}"]
    )
    dataset = load_text_dataset(cfg.data)
    train, val, test = dataset.split("train"), dataset.split("val"), dataset.split("test")
    held: TextSplit | None = None
    if a.holdout:
        parts = [s.take(np.array([a.holdout in g for g in s.groups])) for s in (train, val, test)]
        held = TextSplit(
            *(np.concatenate([getattr(p, f) for p in parts]) for f in ("texts", "labels", "groups"))
        )
        train = train.take(np.array([a.holdout not in g for g in train.groups]))
        val = val.take(np.array([a.holdout not in g for g in val.groups]))
    line: dict[str, object] = {"tag": a.tag, "args": {k: str(v) for k, v in vars(a).items()}}
    if a.sklearn:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "langid"))
        import baseline

        names = np.array(LABELS)
        fitted = baseline.fit(
            list(train.texts), list(names[train.labels]), list(val.texts), list(names[val.labels])
        )
        index = {label: i for i, label in enumerate(LABELS)}
        predict = lambda texts: np.array([index[x] for x in fitted.predict(list(texts))])  # noqa: E731
    else:
        spec = TextSpec(buckets=a.buckets)
        experiment = Experiment(a, train, spec)
        started = time.perf_counter()
        models = [experiment.fit(a.seed + 1000 * i) for i in range(a.ensemble)]
        line["fit_s"] = round(time.perf_counter() - started, 1)
        predict = lambda texts: experiment.predict(models, [str(t) for t in texts])  # noqa: E731
    line["val"] = per_class_f1(val.labels, predict(val.texts), LABELS)
    predicted = predict(test.texts)
    line["test"] = per_class_f1(test.labels, predicted, LABELS)
    line["test_short_accuracy"] = short_accuracy(test.texts, test.labels, predicted)
    if held is not None:
        line["holdout_accuracy"] = round(float((predict(held.texts) == held.labels).mean()), 4)
        line["holdout_n"] = len(held)
    emit(line, a.jsonl)


if __name__ == "__main__":
    main()
