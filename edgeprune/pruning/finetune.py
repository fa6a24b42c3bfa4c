"""Recovery fine-tuning: knowledge distillation from the unpruned model, plus accuracy evaluation.

loss = (1 - alpha) * CE(student, label) + alpha * T^2 * KL(student/T || teacher/T)
SGD with Nesterov momentum and a one-cycle schedule; the data loaders bring the augmentation.
Runs on the GPU when there is one, else on the CPU.
"""

from __future__ import annotations

from typing import Callable

from edgeprune.progress import track


def pick_device(device: str | None = None) -> str:
    import torch

    return device or ("cuda" if torch.cuda.is_available() else "cpu")


def finetune(model, train_loader, *, epochs: float, teacher=None, lr: float = 0.02, alpha: float = 0.7,
             temperature: float = 4.0, extra_loss: Callable[[], object] | None = None, extra_params=(),
             extra_lr: float = 0.05, device: str | None = None, weight_decay: float = 5e-4, description: str = "fine-tune") -> dict:
    """Train `model` in place for `epochs` passes (fractions allowed) over train_loader; returns stats."""
    import torch
    import torch.nn.functional as F

    dev = pick_device(device)
    model.to(dev).train()
    if teacher is not None:
        teacher.to(dev).eval()
    params = [p for p in model.parameters() if p.requires_grad]
    extra = list(extra_params)
    opt_extra = torch.optim.Adam(extra, lr=extra_lr) if extra else None  # gates: scale-free steps
    steps_per_epoch = len(train_loader)
    total = max(1, int(round(epochs * steps_per_epoch)))
    opt = torch.optim.SGD(params, lr=lr, momentum=0.9, nesterov=True, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=total, pct_start=0.15)
    losses, step = [], 0

    def batches():
        while True:
            yield from train_loader

    for x, y in track(batches(), description, total=total):
        if step >= total:
            break
        x, y = x.to(dev), y.to(dev)
        out = model(x)
        loss = F.cross_entropy(out, y)
        if teacher is not None:
            with torch.no_grad():
                t = teacher(x)
            kd = F.kl_div(F.log_softmax(out / temperature, 1), F.softmax(t / temperature, 1),
                          reduction="batchmean") * temperature ** 2
            loss = (1 - alpha) * loss + alpha * kd
        if extra_loss is not None:
            loss = loss + extra_loss()
        opt.zero_grad(set_to_none=True)
        if opt_extra is not None:
            opt_extra.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if opt_extra is not None:
            opt_extra.step()
        sched.step()
        losses.append(float(loss.detach()))
        step += 1
    model.eval().to("cpu")
    if teacher is not None:
        teacher.to("cpu")
    return {"steps": step, "final_loss": sum(losses[-20:]) / max(1, len(losses[-20:])), "device": dev}


def evaluate(model, loader, device: str | None = None) -> float:
    """Top-1 accuracy (0..1) of `model` over `loader`."""
    import torch

    dev = pick_device(device)
    model.to(dev).eval()
    right = n = 0
    with torch.no_grad():
        for x, y in loader:
            pred = model(x.to(dev)).argmax(1).cpu()
            right += int((pred == y).sum())
            n += len(y)
    model.to("cpu")
    return right / max(n, 1)
