"""The fastText-style model: padding never changes the output; shapes as exported."""

from __future__ import annotations

import torch

from modelyard.config.schema import ModelConfig
from modelyard.models import build_text_model


def test_padding_does_not_change_predictions() -> None:
    torch.manual_seed(0)
    model = build_text_model(ModelConfig(name="fasttext", embedding_dim=8, hidden=16), 101, 3)
    model.eval()
    ids = torch.tensor([[5, 7, 9, 100, 100]])  # 100 is the padding id (vocab - 1)
    shorter = torch.tensor([[5, 7, 9]])
    longer = torch.tensor([[5, 7, 9] + [100] * 20])
    with torch.no_grad():
        out = [model(x) for x in (ids, shorter, longer)]
        assert model.embed(ids).shape == (1, 16)
    assert out[0].shape == (1, 3)
    torch.testing.assert_close(out[0], out[1])
    torch.testing.assert_close(out[0], out[2])
    # The mean, not the sum: repeating every n-gram leaves the text's representation as is.
    with torch.no_grad():
        torch.testing.assert_close(model(torch.tensor([[5, 7, 9, 5, 7, 9]])), out[0])


def test_padding_row_stays_zero_and_gradients_are_sparse() -> None:
    model = build_text_model(ModelConfig(name="fasttext", embedding_dim=4, hidden=0), 11, 2)
    loss = model(torch.tensor([[1, 2, 10], [3, 10, 10]])).sum()
    loss.backward()
    grad = model.embeddings.weight.grad
    assert grad is not None and grad.is_sparse
    assert set(grad.coalesce().indices()[0].tolist()) <= {1, 2, 3}
    assert model.embeddings.weight[10].abs().sum() == 0


def test_ngram_dropout_only_while_training() -> None:
    torch.manual_seed(0)
    cfg = ModelConfig(name="fasttext", embedding_dim=8, hidden=0, dropout=0.0, ngram_dropout=0.5)
    model = build_text_model(cfg, 1001, 3)
    ids = torch.randint(0, 1000, (4, 50))
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(ids), model(ids))  # deterministic when evaluating
        model.train()
        assert not torch.allclose(model(ids), model(ids))  # a different half dropped each time
