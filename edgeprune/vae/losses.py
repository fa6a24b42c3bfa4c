"""Losses and metrics that need no downloaded weights: SSIM, multi-scale gradient L1, PSNR.

Video tensors are ``[B, 3, T, H, W]`` in [-1, 1]; frames are folded into the batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _frames(x: torch.Tensor) -> torch.Tensor:
    if x.dim() == 5:
        b, c, t, h, w = x.shape
        return x.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w)
    return x


def _gauss(size: int = 7, sigma: float = 1.5, device=None) -> torch.Tensor:
    ax = torch.arange(size, dtype=torch.float32, device=device) - (size - 1) / 2
    g = torch.exp(-(ax**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :])[None, None]


def ssim(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean SSIM of two videos/images in [-1, 1] (Gaussian window 7, sigma 1.5, on [0, 1])."""
    a, b = (_frames(a) + 1) / 2, (_frames(b) + 1) / 2
    c = a.shape[1]
    win = _gauss(device=a.device).expand(c, 1, 7, 7)
    mu_a, mu_b = F.conv2d(a, win, groups=c), F.conv2d(b, win, groups=c)
    saa = F.conv2d(a * a, win, groups=c) - mu_a**2
    sbb = F.conv2d(b * b, win, groups=c) - mu_b**2
    sab = F.conv2d(a * b, win, groups=c) - mu_a * mu_b
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mu_a * mu_b + c1) * (2 * sab + c2)) / ((mu_a**2 + mu_b**2 + c1) * (saa + sbb + c2))
    return s.mean()


def gradient_loss(a: torch.Tensor, b: torch.Tensor, scales: int = 3) -> torch.Tensor:
    """L1 between image gradients (dx, dy) at several scales (structure/edges)."""
    a, b = _frames(a), _frames(b)
    total = a.new_zeros(())
    for s in range(scales):
        if s:
            a, b = F.avg_pool2d(a, 2), F.avg_pool2d(b, 2)
        total = total + (a.diff(dim=-1) - b.diff(dim=-1)).abs().mean() + (a.diff(dim=-2) - b.diff(dim=-2)).abs().mean()
    return total / scales


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR (dB) of videos in [-1, 1], computed on [0, 1] over the whole batch."""
    mse = (((a.clamp(-1, 1) - b.clamp(-1, 1)) / 2) ** 2).mean().item()
    return float("inf") if mse == 0 else 10 * torch.log10(torch.tensor(1.0 / mse)).item()
