"""Reader for Fashion-MNIST idx files (Debian package `dataset-fashion-mnist`).

70k real 28x28 grayscale images in 10 classes; no download, no torchvision dependency.
"""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

from edgeprune.errors import DataSpecError

DEFAULT_DIR = Path("/usr/share/datasets/fashion-mnist")
CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
MEAN, STD = 0.2860, 0.3530


def data_dir() -> Path:
    return Path(os.environ.get("EDGEPRUNE_FASHION_MNIST", DEFAULT_DIR))


def available() -> bool:
    d = data_dir()
    return all((d / f"{p}-{k}.gz").is_file() for p in ("train", "t10k") for k in ("images-idx3-ubyte", "labels-idx1-ubyte"))


def _read_idx(path: Path):
    import numpy as np

    with gzip.open(path, "rb") as f:
        data = f.read()
    magic = struct.unpack(">I", data[:4])[0]
    ndim = magic & 0xFF
    dims = struct.unpack(">" + "I" * ndim, data[4 : 4 + 4 * ndim])
    arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if arr.size != int(np.prod(dims)):
        raise DataSpecError(f"{path} is truncated or corrupted; reinstall dataset-fashion-mnist")
    return arr.reshape(dims)


def load_arrays(split: str = "train"):
    """(images uint8 [N,28,28], labels int64 [N]) for split 'train' (60k) or 'test' (10k)."""
    import numpy as np

    if split not in ("train", "test"):
        raise DataSpecError(f"unknown Fashion-MNIST split '{split}'; use train or test")
    d = data_dir()
    prefix = "train" if split == "train" else "t10k"
    img, lab = d / f"{prefix}-images-idx3-ubyte.gz", d / f"{prefix}-labels-idx1-ubyte.gz"
    if not (img.is_file() and lab.is_file()):
        raise DataSpecError(
            f"Fashion-MNIST not found in {d}; install it with 'apt-get install dataset-fashion-mnist' "
            "or set EDGEPRUNE_FASHION_MNIST to a folder with the idx .gz files"
        )
    return _read_idx(img), _read_idx(lab).astype(np.int64)


def tensors(split: str = "train", limit: int | None = None):
    """Normalized float tensors [N,1,28,28] and int64 labels."""
    import torch

    images, labels = load_arrays(split)
    if limit:
        images, labels = images[:limit], labels[:limit]
    x = torch.from_numpy(images.copy()).float().div_(255.0).sub_(MEAN).div_(STD).unsqueeze(1)
    return x, torch.from_numpy(labels.copy())
