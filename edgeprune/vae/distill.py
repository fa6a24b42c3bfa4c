"""distill: train a student decoder on a frozen teacher's latents of real clips.

Loss = L1 + w_ssim * (1 - SSIM) + w_grad * multi-scale gradient L1 (no downloaded weights)
     + w_feat * feature alignment: student stage features, through 1x1 projection heads, match the
       teacher decoder's up-block outputs of the same resolution (forward hooks; the teacher
       features of the fixed training clips are computed once, at the start).
An EMA of the student weights is kept and is what gets saved. A checkpoint (student, EMA, heads,
optimizer, step, RNG, loss history) is written atomically every ``checkpoint_every`` steps, so a
killed run resumed with ``resume=True`` loses at most the last interval.
"""

from __future__ import annotations

import copy
import io
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from edgeprune import progress
from edgeprune.errors import EdgepruneError
from edgeprune.files import atomic_write_bytes
from edgeprune.vae.adapters import adapter_for
from edgeprune.vae.clips import clip_sets
from edgeprune.vae.losses import gradient_loss, psnr, ssim

log = logging.getLogger(__name__)
CHECKPOINT_VERSION = 1


@dataclass(frozen=True)
class DistillConfig:
    """Options of one distillation run.

    steps: total optimizer steps (a resumed run continues up to this number).
    batch_size: clips per step. lr: AdamW learning rate (cosine decay to 10%).
    ema_decay: EMA of the student weights (saved model = EMA).
    checkpoint_every: steps between atomic checkpoints (and held-out evaluations).
    n_train_clips / n_heldout_clips: clips made from the train / held-out sources.
    w_ssim, w_grad, w_feat: loss weights (L1 has weight 1).
    align_stages: how many of the teacher's lowest-resolution up-blocks are aligned.
    seed, threads: reproducibility and torch intra-op threads.
    """

    steps: int
    batch_size: int = 4
    lr: float = 2e-3
    ema_decay: float = 0.995
    checkpoint_every: int = 50
    n_train_clips: int = 256
    n_heldout_clips: int = 16
    w_ssim: float = 0.2
    w_grad: float = 0.5
    w_feat: float = 0.1
    align_stages: int = 2
    seed: int = 0
    threads: int = 2


@dataclass
class DistillResult:
    student: nn.Module  # the EMA student
    step: int
    history: list = field(default_factory=list)  # [{step, loss, ...}] every step
    evals: list = field(default_factory=list)  # [{step, heldout_psnr_db, heldout_ssim}]
    teacher_psnr_db: float = float("nan")
    teacher_ssim: float = float("nan")
    heldout_sources: list = field(default_factory=list)


class _Hooks:
    """Collect the outputs of teacher modules; repeated calls (frame loops) are joined along time."""

    def __init__(self, modules):
        self.out = [[] for _ in modules]
        self.handles = [m.register_forward_hook(self._make(i)) for i, m in enumerate(modules)]

    def _make(self, i):
        def hook(_m, _inp, out):
            if isinstance(out, tuple):
                out = out[0]
            self.out[i].append(out.detach())

        return hook

    def take(self):
        res = []
        for chunks in self.out:
            res.append(torch.cat(chunks, dim=2) if chunks and chunks[0].dim() == 5 else (chunks[0] if chunks else None))
        self.out = [[] for _ in self.out]
        return res

    def remove(self):
        for h in self.handles:
            h.remove()


def _to_btchw(f: torch.Tensor, b: int) -> torch.Tensor:
    """Teacher feature -> [B, T, C, H, W]."""
    if f.dim() == 5:
        return f.permute(0, 2, 1, 3, 4)
    return f.reshape(b, f.shape[0] // b, *f.shape[1:])


@torch.no_grad()
def _teacher_targets(teacher, adapter, clips, align_stages, batch=4):
    """Latents and aligned teacher features (fp16) of every clip, computed once."""
    mods = adapter.stage_modules(teacher)[:align_stages]
    hooks = _Hooks(mods)
    lat, feats = [], [[] for _ in mods]
    try:
        for i in range(0, len(clips), batch):
            z = adapter.encode(teacher, clips[i : i + batch])
            adapter.decode(teacher, z)
            lat.append(z)
            for k, f in enumerate(hooks.take()):
                feats[k].append(_to_btchw(f, z.shape[0]).half())
    finally:
        hooks.remove()
    return torch.cat(lat), [torch.cat(f) for f in feats]


def _match_stages(student, z, tfeats):
    """For each teacher feature: the student stage of the same resolution (or None)."""
    with torch.no_grad():
        _, sfeats, _ = student.forward_features(z[:1])
    pairs = []
    for tf in tfeats:
        h, w = tf.shape[-2:]
        idx = [i for i, s in enumerate(sfeats) if tuple(s.shape[-2:]) == (h, w)]
        pairs.append((idx[0], sfeats[idx[0]].shape[1], tf.shape[2]) if idx else None)
    return pairs


def _feature_loss(sfeats, sframes, tfeats, pairs, heads, b):
    total, n = sfeats[0].new_zeros(()), 0
    for (pair, tf), head in zip(zip(pairs, tfeats), heads):
        if pair is None:
            continue
        si = pair[0]
        p = head(sfeats[si])
        p = p.reshape(b, sframes[si], *p.shape[1:])
        tf = tf.float()
        t = min(p.shape[1], tf.shape[1])
        p, tf = p[:, -t:], tf[:, -t:]  # causal frame counts differ: align the last frames
        total = total + F.mse_loss(p, tf) / (tf.var() + 1e-6)
        n += 1
    return total / max(n, 1)


def ema_update(ema: nn.Module, model: nn.Module, step: int, decay: float) -> None:
    """Move `ema`'s weights toward `model`'s; the warm-up (decay (1+step)/(10+step) until `decay`) lets
    the first steps follow the weights closely instead of averaging in the initialization."""
    d = min(decay, (1 + step) / (10 + step))
    with torch.no_grad():
        for pe, ps in zip(ema.parameters(), model.parameters()):
            pe.mul_(d).add_(ps.detach(), alpha=1 - d)


def _save_checkpoint(path: Path, step, student, ema, heads, opt, gen, history, evals, config):
    buf = io.BytesIO()
    torch.save(
        {
            "version": CHECKPOINT_VERSION, "step": step, "student": student.state_dict(), "ema": ema.state_dict(),
            "heads": heads.state_dict(), "opt": opt.state_dict(), "rng_torch": torch.get_rng_state(),
            "rng_batches": gen.get_state(), "history": history, "evals": evals, "config": asdict(config),
        },
        buf,
    )
    atomic_write_bytes(path, buf.getvalue())


def distill(
    student: nn.Module,
    teacher,
    data_spec: str,
    config: DistillConfig,
    *,
    video_shape: tuple[int, ...],
    checkpoint: str | Path,
    resume: bool = False,
) -> DistillResult:
    """Distill ``teacher``'s decoder into ``student`` on clips from ``data_spec``; returns the EMA student.

    ``video_shape`` is the decoded shape ``[B, 3, T', H', W']`` (the model dir's ``output_shape``);
    clips are made at that size.
    """
    checkpoint = Path(checkpoint)
    if checkpoint.exists() and not resume:
        raise EdgepruneError(
            f"a distillation checkpoint exists at {checkpoint}; pass --resume to continue it, or delete it to start over"
        )
    torch.set_num_threads(config.threads)
    adapter = adapter_for(teacher)
    teacher.eval().requires_grad_(False)
    student.train()
    frames, height, width = (int(d) for d in video_shape[-3:])
    train, held, held_names = clip_sets(data_spec, frames, height, width, config.n_train_clips, config.n_heldout_clips, seed=config.seed)
    with progress.status("teacher: encoding clips and recording decoder features"):
        z_train, t_feats = _teacher_targets(teacher, adapter, train, config.align_stages)
        z_held = torch.cat([adapter.encode(teacher, held[i : i + 4]) for i in range(0, len(held), 4)])
        with torch.no_grad():
            t_recon = torch.cat([adapter.decode(teacher, z_held[i : i + 4]) for i in range(0, len(z_held), 4)])
    teacher_psnr, teacher_ssim = psnr(t_recon, held), ssim(t_recon, held).item()
    pairs = _match_stages(student, z_train, t_feats)
    torch.manual_seed(config.seed)  # the projection heads' init is part of the run (a resumed run must match)
    heads = nn.ModuleList(
        nn.Conv2d(p[1], p[2], 1) if p is not None else nn.Identity() for p in pairs
    )
    params = list(student.parameters()) + list(heads.parameters())
    opt = torch.optim.AdamW(params, lr=config.lr, weight_decay=1e-4)
    ema = copy.deepcopy(student).eval().requires_grad_(False)
    gen = torch.Generator().manual_seed(config.seed + 17)
    step, history, evals = 0, [], []
    if resume and checkpoint.exists():
        try:
            ck = torch.load(checkpoint, map_location="cpu", weights_only=True)
            student.load_state_dict(ck["student"]), ema.load_state_dict(ck["ema"])
            heads.load_state_dict(ck["heads"]), opt.load_state_dict(ck["opt"])
        except Exception as e:
            raise EdgepruneError(
                f"cannot resume from {checkpoint} ({type(e).__name__}); it belongs to another student or is corrupted: delete it"
            ) from None
        torch.set_rng_state(ck["rng_torch"]), gen.set_state(ck["rng_batches"])
        step, history, evals = int(ck["step"]), list(ck["history"]), list(ck["evals"])
        progress.info(f"resumed distillation at step {step}")

    def lr_at(s):
        return config.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(s / max(config.steps, 1), 1.0))))

    def evaluate():
        with torch.no_grad():
            y = torch.cat([ema(z_held[i : i + 4]) for i in range(0, len(z_held), 4)])
        return psnr(y, held), ssim(y, held).item()

    b = config.batch_size
    for s in progress.track(range(step, config.steps), "distilling", total=config.steps - step):
        for gparam in opt.param_groups:
            gparam["lr"] = lr_at(s)
        idx = torch.randint(len(z_train), (b,), generator=gen)
        z, x = z_train[idx], train[idx]
        y, sfeats, sframes = student.forward_features(z)
        l1 = (y - x).abs().mean()
        l_ssim = 1 - ssim(y, x)
        l_grad = gradient_loss(y, x)
        l_feat = _feature_loss(sfeats, sframes, [f[idx] for f in t_feats], pairs, heads, b) if config.w_feat else y.new_zeros(())
        loss = l1 + config.w_ssim * l_ssim + config.w_grad * l_grad + config.w_feat * l_feat
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        ema_update(ema, student, s, config.ema_decay)
        step = s + 1
        history.append({"step": step, "loss": round(loss.item(), 5), "l1": round(l1.item(), 5),
                        "ssim_loss": round(l_ssim.item(), 5), "grad_loss": round(l_grad.item(), 5),
                        "feat_loss": round(float(l_feat.detach()), 5), "train_psnr_db": round(psnr(y.detach(), x), 3)})
        if step % config.checkpoint_every == 0 or step == config.steps:
            p, q = evaluate()
            evals.append({"step": step, "heldout_psnr_db": round(p, 3), "heldout_ssim": round(q, 4)})
            _save_checkpoint(checkpoint, step, student, ema, heads, opt, gen, history, evals, config)
            progress.info(f"step {step}/{config.steps}: loss {loss.item():.4f}  held-out PSNR {p:.2f} dB "
                          f"(teacher {teacher_psnr:.2f} dB)")
    return DistillResult(ema, step, history, evals, teacher_psnr, teacher_ssim, held_names)
