"""Train/val/test splits that never divide a group (a document): per class, seeded.

A random sentence split puts a sentence in test beside its neighbours in train: the
same names, topic and spelling habits, so the score says more about memory than
about text the model has never seen. Here each document goes whole to one split.
"""

from __future__ import annotations

import numpy as np

from modelyard.errors import DataError


def grouped_indices(
    labels: np.ndarray,
    groups: np.ndarray,
    val_fraction: float,
    test_fraction: float,
    seed: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sorted indices (train, val, test); no group is in two of them.

    Per class, the class's groups are shuffled (seeded) and dealt to test until it
    holds ``test_fraction`` of the class's examples, then to val until
    ``val_fraction``, the rest to train; so every class is in every split, at about
    the asked share, whatever its group sizes. A group holding examples of two
    classes is dealt with the class of its first example.
    """
    rng = np.random.default_rng(seed)
    _, first, group_ids = np.unique(groups.astype(str), return_index=True, return_inverse=True)
    group_label = labels[first]
    sizes = np.bincount(group_ids, minlength=len(first))
    assignment = np.zeros(len(first), dtype=np.int64)  # 0 train, 1 val, 2 test
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(group_label == label))
        if len(members) < 3:
            raise DataError(
                f"class {int(label)} has {len(members)} document(s); a document split needs "
                "at least 3 (one each for train, val and test); use data.split_by=sentence"
            )
        total = sizes[members].sum()
        targets = ((2, test_fraction * total), (1, val_fraction * total))
        position = 0
        for split, target in targets:
            taken = 0
            # Leave at least one group for each split still to be filled.
            while position < len(members) - split and (taken == 0 or taken < target):
                assignment[members[position]] = split
                taken += sizes[members[position]]
                position += 1
        assignment[members[position:]] = 0
    per_example = assignment[group_ids]
    return tuple(  # type: ignore[return-value]  # three arrays, as the tuple's length shows
        np.flatnonzero(per_example == split) for split in (0, 1, 2)
    )
