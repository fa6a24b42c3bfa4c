"""Self-attention whose heads pruning can remove: `nn.MultiheadAttention` rewritten as plain layers.

Stock `nn.MultiheadAttention` keeps q/k/v in one parameter whose width *is* the residual width
(head_dim = embed_dim / num_heads), so a pruner can only thin every head at once, together with
the residual stream. `PrunableAttention` holds the same weights as two `nn.Linear` layers around a
head-mixing core:

    qkv  Linear(embed, 3 * heads * head_dim)    rows [q heads | k heads | v heads], head-major
    core HeadAttention(heads, head_dim)          softmax(q k^T / sqrt(head_dim)) v, per head
    proj Linear(heads * head_dim, embed)

so the residual width (qkv's inputs, proj's outputs) and the head count (qkv's rows, proj's
columns) are separate prunable widths, and the latency tables price the core at each head count.
torchvision's `VisionTransformer` also writes its width into a reshape (`self.hidden_dim`); its
patch embedding is rewritten to read the width off the tensor, so the embedding dim can shrink.
`prunable_attention` rewrites a model's self-attention modules and keeps the rewrite only if the
model's outputs stay the same on its example input; profile, predict and prune all see the
rewritten form, so a table profiled on the stock model serves the pruning of it.
"""

from __future__ import annotations

import copy
import math
from typing import Sequence

import torch
from torch import nn


def head_of_row(num_heads: int, head_dim: int):
    """The head each row of a packed qkv projection belongs to: rows are [q heads | k heads | v heads],
    each head's head_dim rows together."""
    import numpy as np

    return (np.arange(3 * num_heads * head_dim) % (num_heads * head_dim)) // head_dim


class HeadAttention(nn.Module):
    """The parameter-free core: (B, N, 3*H*d) packed q/k/v -> (B, N, H*d). A leaf for tracing: the
    latency tables measure it as one kernel whose width is H*d."""

    def __init__(self, num_heads: int, head_dim: int, dropout: float = 0.0):
        super().__init__()
        self.num_heads, self.head_dim, self.dropout = int(num_heads), int(head_dim), float(dropout)

    def forward(self, qkv):
        b, n, _ = qkv.shape
        # slices, not a 5-D reshape + select or a split: XNNPACK delegates slices (ExecuTorch ran the others unaccelerated)
        w = self.num_heads * self.head_dim
        q, k, v = (qkv[..., i * w:(i + 1) * w].reshape(b, n, self.num_heads, self.head_dim).transpose(1, 2)
                   for i in range(3))
        attn = (q * (1.0 / math.sqrt(self.head_dim))) @ k.transpose(-2, -1)
        attn = attn.softmax(dim=-1)
        if self.dropout and self.training:
            attn = nn.functional.dropout(attn, self.dropout)
        return (attn @ v).transpose(1, 2).reshape(b, n, self.num_heads * self.head_dim)

    def extra_repr(self) -> str:
        return f"num_heads={self.num_heads}, head_dim={self.head_dim}"


class PrunableAttention(nn.Module):
    """Drop-in for a self-attention `nn.MultiheadAttention` (query is key is value, no masks); called
    like it and returning (output, None)."""

    def __init__(self, embed_dim: int, num_heads: int, head_dim: int, bias: bool = True, dropout: float = 0.0,
                 batch_first: bool = True):
        super().__init__()
        self.batch_first = batch_first
        self.qkv = nn.Linear(embed_dim, 3 * num_heads * head_dim, bias=bias)
        self.core = HeadAttention(num_heads, head_dim, dropout)
        self.proj = nn.Linear(num_heads * head_dim, embed_dim, bias=bias)

    @property
    def num_heads(self) -> int:
        return self.core.num_heads

    def forward(self, query, key=None, value=None, key_padding_mask=None, need_weights=False, attn_mask=None,
                average_attn_weights=True, is_causal=False):
        if (key is not None and key is not query) or (value is not None and value is not query):
            raise ValueError("PrunableAttention is self-attention only: call it with query, key and value the same tensor")
        if key_padding_mask is not None or attn_mask is not None or is_causal:
            raise ValueError("PrunableAttention takes no attention masks")
        x = query if self.batch_first else query.transpose(0, 1)
        y = self.proj(self.core(self.qkv(x)))
        return (y if self.batch_first else y.transpose(0, 1)), None

    @classmethod
    def from_mha(cls, mha: nn.MultiheadAttention) -> "PrunableAttention":
        e, h = mha.embed_dim, mha.num_heads
        new = cls(e, h, e // h, bias=mha.in_proj_bias is not None, dropout=mha.dropout, batch_first=mha.batch_first)
        with torch.no_grad():
            new.qkv.weight.copy_(mha.in_proj_weight)
            new.proj.weight.copy_(mha.out_proj.weight)
            if mha.in_proj_bias is not None:
                new.qkv.bias.copy_(mha.in_proj_bias)
                new.proj.bias.copy_(mha.out_proj.bias)
        return new.train(mha.training)

    def head_rows(self, heads: Sequence[int]) -> list[int]:
        """qkv row indices of the given heads (their q, k and v rows), ascending."""
        wanted = set(int(h) for h in heads)
        return [i for i, h in enumerate(head_of_row(self.num_heads, self.core.head_dim)) if h in wanted]

    def remove_heads(self, heads: Sequence[int]) -> None:
        """Physically drop whole heads: their qkv rows and their proj columns."""
        drop = set(int(h) for h in heads)
        keep = [h for h in range(self.num_heads) if h not in drop]
        if not keep:
            raise ValueError("an attention layer needs at least one head")
        rows = torch.as_tensor(self.head_rows(keep))
        d = self.core.head_dim
        cols = torch.as_tensor([h * d + j for h in keep for j in range(d)])
        self.qkv.weight = nn.Parameter(self.qkv.weight.data[rows].clone())
        if self.qkv.bias is not None:
            self.qkv.bias = nn.Parameter(self.qkv.bias.data[rows].clone())
        self.qkv.out_features = len(rows)
        self.proj.weight = nn.Parameter(self.proj.weight.data[:, cols].clone())
        self.proj.in_features = len(cols)
        self.core.num_heads = len(keep)


class _PatchTokens:
    """torchvision VisionTransformer._process_input without its literal `self.hidden_dim` reshape. A plain
    object (not a bound method) in the model's __dict__, so the model still pickles and deep-copies."""

    def __init__(self, vit):
        self.vit = vit

    def __call__(self, x):
        vit = self.vit
        _, _, h, w = x.shape
        torch._assert(h == vit.image_size, f"Wrong image height! Expected {vit.image_size} but got {h}!")
        torch._assert(w == vit.image_size, f"Wrong image width! Expected {vit.image_size} but got {w}!")
        return vit.conv_proj(x).flatten(2).permute(0, 2, 1)


def _is_torchvision_vit(m: nn.Module) -> bool:
    return type(m).__name__ == "VisionTransformer" and type(m).__module__.startswith("torchvision.") \
        and hasattr(m, "conv_proj") and hasattr(m, "hidden_dim")


def _free_patch_width(module: nn.Module) -> None:
    for m in module.modules():
        if _is_torchvision_vit(m) and "_process_input" not in vars(m):
            m._process_input = _PatchTokens(m)


def _convertible(m: nn.Module) -> bool:
    return (isinstance(m, nn.MultiheadAttention) and m._qkv_same_embed_dim and m.bias_k is None
            and not m.add_zero_attn and m.embed_dim % m.num_heads == 0)


def attention_modules(module: nn.Module) -> dict[str, PrunableAttention]:
    return {n: m for n, m in module.named_modules() if isinstance(m, PrunableAttention)}


def convert_attention(module: nn.Module, names: Sequence[str] | None = None) -> list[str]:
    """Replace (in place) the named `nn.MultiheadAttention` modules, or every convertible one, and free
    torchvision ViTs' patch width; returns the names replaced."""
    _free_patch_width(module)
    done = []
    for name, m in list(module.named_modules()):
        if not name or not _convertible(m) or (names is not None and name not in names):
            continue
        parent_name, _, attr = name.rpartition(".")
        parent = module.get_submodule(parent_name) if parent_name else module
        setattr(parent, attr, PrunableAttention.from_mha(m))
        done.append(name)
    return done


def prunable_attention(module: nn.Module, input_specs: Sequence) -> tuple[nn.Module, list[str]]:
    """`module` with its self-attention rewritten as `PrunableAttention` (a copy), and the names rewritten.
    A module whose rewrite changes the model's outputs (cross-attention, masks) stays stock, with fixed
    widths; `module` itself with [] when nothing is rewritten."""
    if not any(_convertible(m) or (_is_torchvision_vit(m) and "_process_input" not in vars(m))
               for m in module.modules()):
        return module, []
    from edgeprune.models.inputs import example_inputs

    inputs = example_inputs(tuple(input_specs))
    with torch.no_grad():
        ref = module.eval()(*inputs)

    def rewritten(names=None):
        new = copy.deepcopy(module)
        done = convert_attention(new, names)
        try:
            with torch.no_grad():
                return (new, done) if _same(ref, new.eval()(*inputs)) else None
        except Exception:
            return None

    whole = rewritten()
    if whole is not None:
        return whole
    # some attention is not plain self-attention: keep the rewrites that leave the outputs as they were
    keep = [n for n, m in module.named_modules() if _convertible(m) and rewritten([n]) is not None]
    out = rewritten(keep)
    if out is None or not (out[1] or any(_is_torchvision_vit(m) for m in module.modules())):
        return module, []
    return out


def _same(a, b) -> bool:
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        return a.shape == b.shape and torch.allclose(a, b, rtol=1e-4, atol=1e-5)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)) and len(a) == len(b):
        return all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict) and a.keys() == b.keys():
        return all(_same(a[k], b[k]) for k in a)
    return a is None and b is None
