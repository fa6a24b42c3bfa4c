"""Video clips made from real images: pans, zooms and crops of photos, or windows of video frames.

Data specs:
    skimage          photos shipped with scikit-image (astronaut, chelsea, coffee, rocket, ...)
    images:PATH      a folder of your own images (png/jpg/...), one source per image
    frames:PATH      a folder of video frames (sorted by name), or a folder of such folders;
                     one source per folder

Clips are ``[N, 3, T, H, W]`` floats in [-1, 1]. The train/held-out split is by source: every
fifth source (sorted by name, index 4, 9, ...) is held out, so held-out clips never show a photo
the decoder was trained on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from edgeprune.errors import DataSpecError

SKIMAGE_PHOTOS = (
    "astronaut", "brick", "camera", "cell", "chelsea", "clock", "coffee", "coins", "grass", "gravel",
    "hubble_deep_field", "immunohistochemistry", "moon", "retina", "rocket",
)
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif"}
HELDOUT_EVERY = 5
_MAX_SIDE = 384  # sources are downscaled once so clip making stays cheap


@dataclass(frozen=True)
class Source:
    """One real image, or one video as frames ``[F, 3, H, W]`` (F == 1 for a photo), in [0, 1]."""

    name: str
    frames: torch.Tensor


def _to_tensor(arr: np.ndarray) -> torch.Tensor:
    a = np.asarray(arr)
    if a.dtype == bool:
        a = a.astype(np.float32)
    elif a.dtype == np.uint8:
        a = a.astype(np.float32) / 255.0
    else:
        a = a.astype(np.float32)
        a = (a - a.min()) / max(float(a.max() - a.min()), 1e-8)
    if a.ndim == 2:
        a = np.stack([a] * 3, axis=-1)
    a = a[..., :3]
    if a.shape[-1] == 1:
        a = np.concatenate([a] * 3, axis=-1)
    t = torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1)
    s = _MAX_SIDE / max(t.shape[1:])
    if s < 1:
        t = F.interpolate(t[None], scale_factor=s, mode="bilinear", antialias=True, align_corners=False)[0]
    return t.clamp(0, 1)


def _read_image(path: Path) -> np.ndarray:
    from skimage import io

    try:
        return io.imread(str(path))
    except Exception as e:
        raise DataSpecError(f"cannot read image {path} ({type(e).__name__}: {e}); remove it or convert it to PNG") from None


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def load_sources(spec: str) -> list[Source]:
    """Resolve a data spec to its real sources (see module docstring)."""
    spec = str(spec).strip()
    if spec == "skimage":
        import skimage.data

        out = []
        for name in SKIMAGE_PHOTOS:
            try:
                out.append(Source(name, _to_tensor(getattr(skimage.data, name)())[None]))
            except Exception:  # a photo that needs a download (pooch) is skipped
                continue
        if len(out) < 2:
            raise DataSpecError("scikit-image ships too few photos here; use images:PATH with your own images")
        return out
    kind, sep, path = spec.partition(":")
    if not sep or kind not in ("images", "frames") or not path:
        raise DataSpecError(f"unknown data spec '{spec}'; use skimage, images:PATH or frames:PATH")
    folder = Path(path)
    if not folder.is_dir():
        raise DataSpecError(f"data folder not found: {folder}")
    if kind == "images":
        files = _images_in(folder)
        if not files:
            raise DataSpecError(
                f"data folder {folder} has no images ({', '.join(sorted(IMAGE_SUFFIXES))}); add some or use 'skimage'"
            )
        return [Source(f.stem, _to_tensor(_read_image(f))[None]) for f in files]
    videos = [d for d in sorted(folder.iterdir()) if d.is_dir() and _images_in(d)] or ([folder] if _images_in(folder) else [])
    if not videos:
        raise DataSpecError(f"data folder {folder} has no video frames (images, or sub-folders of images)")
    return [Source(v.name, torch.stack([_to_tensor(_read_image(f)) for f in _images_in(v)])) for v in videos]


def split_sources(sources: list[Source]) -> tuple[list[Source], list[Source]]:
    """(train, held-out) by source; with a single source both are that source (documented caveat)."""
    srcs = sorted(sources, key=lambda s: s.name)
    held = [s for i, s in enumerate(srcs) if i % HELDOUT_EVERY == HELDOUT_EVERY - 1]
    if not held:
        held = [srcs[-1]]
    train = [s for s in srcs if s not in held] or held
    return train, held


def make_clips(sources: list[Source], n: int, frames: int, height: int, width: int, seed: int = 0) -> torch.Tensor:
    """``n`` clips ``[n, 3, frames, height, width]`` in [-1, 1]: a random pan + zoom per clip.

    A photo is cropped along a straight path (start/end centre and size drawn at random); a video
    source is also windowed in time. Deterministic for a given seed.
    """
    if not sources:
        raise DataSpecError("no sources to make clips from")
    g = torch.Generator().manual_seed(seed)
    out = torch.empty(n, 3, frames, height, width)
    aspect = width / height
    for i in range(n):
        src = sources[int(torch.randint(len(sources), (1,), generator=g))]
        fr = src.frames
        _, _, H, W = fr.shape
        u = torch.rand(8, generator=g).tolist()
        max_h = min(H, W / aspect)
        h0 = max_h * (0.35 + 0.6 * u[0])
        h1 = h0 * (0.75 + 0.5 * u[1])  # zoom in or out by up to 25%
        h1 = min(max(h1, 8.0), max_h)
        start_f = int(u[2] * max(fr.shape[0] - frames, 0))
        cy0, cx0 = u[3], u[4]
        cy1, cx1 = min(max(cy0 + (u[5] - 0.5) * 0.5, 0), 1), min(max(cx0 + (u[6] - 0.5) * 0.5, 0), 1)
        for t in range(frames):
            a = t / max(frames - 1, 1)
            ch = h0 + (h1 - h0) * a
            cw = ch * aspect
            cy = (cy0 + (cy1 - cy0) * a) * (H - ch) + ch / 2
            cx = (cx0 + (cx1 - cx0) * a) * (W - cw) + cw / 2
            img = fr[min(start_f + t, fr.shape[0] - 1)]
            y0, x0 = int(round(cy - ch / 2)), int(round(cx - cw / 2))
            y0, x0 = max(0, min(y0, H - int(ch))), max(0, min(x0, W - int(cw)))
            crop = img[:, y0 : y0 + max(int(ch), 2), x0 : x0 + max(int(cw), 2)]
            out[i, :, t] = F.interpolate(crop[None], size=(height, width), mode="bilinear", antialias=True, align_corners=False)[0]
    return out.clamp(0, 1) * 2 - 1


def clip_sets(spec: str, frames: int, height: int, width: int, n_train: int, n_heldout: int, seed: int = 0):
    """(train clips, held-out clips, names of held-out sources) for a data spec."""
    train, held = split_sources(load_sources(spec))
    return (
        make_clips(train, n_train, frames, height, width, seed=seed),
        make_clips(held, n_heldout, frames, height, width, seed=seed + 1),
        [s.name for s in held],
    )
