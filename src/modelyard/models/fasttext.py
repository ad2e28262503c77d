"""A fastText-style text classifier: the mean of hashed character n-gram embeddings,
then a linear layer (optionally one hidden ReLU layer before it).

Its input is :func:`modelyard.features.text.encode_texts`'s id matrix. The padding
id's embedding row is zero and never trained, so the sum over a row ignores padding
and dividing by the count of real ids gives the mean over the text's n-grams.
"""

from __future__ import annotations

from typing import cast

import torch
from torch import nn

from modelyard.config.schema import ModelConfig


class FastText(nn.Module):
    """``embed`` gives the text representation (exported as ``embedding``);
    ``classifier`` maps it to logits, as for the image models."""

    def __init__(self, cfg: ModelConfig, vocab_size: int, num_classes: int):
        super().__init__()
        self.pad_id = vocab_size - 1
        self.ngram_dropout = cfg.ngram_dropout
        # Sparse gradients: a batch touches a few thousand of the table's rows.
        self.embeddings = nn.Embedding(
            vocab_size, cfg.embedding_dim, padding_idx=self.pad_id, sparse=True
        )
        nn.init.uniform_(self.embeddings.weight, -0.1, 0.1)
        with torch.no_grad():
            self.embeddings.weight[self.pad_id].zero_()
        width = cfg.embedding_dim
        self.hidden: nn.Module = nn.Identity()
        if cfg.hidden > 0:
            self.hidden = nn.Sequential(nn.Linear(width, cfg.hidden), nn.ReLU())
            width = cfg.hidden
        self.dropout = nn.Dropout(cfg.dropout)
        self.classifier = nn.Linear(width, num_classes)

    def sparse_parameters(self) -> list[nn.Parameter]:
        """Parameters with sparse gradients (the trainer steps them with SparseAdam)."""
        # nn.Embedding.weight is a Parameter; torch's stubs type it as Tensor.
        return [cast(nn.Parameter, self.embeddings.weight)]

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        if self.training and self.ngram_dropout > 0:  # never traced: export runs in eval
            dropped = torch.rand(ids.shape, device=ids.device) < self.ngram_dropout
            ids = ids.masked_fill(dropped, self.pad_id)
        summed = self.embeddings(ids).sum(dim=1)
        count = (ids != self.pad_id).sum(dim=1, keepdim=True).clamp(min=1)
        return cast("torch.Tensor", self.hidden(summed / count.to(summed.dtype)))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return cast("torch.Tensor", self.classifier(self.dropout(self.embed(ids))))
