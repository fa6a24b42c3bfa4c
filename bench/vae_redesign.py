"""Benchmark: Turbo-VAED-style decoder redesign against a CogVideoX-shaped teacher trained here.

No pretrained video VAE can be downloaded, so the teacher is trained first (whole VAE, on pan/zoom
clips of scikit-image photos, held-out photos for PSNR), then its decoder is redesigned and the
student distilled on the frozen encoder's latents. Everything is checkpointed: rerun the script
to resume. Results: bench/results/vae_redesign.json (+ .png).

    nice python bench/vae_redesign.py            # all phases, resumable
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edgeprune.files import atomic_write_bytes, atomic_write_json  # noqa: E402
from edgeprune.vae import zoo  # noqa: E402
from edgeprune.vae.adapters import teacher_decode, teacher_encode  # noqa: E402
from edgeprune.vae.clips import clip_sets  # noqa: E402
from edgeprune.vae.losses import gradient_loss, psnr, ssim  # noqa: E402

WORK = ROOT / "bench" / "work" / "vae"
RESULTS = ROOT / "bench" / "results"
FRAMES, SIZE = 9, 32
LATENT = (1, 16, 3, SIZE // 8, SIZE // 8)


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def data():
    path = WORK / "clips.pt"
    if path.exists():
        return torch.load(path, weights_only=True)
    train, held, names = clip_sets("skimage", FRAMES, SIZE, SIZE, n_train=384, n_heldout=16, seed=0)
    d = {"train": train, "heldout": held, "heldout_sources": names}
    buf = io.BytesIO()
    torch.save(d, buf)
    atomic_write_bytes(path, buf.getvalue())
    return d


@torch.no_grad()
def eval_teacher(vae, held):
    recon = torch.cat([teacher_decode(vae, teacher_encode(vae, held[i : i + 4])) for i in range(0, len(held), 4)])
    return psnr(recon, held), ssim(recon, held).item(), recon


def train_teacher(args, d):
    """Train the whole CogVideoX-shaped VAE until the wall budget is used; resumable."""
    ckpt = WORK / "teacher_ckpt.pt"
    vae = zoo.cogvideox_teacher()
    opt = torch.optim.AdamW(vae.parameters(), lr=args.teacher_lr, weight_decay=0.0)
    state = {"step": 0, "elapsed_s": 0.0, "curve": []}
    if ckpt.exists():
        s = torch.load(ckpt, weights_only=True)
        vae.load_state_dict(s["vae"]), opt.load_state_dict(s["opt"])
        torch.set_rng_state(s["rng"])
        state = {k: s[k] for k in ("step", "elapsed_s", "curve")}
        log(f"teacher: resumed at step {state['step']} ({state['elapsed_s'] / 60:.1f} min trained)")
    if state["elapsed_s"] >= args.teacher_minutes * 60:
        return vae.eval(), state
    train, held = d["train"], d["heldout"]
    g = torch.Generator().manual_seed(1000 + state["step"])
    vae.train()
    t0, base = time.time(), state["elapsed_s"]
    losses = []

    def save():
        state["elapsed_s"] = base + time.time() - t0
        buf = io.BytesIO()
        torch.save({"vae": vae.state_dict(), "opt": opt.state_dict(), "rng": torch.get_rng_state(), **state}, buf)
        atomic_write_bytes(ckpt, buf.getvalue())

    while base + time.time() - t0 < args.teacher_minutes * 60:
        idx = torch.randint(len(train), (args.batch,), generator=g)
        x = train[idx]
        if torch.rand((), generator=g) < 0.5:
            x = x.flip(-1)
        post = vae.encode(x).latent_dist
        z = post.sample()
        y = teacher_decode(vae, z)
        kl = post.kl().mean() / z[0].numel()
        loss = (y - x).abs().mean() + 0.2 * (1 - ssim(y, x)) + 1e-4 * kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        opt.step()
        state["step"] += 1
        losses.append(loss.item())
        if state["step"] % args.eval_every == 0:
            vae.eval()
            p, s, _ = eval_teacher(vae, held)
            vae.train()
            state["curve"].append({"step": state["step"], "minutes": round((base + time.time() - t0) / 60, 2),
                                   "train_loss": round(statistics.mean(losses[-args.eval_every:]), 4),
                                   "heldout_psnr_db": round(p, 3), "heldout_ssim": round(s, 4)})
            log(f"teacher step {state['step']}: loss {state['curve'][-1]['train_loss']:.4f} held-out PSNR {p:.2f} dB SSIM {s:.3f}")
            save()
    save()
    return vae.eval(), state


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--phase", default="all", choices=["teacher", "all"])
    ap.add_argument("--teacher-minutes", type=float, default=16)
    ap.add_argument("--teacher-lr", type=float, default=2e-3)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--eval-every", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--distill-steps", type=int, default=1200)
    ap.add_argument("--preset", default="medium")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    WORK.mkdir(parents=True, exist_ok=True)
    d = data()
    teacher, tstate = train_teacher(args, d)
    torch.save(teacher.state_dict(), WORK / "teacher.pt")
    if args.phase == "teacher":
        return
    from bench_vae_measure import run_rest  # noqa

    run_rest(args, d, teacher, tstate)


if __name__ == "__main__":
    main()
