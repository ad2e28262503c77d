"""Which process of a distributed (DDP) training run this is.

With ``train.strategy=ddp`` Lightning starts the other ranks by running the same
command again (``modelyard train ...``) with ``LOCAL_RANK`` set; torchrun and
SLURM start every rank themselves with ``RANK`` / ``SLURM_PROCID``. Every rank
fits its shard of the data; only rank 0 opens the MLflow run, logs, writes the
bundle and registers the model, so a 2-process run produces one run and one
model version, exactly like a single-process run.
"""

from __future__ import annotations

import os

RUN_ID_ENV = "MODELYARD_DDP_RUN_ID"
"""Set by rank 0 before Lightning launches the other ranks (they inherit its
environment), so that they share its run id and checkpoint folder."""


def global_rank(devices_per_node: int) -> int:
    """This process's rank among all training processes; 0 when not distributed."""
    env = os.environ
    if "RANK" in env:  # torchrun / torchelastic
        return int(env["RANK"])
    if int(env.get("SLURM_NTASKS", "1")) > 1 and "SLURM_PROCID" in env:
        return int(env["SLURM_PROCID"])
    # Lightning's own launcher: ranks on node n are n * devices + local rank.
    node = int(env.get("NODE_RANK", env.get("GROUP_RANK", "0")))
    return node * devices_per_node + int(env.get("LOCAL_RANK", "0"))
