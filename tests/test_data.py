"""Data specs: the built-in Fashion-MNIST reader on the real files, image folders, random."""

from __future__ import annotations

import numpy as np
import pytest

from edgeprune.data import calibration_batches, resolve_data
from edgeprune.data import fashion_mnist
from edgeprune.errors import DataSpecError
from edgeprune.models import InputSpec


def test_fashion_mnist_real_files():
    x, y = fashion_mnist.tensors("test", limit=500)
    assert x.shape == (500, 1, 28, 28)
    assert set(y.tolist()) == set(range(10))
    assert abs(float(x.mean())) < 0.3  # normalized


def test_calibration_fits_model_shape():
    batches = calibration_batches("fashion-mnist", InputSpec((2, 3, 32, 32)), n_batches=3)
    assert len(batches) == 3 and batches[0].shape == (2, 3, 32, 32)


def test_calibration_needs_explicit_random():
    with pytest.raises(DataSpecError, match="calib-random"):
        calibration_batches("random", InputSpec((1, 3, 8, 8)))
    assert calibration_batches("random", InputSpec((1, 3, 8, 8)), 2, allow_random=True)[0].shape == (1, 3, 8, 8)
    with pytest.raises(DataSpecError, match="needs calibration data"):
        calibration_batches(None, InputSpec((1, 3, 8, 8)))


def test_imagefolder(tmp_path):
    from PIL import Image

    for cls in ("cat", "dog"):
        (tmp_path / cls).mkdir()
        for i in range(5):
            Image.fromarray((np.random.rand(10, 12, 3) * 255).astype("uint8")).save(tmp_path / cls / f"{i}.png")
    b = resolve_data(f"imagefolder:{tmp_path}", InputSpec((1, 3, 16, 16)), batch_size=4)
    x, y = next(iter(b.train))
    assert x.shape == (4, 3, 16, 16) and b.num_classes == 2
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataSpecError, match="no images"):
        resolve_data(f"imagefolder:{tmp_path / 'empty'}", InputSpec((1, 3, 16, 16)))


def test_unknown_spec():
    with pytest.raises(DataSpecError, match="unknown data spec"):
        resolve_data("imagenet", InputSpec((1, 3, 8, 8)))
