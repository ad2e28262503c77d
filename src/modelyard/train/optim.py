"""An optimiser for models with a sparse embedding table (hashed n-gram models).

A text model's embedding table has hundreds of thousands of rows of which one batch
touches a few thousand. Dense Adam(W) would update every row on every step (most of
the training time); :class:`SparseDenseAdam` steps the sparse table with
``SparseAdam`` (only the touched rows) and everything else with AdamW, behind one
optimiser object, so Lightning and the learning-rate schedulers see a single one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch


class SparseDenseAdam(torch.optim.Optimizer):
    """SparseAdam for ``sparse`` parameters, AdamW (with weight decay) for ``dense``.

    The two inner optimisers' param groups *are* this optimiser's groups (the same
    dicts), so a scheduler changing ``lr`` here changes it where it is used.
    """

    def __init__(
        self,
        sparse: Iterable[torch.nn.Parameter],
        dense: Iterable[torch.nn.Parameter],
        lr: float,
        weight_decay: float,
        betas: tuple[float, float] = (0.9, 0.999),
    ):
        sparse, dense = list(sparse), list(dense)
        self.sparse_optimizer = torch.optim.SparseAdam(sparse, lr=lr, betas=betas)
        self.dense_optimizer = torch.optim.AdamW(
            dense, lr=lr, betas=betas, weight_decay=weight_decay
        )
        super().__init__(sparse + dense, {"lr": lr, "betas": betas})
        self.param_groups = [
            *self.sparse_optimizer.param_groups,
            *self.dense_optimizer.param_groups,
        ]

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        self.sparse_optimizer.step()  # type: ignore[no-untyped-call]  # torch leaves it unannotated
        self.dense_optimizer.step()
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.sparse_optimizer.zero_grad(set_to_none)
        self.dense_optimizer.zero_grad(set_to_none)

    def state_dict(self) -> dict[str, Any]:
        return {
            "sparse": self.sparse_optimizer.state_dict(),
            "dense": self.dense_optimizer.state_dict(),
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.sparse_optimizer.load_state_dict(state_dict["sparse"])
        self.dense_optimizer.load_state_dict(state_dict["dense"])
        self.param_groups = [
            *self.sparse_optimizer.param_groups,
            *self.dense_optimizer.param_groups,
        ]
