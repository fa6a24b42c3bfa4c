"""Per-family knowledge of diffusers VAEs: structure, correct teacher decode, encode, stages.

One adapter per family, registered by the VAE's class name. An unknown class is a user error
that lists the supported classes and what an adapter needs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import torch

from edgeprune.errors import EdgepruneError


class UnsupportedVAEError(EdgepruneError):
    """The model is not a VAE family the redesign understands."""


class LatentShapeError(EdgepruneError):
    """The --latent shape does not fit the teacher."""


@dataclass(frozen=True)
class TeacherInfo:
    """What the redesign reads from a teacher decoder."""

    family: str
    class_name: str
    latent_channels: int
    temporal_ratio: int
    spatial_ratio: int
    stage_widths: tuple[int, ...]  # decoder stage widths, lowest resolution first
    frame_rule: str

    def to_json(self) -> dict:
        return {**self.__dict__, "stage_widths": list(self.stage_widths)}


class VAEAdapter(Protocol):
    """What a family needs: ``describe``, ``decode``, ``encode`` and ``stage_modules``.

    >>> from edgeprune.vae.zoo import wan_small
    >>> adapter_for(wan_small()).describe(wan_small()).temporal_ratio
    4
    """

    family: str

    def describe(self, vae) -> TeacherInfo: ...

    def decode(self, vae, latents: torch.Tensor) -> torch.Tensor: ...

    def encode(self, vae, video: torch.Tensor) -> torch.Tensor: ...

    def stage_modules(self, vae) -> list[torch.nn.Module]: ...


def _stage_widths(rev: list[int], n_up: int) -> tuple[int, ...]:
    rev = list(rev) or [64]
    return tuple(rev[min(i, len(rev) - 1)] for i in range(n_up + 1))


class _VideoAdapter:
    family = ""
    frame_rule = "causal"

    def _plain_decode(self, vae, latents):
        vae.use_tiling = False
        vae.use_slicing = False
        return vae.decode(latents, return_dict=False)[0]

    def decode(self, vae, latents):
        return self._plain_decode(vae, latents)

    def encode(self, vae, video):
        vae.use_tiling = False
        vae.use_slicing = False
        return vae.encode(video).latent_dist.mode()

    def stage_modules(self, vae):
        return list(vae.decoder.up_blocks)

    def _ratios(self, vae) -> tuple[int, int]:
        raise NotImplementedError

    def _widths(self, vae) -> list[int]:
        return list(reversed(vae.config.block_out_channels))

    def describe(self, vae) -> TeacherInfo:
        rt, rs = self._ratios(vae)
        return TeacherInfo(
            self.family, type(vae).__name__, int(self._latent_channels(vae)), int(rt), int(rs),
            _stage_widths(self._widths(vae), int(round(math.log2(rs)))), self.frame_rule,
        )

    def _latent_channels(self, vae):
        return vae.config.latent_channels


class CogVideoXAdapter(_VideoAdapter):
    """AutoencoderKLCogVideoX. Its decoder returns ``(output, conv_cache)`` and decodes latent frames
    in batches of two with a cache; ``vae.decode`` runs that loop (calling ``vae.decoder`` alone
    would need the tuple unpacked and the cache threaded by hand)."""

    family = "cogvideox"
    frame_rule = "cogvideox"

    def decode(self, vae, latents):
        vae.use_tiling = False
        vae.use_slicing = False
        out = vae._decode(latents, return_dict=False)  # frame-batched loop; handles (output, cache)
        return out[0] if isinstance(out, tuple) else out.sample

    def _ratios(self, vae):
        return int(vae.config.temporal_compression_ratio), 2 ** (len(vae.config.block_out_channels) - 1)


class HunyuanVideoAdapter(_VideoAdapter):
    family = "hunyuanvideo"

    def _ratios(self, vae):
        return int(vae.config.temporal_compression_ratio), int(vae.config.spatial_compression_ratio)


class LTXVideoAdapter(_VideoAdapter):
    family = "ltxvideo"

    def _ratios(self, vae):
        return int(vae.temporal_compression_ratio), int(vae.spatial_compression_ratio)

    def _widths(self, vae):
        return list(reversed(vae.config.decoder_block_out_channels))


class WanAdapter(_VideoAdapter):
    """AutoencoderKLWan. Decoding must go through its frame-cache loop (``vae.decode`` -> ``_decode``
    clears the cache and feeds one latent frame at a time); the bare ``vae.decoder`` on the whole
    latent skips the temporal upsampling."""

    family = "wan"

    def decode(self, vae, latents):
        vae.use_tiling = False
        vae.use_slicing = False
        out = vae._decode(latents, return_dict=False)  # clear_cache + per-frame loop with feat_cache
        return out[0] if isinstance(out, tuple) else out.sample

    def _latent_channels(self, vae):
        return vae.config.z_dim

    def _ratios(self, vae):
        return 2 ** sum(bool(x) for x in vae.config.temperal_downsample), 2 ** (len(vae.config.dim_mult) - 1)

    def _widths(self, vae):
        base = vae.config.decoder_base_dim or vae.config.base_dim
        mult = list(vae.config.dim_mult)
        return [base * m for m in [mult[-1]] + mult[::-1]]


class KL2DAdapter(_VideoAdapter):
    """2-D AutoencoderKL (image VAE): frames are decoded independently (folded into the batch)."""

    family = "kl2d"
    frame_rule = "per-frame"

    def decode(self, vae, latents):
        b, c, t, h, w = latents.shape
        x = latents.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w)
        y = vae.decode(x, return_dict=False)[0]
        return y.reshape(b, t, *y.shape[1:]).permute(0, 2, 1, 3, 4)

    def encode(self, vae, video):
        b, c, t, h, w = video.shape
        x = video.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w)
        z = vae.encode(x).latent_dist.mode()
        return z.reshape(b, t, *z.shape[1:]).permute(0, 2, 1, 3, 4)

    def _ratios(self, vae):
        return 1, 2 ** (len(vae.config.block_out_channels) - 1)


ADAPTERS: dict[str, VAEAdapter] = {
    "AutoencoderKLCogVideoX": CogVideoXAdapter(),
    "AutoencoderKLHunyuanVideo": HunyuanVideoAdapter(),
    "AutoencoderKLLTXVideo": LTXVideoAdapter(),
    "AutoencoderKLWan": WanAdapter(),
    "AutoencoderKL": KL2DAdapter(),
}


def register_adapter(class_name: str, adapter: VAEAdapter) -> None:
    """Teach the redesign a new VAE class (an object with describe/decode/encode/stage_modules)."""
    ADAPTERS[class_name] = adapter


def adapter_for(vae) -> VAEAdapter:
    name = type(vae).__name__
    if name not in ADAPTERS:
        raise UnsupportedVAEError(
            f"cannot redesign a {name}: supported VAE classes are {', '.join(sorted(ADAPTERS))}. "
            "The model must be a diffusers VAE with an encoder and a decoder; for another class, register an "
            "adapter (edgeprune.vae.adapters.register_adapter) that gives its latent channels, temporal/spatial "
            "compression, decoder stage widths and a correct decode"
        )
    return ADAPTERS[name]


def teacher_decode(vae, latents: torch.Tensor) -> torch.Tensor:
    """Decode ``[B, C, T, H, W]`` latents to ``[B, 3, T', H', W']`` the way each family must be decoded."""
    return adapter_for(vae).decode(vae, latents)


def teacher_encode(vae, video: torch.Tensor) -> torch.Tensor:
    """Encode ``[B, 3, T', H', W']`` video to the posterior mode ``[B, C, T, H, W]``."""
    return adapter_for(vae).encode(vae, video)


def check_latent_shape(info: TeacherInfo, shape: tuple[int, ...]) -> None:
    if len(shape) != 5:
        raise LatentShapeError(
            f"latent shape {'x'.join(map(str, shape))} has {len(shape)} dimensions; give B x C x T x H x W, "
            f"e.g. 1x{info.latent_channels}x3x32x32"
        )
    b, c, t, h, w = shape
    if c != info.latent_channels:
        raise LatentShapeError(
            f"latent shape {'x'.join(map(str, shape))} has {c} channels but the {info.class_name} teacher's latent has "
            f"{info.latent_channels}; use e.g. 1x{info.latent_channels}x{t}x{h}x{w}"
        )
