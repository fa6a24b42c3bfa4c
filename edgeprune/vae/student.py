"""The student decoder: only ops that ExecuTorch/XNNPACK, LiteRT and Core ML run.

Layout (Turbo-VAED style, all in 2-D with frames folded into the batch):

* stem: 3x3 conv from the latent channels to the first stage width, per frame;
* wide low-resolution stages: depthwise-separable blocks. The causal depthwise conv over
  (time, height, width) is one 2-D grouped conv over ``kt`` time-shifted copies of each channel
  (weight ``[C, kt, k, k]``, stored in that final shape), followed by a 1x1 expand, SiLU and a
  1x1 project, with a residual;
* high-resolution stages: plain 3x3 conv residual blocks (narrow, per frame);
* upsampling: decoupled pixel shuffle: a 3x3 conv expands channels by ``rt * 4``, a temporal
  depth-to-space turns the ``rt`` groups into frames, then a per-frame 2-D ``pixel_shuffle(2)``;
* RMSNorm over channels, the channel mean computed as a fixed 1x1 conv;
* no attention, no interpolate, no 3-D conv.

The forward takes a 5-D latent ``[B, C, T, H, W]`` and returns video ``[B, 3, T', H', W']``;
``T'`` follows the teacher's frame rule (see :class:`StudentConfig`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from edgeprune.errors import EdgepruneError

FRAME_RULES = ("causal", "cogvideox", "per-frame")


def out_frames(rule: str, t: int, rt: int) -> int:
    """Frames the teacher decodes from ``t`` latent frames (the student matches it).

    causal: the first latent frame decodes to one frame, each later one to ``rt``
    (HunyuanVideo, LTX-Video, Wan). cogvideox: CogVideoX decodes latent frames in batches of two;
    an odd count is causal, an even count gives ``rt * t``. per-frame: image VAEs (``rt == 1``).
    """
    if rule == "per-frame" or rt == 1:
        return t
    if rule == "causal":
        return rt * (t - 1) + 1
    if rule == "cogvideox":
        return rt * (t - 1) + 1 if t % 2 else rt * t
    raise ValueError(f"unknown frame rule {rule!r}")


@dataclass(frozen=True)
class StudentConfig:
    """Everything needed to rebuild a student decoder (stored as the model dir's recipe).

    latent_channels: channels of the teacher latent.
    temporal_ratio: frames per latent frame (1 for image VAEs); a power of two.
    spatial_ratio: pixels per latent pixel; a power of two.
    widths: channels of each stage, from the latent resolution (stage 0) up; one stage per 2x
        spatial upsampling plus stage 0, so ``len(widths) == log2(spatial_ratio) + 1``.
    blocks: residual blocks per stage (same length as widths).
    separable_stages: how many of the first (low-resolution, wide) stages use depthwise-separable
        spatio-temporal blocks; the rest use plain 3x3 conv blocks.
    kernel_t / kernel_s: depthwise kernel over time (causal) and space.
    expand: channel expansion of the separable blocks' 1x1 convs.
    frame_rule: how many frames the teacher decodes from T latent frames (see out_frames).
    """

    latent_channels: int
    temporal_ratio: int
    spatial_ratio: int
    widths: tuple[int, ...]
    blocks: tuple[int, ...]
    separable_stages: int = 3
    kernel_t: int = 3
    kernel_s: int = 5
    expand: int = 2
    frame_rule: str = "causal"
    out_channels: int = 3

    def __post_init__(self):
        n_up = int(round(math.log2(self.spatial_ratio)))
        if 2**n_up != self.spatial_ratio or n_up < 1:
            raise EdgepruneError(f"spatial compression ratio {self.spatial_ratio} is not a power of two >= 2")
        n_t = int(round(math.log2(self.temporal_ratio)))
        if 2**n_t != self.temporal_ratio or n_t > n_up:
            raise EdgepruneError(
                f"temporal compression ratio {self.temporal_ratio} must be a power of two no larger "
                f"than the spatial ratio {self.spatial_ratio}"
            )
        if len(self.widths) != n_up + 1 or len(self.blocks) != n_up + 1:
            raise EdgepruneError(f"a student for {self.spatial_ratio}x spatial upsampling needs {n_up + 1} stage widths and block counts")
        if self.frame_rule not in FRAME_RULES:
            raise EdgepruneError(f"unknown frame rule {self.frame_rule!r}; one of {', '.join(FRAME_RULES)}")

    def to_json(self) -> dict:
        d = asdict(self)
        d["widths"], d["blocks"] = list(self.widths), list(self.blocks)
        return d

    @classmethod
    def from_json(cls, d: dict) -> "StudentConfig":
        known = set(cls.__dataclass_fields__)
        unknown = set(d) - known
        if unknown:
            raise EdgepruneError(f"unknown student config keys: {', '.join(sorted(unknown))}")
        d = dict(d)
        d["widths"], d["blocks"] = tuple(d["widths"]), tuple(d["blocks"])
        return cls(**d)


class RMSNorm2d(nn.Module):
    """x / sqrt(mean_c(x^2) + eps) * g; the channel mean is a fixed 1x1 conv (XNNPACK-friendly)."""

    def __init__(self, channels: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.register_buffer("mean_w", torch.full((1, channels, 1, 1), 1.0 / channels), persistent=False)
        self.weight = nn.Parameter(torch.ones(1, channels, 1, 1))

    def forward(self, x):
        ms = F.conv2d(x * x, self.mean_w)
        return x * torch.rsqrt(ms + self.eps) * self.weight


class CausalDepthwise(nn.Module):
    """Causal depthwise conv over (time, h, w) as one 2-D grouped conv over time-shifted copies.

    Input ``[B*T, C, H, W]``; frame t sees frames t-kt+1..t (the first frame repeated before t=0).
    The weight is an nn.Conv2d weight ``[C, kt, k, k]`` (final shape, never viewed).
    """

    def __init__(self, channels: int, kt: int, k: int):
        super().__init__()
        self.kt = kt
        self.conv = nn.Conv2d(channels * kt, channels, k, padding=k // 2, groups=channels)

    def forward(self, x, t: int):
        if self.kt == 1:
            return self.conv(x)
        v = x.unflatten(0, (-1, t))  # [B, T, C, H, W]
        first = v[:, :1]
        v = torch.cat([first] * (self.kt - 1) + [v], dim=1)  # repeat the first frame (causal padding)
        # [B*T, C, kt, H, W] (rank 5 at most: Core ML's limit), channel-major like the grouped weight
        shifted = torch.cat([v[:, i : i + t].flatten(0, 1).unflatten(1, (-1, 1)) for i in range(self.kt)], dim=2)
        return self.conv(shifted.flatten(1, 2))


class SeparableBlock(nn.Module):
    def __init__(self, ch: int, kt: int, k: int, expand: int):
        super().__init__()
        self.norm = RMSNorm2d(ch)
        self.dw = CausalDepthwise(ch, kt, k)
        self.expand = nn.Conv2d(ch, ch * expand, 1)
        self.project = nn.Conv2d(ch * expand, ch, 1)

    def forward(self, x, t: int):
        h = self.dw(self.norm(x), t)
        return x + self.project(F.silu(self.expand(h)))


class ConvBlock(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.norm = RMSNorm2d(ch)
        self.conv1 = nn.Conv2d(ch, ch, 3, padding=1)
        self.conv2 = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x, t: int):
        return x + self.conv2(F.silu(self.conv1(F.silu(self.norm(x)))))


class PixelShuffleUp(nn.Module):
    """conv expands channels by rt*4; temporal depth-to-space (rt); per-frame pixel_shuffle(2)."""

    def __init__(self, cin: int, cout: int, rt: int):
        super().__init__()
        self.rt, self.cout = rt, cout
        self.conv = nn.Conv2d(cin, cout * rt * 4, 3, padding=1)

    def forward(self, x, t: int):
        y = self.conv(x)
        if self.rt > 1:
            # [B*T, rt*C4, H, W] -> [B*T, rt, C4, H, W] -> [B*T*rt, C4, H, W]
            y = y.unflatten(1, (self.rt, self.cout * 4)).flatten(0, 1)
        return F.pixel_shuffle(y, 2), t * self.rt


@torch.fx.wrap
def _keep_frames(y, latent_frames: int, rule: str, rt: int):
    """Drop the leading frames the teacher does not produce (``y`` is ``[B, T*rt, C, H, W]``)."""
    keep = out_frames(rule, int(latent_frames), rt)
    return y[:, y.shape[1] - keep :] if keep < y.shape[1] else y


class StudentDecoder(nn.Module):
    """Latent ``[B, C, T, H, W]`` -> video ``[B, 3, T', H*s, W*s]`` (see module docstring)."""

    def __init__(self, config: StudentConfig):
        super().__init__()
        self.config = config
        c = config
        n_up = int(round(math.log2(c.spatial_ratio)))
        n_t = int(round(math.log2(c.temporal_ratio)))
        self.stem = nn.Conv2d(c.latent_channels, c.widths[0], 3, padding=1)
        self.stages = nn.ModuleList()
        self.ups = nn.ModuleList()
        for i, (w, nb) in enumerate(zip(c.widths, c.blocks)):
            if i > 0:
                rt = 2 if i <= n_t else 1  # temporal upsampling in the first (low-resolution) steps
                self.ups.append(PixelShuffleUp(c.widths[i - 1], w, rt))
            sep = i < c.separable_stages
            self.stages.append(
                nn.ModuleList(
                    SeparableBlock(w, c.kernel_t, c.kernel_s, c.expand) if sep else ConvBlock(w) for _ in range(nb)
                )
            )
        self.norm_out = RMSNorm2d(c.widths[-1])
        self.conv_out = nn.Conv2d(c.widths[-1], c.out_channels, 3, padding=1)
        self.n_up = n_up

    def forward_features(self, z):
        """Returns (video, per-stage features [B*T_i, C_i, H_i, W_i], frames per stage).

        Free of Python control flow on shapes, so torch.fx can trace it (latency tables).
        """
        b, t = z.shape[0], z.shape[2]
        x = self.stem(z.transpose(1, 2).flatten(0, 1))  # frames folded into the batch
        feats, frames = [], []
        for i, blocks in enumerate(self.stages):
            if i > 0:
                x, t = self.ups[i - 1](x, t)
            for blk in blocks:
                x = blk(x, t)
            feats.append(x)
            frames.append(t)
        y = self.conv_out(F.silu(self.norm_out(x)))
        y = _keep_frames(y.unflatten(0, (b, -1)), z.shape[2], self.config.frame_rule, self.config.temporal_ratio)
        return y.transpose(1, 2), feats, frames

    def forward(self, z):
        return self.forward_features(z)[0]


def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
