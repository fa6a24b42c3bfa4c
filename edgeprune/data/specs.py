"""Resolve a data spec to train/val loaders shaped for a model's input.

Specs:
  fashion-mnist               built-in reader (Debian package dataset-fashion-mnist)
  imagefolder:PATH            class-per-subfolder images (train/ and val/ inside, or one folder split 90/10)
  path/to/file.py:factory     a callable returning (train_loader, val_loader)
  random                      Gaussian noise; only where the caller explicitly allows it
Images are resized and channel-repeated to the model's input shape, so any image model can be
calibrated or fine-tuned on any of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edgeprune.errors import DataSpecError
from edgeprune.models.inputs import InputSpec


@dataclass
class DataBundle:
    """Train/val loaders plus what is known about the labels."""

    train: object  # torch DataLoader
    val: object
    num_classes: int | None
    name: str


def _fit(x, shape):
    """Resize [N,C,H,W] to the model's (C,H,W): bilinear resize, repeat or average channels."""
    import torch.nn.functional as F

    c, h, w = shape[-3], shape[-2], shape[-1]
    if x.shape[-2:] != (h, w):
        x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False)
    if x.shape[1] != c:
        x = x.mean(1, keepdim=True).expand(-1, c, -1, -1) if x.shape[1] != 1 else x.expand(-1, c, -1, -1)
    return x.contiguous()


class _FittedTensors:
    """A Dataset over image tensors, resized lazily per item to the input shape."""

    def __init__(self, x, y, shape, augment: bool = False):
        self.x, self.y, self.shape, self.augment = x, y, shape, augment

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        import torch

        xi = self.x[i : i + 1]
        if self.augment:
            # standard light augmentation: random crop with 2px padding + horizontal flip
            import torch.nn.functional as F

            pad = F.pad(xi, (2, 2, 2, 2), mode="replicate")
            dy, dx = torch.randint(0, 5, (2,)).tolist()
            xi = pad[..., dy : dy + xi.shape[-2], dx : dx + xi.shape[-1]]
            if torch.rand(()) < 0.5:
                xi = xi.flip(-1)
        return _fit(xi, self.shape)[0], self.y[i]


def resolve_data(
    spec: str,
    input_spec: InputSpec,
    *,
    batch_size: int = 64,
    allow_random: bool = False,
    train_limit: int | None = None,
    val_limit: int | None = None,
    augment: bool = True,
) -> DataBundle:
    import torch
    from torch.utils.data import DataLoader

    spec = (spec or "").strip()
    shape = tuple(input_spec.shape)
    if spec in ("fashion-mnist", "fashion_mnist", "fmnist"):
        from edgeprune.data import fashion_mnist

        _need_image_shape(shape, spec)
        xtr, ytr = fashion_mnist.tensors("train", train_limit)
        xva, yva = fashion_mnist.tensors("test", val_limit)
        return DataBundle(
            DataLoader(_FittedTensors(xtr, ytr, shape, augment), batch_size=batch_size, shuffle=True),
            DataLoader(_FittedTensors(xva, yva, shape), batch_size=batch_size),
            10, "fashion-mnist",
        )
    if spec.startswith("imagefolder:"):
        return _imagefolder(Path(spec.split(":", 1)[1]), shape, batch_size, augment)
    if spec == "random":
        if not allow_random:
            raise DataSpecError("random data was requested without the explicit flag; pass --calib-random (or give a real dataset)")
        _need_image_shape(shape, spec) if len(shape) == 4 else None
        g = torch.Generator().manual_seed(0)
        n = max(batch_size * 4, 64)
        x = torch.randn((n, *shape[1:]), generator=g)
        y = torch.zeros(n, dtype=torch.long)
        ds = torch.utils.data.TensorDataset(x, y)
        return DataBundle(DataLoader(ds, batch_size=batch_size), DataLoader(ds, batch_size=batch_size), None, "random")
    if ":" in spec:
        from edgeprune.models.loading import _load_factory_callable

        factory = _load_factory_callable(spec)
        try:
            out = factory()
        except Exception as e:
            raise DataSpecError(f"data factory '{spec}' raised {type(e).__name__}: {e}") from None
        if not (isinstance(out, tuple) and len(out) in (2, 3)):
            raise DataSpecError(f"data factory '{spec}' must return (train_loader, val_loader[, num_classes])")
        return DataBundle(out[0], out[1], out[2] if len(out) == 3 else None, spec)
    raise DataSpecError(
        f"unknown data spec '{spec}'; use fashion-mnist, imagefolder:PATH, path/to/file.py:factory"
        + (" or random" if allow_random else "")
    )


def _need_image_shape(shape, spec):
    if len(shape) != 4:
        raise DataSpecError(f"data '{spec}' gives images, but the model input is {'x'.join(map(str, shape))}; it needs NxCxHxW")


def _imagefolder(root: Path, shape, batch_size, augment) -> DataBundle:
    import numpy as np
    import torch
    from torch.utils.data import DataLoader

    if not root.is_dir():
        raise DataSpecError(f"image folder not found: {root}")
    _need_image_shape(shape, f"imagefolder:{root}")

    def scan(d: Path):
        classes = sorted(p.name for p in d.iterdir() if p.is_dir())
        items = [(f, i) for i, c in enumerate(classes) for f in sorted((d / c).iterdir())
                 if f.suffix.lower() in (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")]
        return classes, items

    def load(items):
        from PIL import Image

        xs, ys = [], []
        for f, y in items:
            with Image.open(f) as im:
                im = im.convert("RGB" if shape[1] != 1 else "L").resize((shape[3], shape[2]))
                a = np.asarray(im, dtype=np.float32) / 255.0
            xs.append(torch.from_numpy(a).permute(2, 0, 1) if a.ndim == 3 else torch.from_numpy(a)[None])
            ys.append(y)
        x = (torch.stack(xs) - 0.5) / 0.25
        return x, torch.tensor(ys, dtype=torch.long)

    if (root / "train").is_dir():
        classes, tr = scan(root / "train")
        _, va = scan(root / "val") if (root / "val").is_dir() else (classes, [])
    else:
        classes, items = scan(root)
        rng = np.random.default_rng(0)
        idx = rng.permutation(len(items))
        cut = max(1, int(len(items) * 0.9))
        tr, va = [items[i] for i in idx[:cut]], [items[i] for i in idx[cut:]]
    if not tr:
        raise DataSpecError(f"no images found under {root}; expected class subfolders with .png/.jpg files")
    xtr, ytr = load(tr)
    xva, yva = load(va) if va else (xtr[:1], ytr[:1])
    return DataBundle(
        DataLoader(_FittedTensors(xtr, ytr, shape, augment), batch_size=batch_size, shuffle=True),
        DataLoader(_FittedTensors(xva, yva, shape), batch_size=batch_size),
        len(classes), f"imagefolder:{root}",
    )


def calibration_batches(spec: str | None, input_spec: InputSpec, n_batches: int = 8, batch_size: int | None = None,
                        allow_random: bool = False) -> list:
    """N input batches for int8 calibration / importance, shaped like the model input."""
    if not spec:
        raise DataSpecError("int8 needs calibration data; pass --calib fashion-mnist (or imagefolder:PATH), or --calib-random to calibrate on noise")
    if n_batches < 1:
        raise DataSpecError("--calib-batches must be at least 1")
    bs = batch_size or input_spec.shape[0]
    bundle = resolve_data(spec, input_spec, batch_size=bs, allow_random=allow_random, augment=False,
                          train_limit=None if spec.startswith("imagefolder:") else max(n_batches * bs * 2, 256))
    out = []
    for x, _ in bundle.train:
        if x.shape[0] != bs:
            continue
        out.append(x)
        if len(out) == n_batches:
            break
    if not out:
        raise DataSpecError(f"calibration data '{spec}' yielded no full batch of {bs}")
    return out
